"""The PostgreSQL backend's health check: sent for a connection that sat idle, skipped for one in steady use."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.db import connections
from pytest_django.fixtures import Settings

from common.prepared import prepared_cursor


def _plain_cursor() -> Any:
    return connections["default"].cursor()


@pytest.mark.postgres
@pytest.mark.parametrize("open_cursor", [_plain_cursor, prepared_cursor], ids=["plain", "prepared"])
@pytest.mark.parametrize(("idle_s", "checked"), [(0.0, True), (3600.0, False)])
def test_a_connection_in_steady_use_skips_the_per_request_health_check(
    db: None,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    open_cursor: Callable[[], Any],
    idle_s: float,
    checked: bool,
) -> None:
    # given a persistent connection that served a query a moment ago, and a new request starting
    settings.LEADCRM_DB_HEALTH_CHECK_IDLE_S = idle_s
    settings.LEADCRM_DB_PREPARED_STATEMENTS = True  # prepared cursors take the same check (common.prepared)
    wrapper = connections["default"]
    monkeypatch.setattr(wrapper, "health_check_enabled", True)
    with open_cursor() as cursor:
        cursor.execute("SELECT %s::int", [1])
    pings: list[bool] = []
    real_is_usable = wrapper.is_usable

    def is_usable() -> bool:
        pings.append(True)
        return real_is_usable()

    monkeypatch.setattr(wrapper, "is_usable", is_usable)
    monkeypatch.setattr(wrapper, "health_check_done", False)  # what Django does when a request starts or ends

    # when the request's first query runs
    with open_cursor() as cursor:
        cursor.execute("SELECT %s::int", [2])

    # then the SELECT 1 health check is sent only for a connection idle longer than the limit
    assert bool(pings) is checked
