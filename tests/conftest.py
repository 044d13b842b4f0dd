"""Shared fixtures: an organisation with two teams and users of every role, API clients per user."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from django.core.cache import cache
from django.db import connection
from rest_framework.test import APIClient

from tests.factories import make_user
from users.models import Role, Team, User
from users.services import team_get_or_create

REQUIRE_SERVICES = os.environ.get("LEADCRM_REQUIRE_SERVICES") == "1"

# Celery prefers the CELERY_BROKER_URL environment variable to app.conf.broker_url. Tests point the
# app at brokers of their own (and worker subprocesses get theirs explicitly), so the variable that
# CI exports for the real stack must not win inside the test process.
os.environ.pop("CELERY_BROKER_URL", None)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``postgres`` tests skip on SQLite, except in CI (LEADCRM_REQUIRE_SERVICES=1) where they must run."""
    if connection.vendor == "postgresql":
        return
    for item in items:
        if "postgres" in item.keywords:
            if REQUIRE_SERVICES:
                item.add_marker(
                    pytest.mark.xfail(reason="PostgreSQL required but not configured", strict=True, run=False)
                )
            else:
                item.add_marker(pytest.mark.skip(reason="needs PostgreSQL: set DATABASE_URL"))


@dataclass
class Org:
    north: Team
    south: Team
    manager: User  # leads north
    rep: User  # north
    rep2: User  # north
    rep_south: User  # south
    marketing: User
    admin: User


@pytest.fixture
def org(db: None) -> Org:
    north = team_get_or_create(name="North")
    south = team_get_or_create(name="South")
    manager = make_user(Role.MANAGER, team=north, username="manager")
    return Org(
        north=north,
        south=south,
        manager=manager,
        rep=make_user(Role.REP, team=north, username="rep"),
        rep2=make_user(Role.REP, team=north, username="rep2"),
        rep_south=make_user(Role.REP, team=south, username="rep_south"),
        marketing=make_user(Role.MARKETING, username="marketing"),
        admin=make_user(Role.ADMIN, username="admin"),
    )


@pytest.fixture
def fresh_throttles() -> Iterator[None]:
    """An empty cache before and after: throttle counts of one test must not refuse the next one's posts."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture
def client_for(api_client: APIClient):
    """``client_for(user)`` → an API client signed in as ``user`` (session auth, like the browser)."""

    def _client(user: User) -> APIClient:
        client = APIClient()
        client.force_authenticate(user=user)
        return client

    return _client


def wait_until_blocked(pid: int) -> None:
    """Until backend ``pid`` waits for a lock (what the other side of the race does), at most 30 s."""
    deadline = time.monotonic() + 30
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [pid])
            row = cursor.fetchone()
            if row and row[0] == "Lock":
                return
            time.sleep(0.02)
    raise AssertionError(f"backend {pid} never waited for a lock")
