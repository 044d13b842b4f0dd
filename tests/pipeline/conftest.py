"""Real-service fixtures: a Celery worker process consuming from Redis on a queue of its own."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from django.db import connection
from pytest_django.fixtures import Settings

from leadcrm.celery import app as celery_app

REPO = Path(__file__).resolve().parents[2]
REQUIRE_SERVICES = os.environ.get("LEADCRM_REQUIRE_SERVICES") == "1"
BROKER_URL = os.environ.get("LEADCRM_TEST_BROKER_URL", "redis://127.0.0.1:6379/14")
CACHE_URL = os.environ.get("LEADCRM_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def _redis_up(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


@pytest.fixture(scope="session")
def redis_urls() -> dict[str, str]:
    if not _redis_up(BROKER_URL):
        if REQUIRE_SERVICES:
            pytest.fail(f"Redis is required but does not answer at {BROKER_URL}")
        pytest.skip(f"needs Redis at {BROKER_URL}")
    return {"broker": BROKER_URL, "cache": CACHE_URL}


@pytest.fixture
def celery_worker_process(
    transactional_db: None, redis_urls: dict[str, str], settings: Settings
) -> Iterator[dict[str, str]]:
    """Start ``celery -A leadcrm worker`` against the test database and a private queue.

    The test process sends to the same broker and queue; the worker shares the test's cache.
    """
    queue = f"leadcrm-test-{uuid.uuid4().hex[:8]}"
    db = connection.settings_dict
    database_url = (
        f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
        if connection.vendor == "postgresql"
        else f"sqlite:///{db['NAME']}"
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "leadcrm.settings",
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": redis_urls["broker"],
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "CELERY_TASK_DEFAULT_QUEUE": queue,
        "REDIS_URL": redis_urls["cache"],
    }
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "leadcrm", "worker", "-Q", queue, "-c", "1", "--pool", "solo",
         "-l", "warning", "--without-gossip", "--without-mingle", "-n", f"{queue}@%h"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    previous = dict(celery_app.conf)
    celery_app.conf.update(broker_url=redis_urls["broker"], task_always_eager=False, task_default_queue=queue)
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": redis_urls["cache"]}
    }
    try:
        yield {"queue": queue}
    finally:
        celery_app.conf.update({k: previous[k] for k in ("broker_url", "task_always_eager", "task_default_queue")})
        worker.terminate()
        try:
            output, _ = worker.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            worker.kill()
            output, _ = worker.communicate()
        if "Traceback" in (output or ""):
            print(output)  # shown by pytest when the test fails


def wait_until(predicate, timeout: float = 20.0, interval: float = 0.1):
    """Poll ``predicate`` until it returns something truthy; return it, or None after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return None
