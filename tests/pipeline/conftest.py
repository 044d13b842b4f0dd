"""Real-service fixtures: a Celery worker process consuming from Redis on a queue of its own."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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
    # Also drops connections pooled for the eager memory:// broker by earlier tests' apply_async().
    _point_app_at(redis_urls["broker"], queue)
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": redis_urls["cache"]}
    }
    try:
        yield {"queue": queue}
    finally:
        _point_app_at(previous["broker_url"], previous["task_default_queue"])
        celery_app.conf.update(task_always_eager=previous["task_always_eager"])
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


# --- Fault-test fixtures: workers started and killed at will, a private Redis that can be stopped ----

# Ports for private redis-servers in fault tests (never the machine's own Redis on 6379).
PRIVATE_REDIS_PORTS = range(18401, 18450)


def _free_port() -> int:
    import socket

    for port in PRIVATE_REDIS_PORTS:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) != 0:
                return port
    raise RuntimeError("no free port for a private redis-server")


class PrivateRedis:
    """A throw-away ``redis-server`` without persistence, stopped and restarted by the test."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        if not wait_until(lambda: _redis_up(self.url), timeout=10):
            raise RuntimeError("private redis-server did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    import shutil

    if shutil.which("redis-server") is None:
        if REQUIRE_SERVICES:
            pytest.fail("redis-server is required for the fault tests")
        pytest.skip("needs the redis-server binary")
    server = PrivateRedis()
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _point_app_at(broker_url: str, queue: str) -> None:
    """Make this process publish to ``broker_url``/``queue`` (drop pooled connections to the old broker)."""
    celery_app.conf.update(broker_url=broker_url, task_always_eager=False, task_default_queue=queue)
    # kombu keeps pools per broker URL in a global registry; closing one would break the next test.
    # Private attributes: Celery has no public way to forget a pool built for another broker URL.
    celery_app._pool = None  # type: ignore[attr-defined]
    celery_app.amqp._producer_pool = None  # type: ignore[attr-defined]


class Workers:
    """Start real ``celery worker`` processes on one broker and queue; kill them with SIGKILL if asked."""

    def __init__(self, broker_url: str, cache_url: str) -> None:
        self.broker_url = broker_url
        self.cache_url = cache_url
        self.queue = f"leadcrm-test-{uuid.uuid4().hex[:8]}"
        self.processes: list[subprocess.Popen[str]] = []

    def start(self, **extra_env: str) -> subprocess.Popen[str]:
        db = connection.settings_dict
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "leadcrm.settings",
            "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
            "DATABASE_CONN_MAX_AGE": "0",
            "CELERY_BROKER_URL": self.broker_url,
            "CELERY_TASK_ALWAYS_EAGER": "false",
            "CELERY_TASK_DEFAULT_QUEUE": self.queue,
            "REDIS_URL": self.cache_url,
            **extra_env,
        }
        name = f"{self.queue}-{len(self.processes)}@%h"
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "leadcrm", "worker", "-Q", self.queue, "-c", "1", "--pool", "solo",
             "-l", "warning", "--without-gossip", "--without-mingle", "--without-heartbeat", "-n", name],
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        self.processes.append(process)
        return process

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                output, _ = process.communicate(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                output, _ = process.communicate()
            if "Traceback" in (output or ""):
                print(output)  # shown by pytest when the test fails


@pytest.fixture
def workers_on(transactional_db: None, settings: Settings, redis_urls: dict[str, str]) -> Iterator[Any]:
    """``workers_on(broker_url)`` → a ``Workers`` whose queue this process publishes to (PostgreSQL only)."""
    if connection.vendor != "postgresql":
        pytest.skip("worker subprocesses need a database they can share: set DATABASE_URL to PostgreSQL")
    created: list[Workers] = []
    previous = {k: celery_app.conf[k] for k in ("broker_url", "task_always_eager", "task_default_queue")}
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": redis_urls["cache"]}
    }

    def _make(broker_url: str) -> Workers:
        workers = Workers(broker_url, redis_urls["cache"])
        _point_app_at(broker_url, workers.queue)
        created.append(workers)
        return workers

    try:
        yield _make
    finally:
        for workers in created:
            workers.stop_all()
        _point_app_at(previous["broker_url"], previous["task_default_queue"])
        celery_app.conf.update(task_always_eager=previous["task_always_eager"])
