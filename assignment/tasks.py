"""Celery tasks of assignment: drain the team queues, route one lead."""

from __future__ import annotations

from celery import shared_task

from leads.tasks.pipeline import TRANSIENT_ERRORS


@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    autoretry_for=TRANSIENT_ERRORS,
    retry_backoff=True,
    max_retries=5,
)
def queue_drain_task() -> None:
    """Assign queued leads that someone can now take.

    Sent on commit when a rep switches availability on or a profile changes, and by beat every
    minute (leads closing and working hours starting free capacity too). Running it twice is
    harmless: each lead is locked while routed and one that got an owner leaves the queue.
    """
    from assignment.services import queue_drain

    queue_drain()


@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    autoretry_for=TRANSIENT_ERRORS,
    retry_backoff=True,
    max_retries=5,
)
def lead_route_task(lead_id: int, trigger: str) -> None:
    """Route one lead with ``trigger`` (used for new leads outside the pipeline and by tests).

    Running it twice is harmless for the new-lead trigger: the second run finds the lead owned
    (its row is locked while routed) and does nothing.
    """
    from assignment.services import lead_route
    from leads.models import Lead

    lead = Lead.objects.filter(pk=lead_id).first()
    if lead is not None:
        lead_route(lead=lead, trigger=trigger)


@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    autoretry_for=TRANSIENT_ERRORS,
    retry_backoff=True,
    max_retries=3,
)
def sla_check_task() -> None:
    """Beat, every minute: close first-touch clocks past their deadline (touched, or breached → notify/reassign).

    Running it twice is harmless: a clock is closed once, under its lead's row lock.
    """
    from assignment.services import sla_check

    sla_check()


@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    autoretry_for=(*TRANSIENT_ERRORS, OSError),
    retry_backoff=True,
    max_retries=5,
)
def notification_email_task(notification_id: int) -> None:
    """E-mail one in-app notification, sent on commit by ``assignment.services.notify``.

    A redelivery may send the e-mail twice; the in-app notice stays one row.
    """
    from django.core.mail import send_mail

    from assignment.models import Notification

    notice = Notification.objects.select_related("user").filter(pk=notification_id).first()
    if notice is None or not notice.user.email:
        return
    send_mail(notice.get_kind_display(), notice.message, None, [notice.user.email])
