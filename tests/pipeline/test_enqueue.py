"""One queued processing task per burst of writes, on a real (private) Redis broker."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

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


def test_form_submissions_in_a_burst_queue_one_task_and_a_lead_dirtied_after_it_started_is_still_scored(
    broker: tuple[PrivateRedis, str], db: None, django_capture_on_commit_callbacks: Any
) -> None:
    from leads.models import Lead
    from leads.services import webform_create, webform_submit

    server, queue = broker
    form = webform_create(created_by=None, name="Burst", slug="burst", rate_limit_per_minute=1000)

    # two submissions in a burst: one queued task, which will see both leads
    for name in ("ada", "bo"):
        with django_capture_on_commit_callbacks(execute=True):
            webform_submit(form=form, data={"name": name, "email": f"{name}@example.com"})
    assert _queued(server.url, queue) == 1

    # a worker starts that task: it clears the flag, then takes the dirty leads
    pipeline.pipeline_clear_pending()
    pipeline.pipeline_process_until_done()
    assert not Lead.objects.filter(dirty_since__isnull=False).exists()

    # a submission after the task started queues a task of its own, so its lead does not wait for the sweeper
    with django_capture_on_commit_callbacks(execute=True):
        late = webform_submit(form=form, data={"name": "cy", "email": "cy@example.com"})
    assert _queued(server.url, queue) == 2
    pipeline.pipeline_clear_pending()
    pipeline.pipeline_process_until_done()
    assert Lead.objects.get(pk=late.body["lead_id"]).dirty_since is None
