"""Celery task of campaign-list imports: run one import job in the background."""

from __future__ import annotations

from celery import shared_task

from leads.tasks.pipeline import TRANSIENT_ERRORS


@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    autoretry_for=TRANSIENT_ERRORS,
    retry_backoff=True,
    retry_backoff_max=60,
    max_retries=5,
)
def import_run_task(job_id: int) -> None:
    """Run import job ``job_id``; sent on commit by ``import_create``.

    Running it twice is harmless: a finished job is a no-op, and a job interrupted half-way resumes
    after its last committed chunk (each chunk's leads and counters commit together), while a second
    worker on the same job stops at its first chunk because the counters moved under it.
    """
    from leads.services.imports import import_run

    import_run(job_id=job_id)
