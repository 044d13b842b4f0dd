"""One queued processing task per burst of writes, on a real (private) Redis broker."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from leadcrm.celery import app as celery_app
from leads.services import pipeline
from tests.pipeline.conftest import PrivateRedis, _point_app_at


@pytest.fixture
def broker(private_redis: PrivateRedis) -> Iterator[tuple[PrivateRedis, str]]:
    previous = {k: celery_app.conf[k] for k in ("broker_url", "task_always_eager", "task_default_queue")}
    queue = "leadcrm-test-enqueue"
    _point_app_at(private_redis.url, queue)
    try:
        yield private_redis, queue
    finally:
        _point_app_at(previous["broker_url"], previous["task_default_queue"])
        celery_app.conf.update(task_always_eager=previous["task_always_eager"])


def _queued(url: str, queue: str) -> int:
    return int(redis.Redis.from_url(url).llen(queue))


def test_a_burst_of_writes_queues_one_task_until_a_worker_starts_it(broker: tuple[PrivateRedis, str]) -> None:
    server, queue = broker
    # the first write of a burst publishes; the others find the pending flag and rely on that task
    assert pipeline.pipeline_enqueue() is True
    assert [pipeline.pipeline_enqueue() for _ in range(20)] == [False] * 20
    assert _queued(server.url, queue) == 1

    # a task that starts clears the flag, so the next write queues a task of its own
    pipeline.pipeline_clear_pending()
    assert pipeline.pipeline_enqueue() is True
    assert _queued(server.url, queue) == 2

    # the sweeper publishes whatever the flag says
    assert pipeline.pipeline_enqueue(force=True) is True
    assert _queued(server.url, queue) == 3


def test_the_flag_expires_so_a_lost_message_cannot_block_publishing_for_long(broker: tuple[PrivateRedis, str]) -> None:
    server, _queue = broker
    assert pipeline.pipeline_enqueue() is True
    ttl = redis.Redis.from_url(server.url).ttl(pipeline.PENDING_KEY)
    assert 0 < ttl <= pipeline.PENDING_TTL_S


def test_a_redis_restart_loses_flag_and_queue_together_and_publishing_resumes(
    broker: tuple[PrivateRedis, str], caplog: pytest.LogCaptureFixture
) -> None:
    server, queue = broker
    assert pipeline.pipeline_enqueue() is True
    server.stop()
    assert pipeline.pipeline_enqueue() is False  # broker down: logged, never raised
    assert "sweeper will retry" in caplog.text
    server.start()
    assert pipeline.pipeline_enqueue() is True
    assert _queued(server.url, queue) == 1
