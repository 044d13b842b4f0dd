"""Celery tasks of scoring: train the predictive model (on demand and on schedule), score every lead with
it, and rescore every lead under a rule set (preview or apply)."""

from __future__ import annotations

import logging

from celery import shared_task
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
    """Preview or apply a rule set over every lead (``scoring.rescore``); a redelivery starts the job over."""
    from scoring.rescore import rescore_run

    rescore_run(job_id=job_id)
