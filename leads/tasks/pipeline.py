"""Celery tasks of the event pipeline: process dirty leads, and sweep leads left dirty too long."""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings
from django.db import InterfaceError, OperationalError
from kombu.exceptions import OperationalError as KombuOperationalError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

logger = logging.getLogger(__name__)

TRANSIENT_ERRORS = (OperationalError, InterfaceError, KombuOperationalError, RedisConnectionError, RedisTimeoutError)


@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    autoretry_for=TRANSIENT_ERRORS,
    retry_backoff=True,
    retry_backoff_max=60,
    max_retries=10,
)
def process_dirty_leads_task() -> None:
    """Process dirty leads in batches until none is left or the time budget is used.

    Sent on commit by every write that marks a lead dirty, and by the sweeper. Running it twice (a
    redelivery after a dead worker, two messages for one burst) is harmless: batches are claimed
    with SKIP LOCKED, scores are recomputed from the facts, and a processed lead is no longer dirty.
    """
    from leads.services.pipeline import pipeline_clear_pending, pipeline_enqueue, pipeline_process_until_done

    pipeline_clear_pending()  # before reading: a write from now on enqueues a task of its own
    totals = pipeline_process_until_done()
    if totals["more"]:
        pipeline_enqueue()


@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    autoretry_for=TRANSIENT_ERRORS,
    retry_backoff=True,
    max_retries=3,
)
def sweep_dirty_leads_task() -> None:
    """Beat, every 60 s: re-enqueue processing when leads stayed dirty longer than LEADCRM_DIRTY_SWEEP_AFTER.

    Covers a message lost while Redis was down or a worker died. Running it twice only sends one
    more processing task, which finds nothing left to do.
    """
    from leads.selectors import leads_dirty_stale_count
    from leads.services.pipeline import pipeline_enqueue

    stale = leads_dirty_stale_count(older_than=settings.LEADCRM_DIRTY_SWEEP_AFTER)
    if stale:
        logger.info(
            "pipeline sweeper: %s leads dirty for over %ss; re-enqueueing", stale, settings.LEADCRM_DIRTY_SWEEP_AFTER
        )
        pipeline_enqueue(force=True)  # the safety net does not trust the pending flag
