"""A real Celery worker, started as its own process, consumes tasks from Redis."""

import uuid

from django.core.cache import cache

from common.tasks import HEARTBEAT_KEY, worker_heartbeat_task
from tests.pipeline.conftest import wait_until


def test_real_worker_runs_a_task_sent_through_redis(celery_worker_process: dict[str, str]) -> None:
    token = uuid.uuid4().hex
    cache.delete(HEARTBEAT_KEY)

    worker_heartbeat_task.delay(token)

    beat = wait_until(
        lambda: (cache.get(HEARTBEAT_KEY) or {}).get("token") == token and cache.get(HEARTBEAT_KEY), timeout=30
    )
    assert beat is not None, "the worker never ran the task"
    assert beat["token"] == token
