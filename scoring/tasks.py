"""Celery tasks of scoring: train the predictive model (on demand and on schedule), score every lead with
it, and rescore every lead under a rule set (preview or apply)."""

from __future__ import annotations

import logging

from celery import Task, shared_task
from django.db import InterfaceError, OperationalError

logger = logging.getLogger(__name__)

TRANSIENT_ERRORS = (OperationalError, InterfaceError)


@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    autoretry_for=TRANSIENT_ERRORS,
    retry_backoff=True,
    max_retries=3,
)
def predictive_train_task(model_id: int) -> None:
    """Train the model row ``model_id`` (queued on commit by a training request).

    Running it twice is harmless: only a waiting row is claimed, so a redelivery finds it taken.
    """
    from scoring.predictive.services import predictive_model_train

    predictive_model_train(model_id=model_id)


@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    autoretry_for=TRANSIENT_ERRORS,
    retry_backoff=True,
    max_retries=3,
)
def predictive_score_all_task(model_id: int) -> None:
    """Store every lead's conversion probability under model ``model_id`` (queued when it becomes active).

    Running it twice writes the same values; it stops early when a newer model has become active.
    """
    from scoring.predictive.services import lead_probabilities_refresh_all

    lead_probabilities_refresh_all(model_id=model_id)


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True, autoretry_for=TRANSIENT_ERRORS)
def predictive_train_scheduled_task() -> None:
    """Beat, daily by default (LEADCRM_PREDICTIVE_TRAIN_EVERY_S): retrain on the outcomes known so far.

    Too little data is not an error here: it is logged and nothing is queued. A training already
    waiting or running is reused, so a second run queues nothing new.
    """
    from scoring.predictive.services import NotEnoughData, predictive_training_request

    try:
        predictive_training_request(trigger="schedule")
    except NotEnoughData as exc:
        logger.info("predictive: scheduled training skipped: %s", exc)


@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    autoretry_for=TRANSIENT_ERRORS,
    retry_backoff=True,
    max_retries=3,
)
def rescore_run_task(job_id: int) -> None:
    """Start a preview or an apply (queued on commit when it is requested): split it into parts, queue them.

    A redelivery finds the parts made already and only queues what is missing.
    """
    from scoring.rescore import rescore_run

    rescore_run(job_id=job_id)


PART_RETRIES = 3


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, ignore_result=True, max_retries=PART_RETRIES)
def rescore_part_task(self: Task[[int], None], part_id: int) -> None:
    """Read, score and (apply) write one id range of a rescore, then queue the next waiting part.

    Queued by the job's start and by each finished part. Running it twice repeats guarded writes of
    scores computed from facts: the same result; a part already done is not run again. A transient
    database error is retried with backoff; any other error, or the last retry, fails the job with it.
    """
    from scoring.rescore import rescore_part_run

    last_attempt = self.request.retries >= PART_RETRIES
    try:
        rescore_part_run(part_id=part_id, task_id=self.request.id or "", last_attempt=last_attempt)
    except TRANSIENT_ERRORS as exc:
        if last_attempt:
            raise
        raise self.retry(exc=exc, countdown=2**self.request.retries) from exc


@shared_task(acks_late=True, ignore_result=True)
def rescore_sweep_task() -> None:
    """Beat, every minute: re-send rescore jobs and parts whose message was lost (a Redis restart).

    Running it twice sends a part twice at worst, which only repeats its guarded writes.
    """
    from scoring.rescore import rescore_sweep

    rescore_sweep()
