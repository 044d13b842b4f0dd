"""Housekeeping tasks shared by every app."""

from __future__ import annotations

from celery import shared_task
from django.core.cache import cache
from django.utils import timezone

HEARTBEAT_KEY = "leadcrm:worker:heartbeat"


@shared_task(ignore_result=True, acks_late=True, reject_on_worker_lost=True)
def worker_heartbeat_task(token: str = "") -> None:
    """Record that a worker is alive and consuming (beat sends it every 30 s).

    The pipeline status reads the key; running it twice just writes a newer time.
    """
    cache.set(HEARTBEAT_KEY, {"at": timezone.now().isoformat(), "token": token}, timeout=None)
