"""Celery tasks of campaign-list imports: run one import job, or undo it, in the background."""

from __future__ import annotations

from typing import Any

from celery import Task, shared_task
from django.conf import settings
from django.utils import translation

from leads.tasks.pipeline import TRANSIENT_ERRORS

# Both import tasks: the message is acknowledged only once the work is done (a lost worker's job is
# redelivered), and a transient outage of the database or broker is retried with backoff.
_DURABLE: dict[str, Any] = {
    "acks_late": True,
    "reject_on_worker_lost": True,
    "ignore_result": True,
    "autoretry_for": TRANSIENT_ERRORS,
    "retry_backoff": True,
    "retry_backoff_max": 60,
    "max_retries": 5,
}


@shared_task(**_DURABLE)
def import_run_task(job_id: int) -> None:
    """Run import job ``job_id``; sent on commit by ``import_create``.

    Running it twice is harmless: a finished job is a no-op, and a job interrupted half-way resumes
    after its last committed chunk (each chunk's leads and counters commit together), while a second
    worker on the same job stops at its first chunk because the counters moved under it.
    """
    from leads.services.imports import import_run

    import_run(job_id=job_id)


@shared_task(bind=True, **_DURABLE)
def import_undo_task(self: Task, job_id: int, language: str | None = None) -> None:
    """Undo import job ``job_id``; sent on commit by ``import_undo_start`` (and again by the sweeper).

    The undo is one transaction, so a worker lost half-way undoes nothing and the redelivered task
    starts again; a job no longer ``undoing`` (a duplicate after another run finished) is left alone.
    A transient error (the database restarting) is retried; any other error, or the last retry, puts
    the job back to its status before the undo with the reason, and it can be undone again.
    """
    from leads.models import ImportJob, ImportStatus
    from leads.services.imports import import_undo, import_undo_failed

    job = ImportJob.objects.filter(pk=job_id, status=ImportStatus.UNDOING).first()
    if job is None:
        return
    with translation.override(language or settings.LANGUAGE_CODE):
        try:
            import_undo(job=job, by=None, started=True)
        except Exception as exc:
            if not isinstance(exc, TRANSIENT_ERRORS) or self.request.retries >= (self.max_retries or 0):
                import_undo_failed(job_id=job_id, error=exc)
            raise


@shared_task(ignore_result=True)
def import_sweep_task() -> None:
    """Beat, every minute: send again the import jobs whose message was lost (see ``import_sweep``)."""
    from leads.services.imports import import_sweep

    import_sweep()
