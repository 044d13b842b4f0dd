"""Bench-only: the naive pipeline the event benchmark compares with — one task per event, one lead each.

Loaded only by the benchmark's workers (``celery worker -I bench.naive_tasks``); never by the product.
"""

from __future__ import annotations

from celery import shared_task
from django.db import transaction
from django.utils import timezone


@shared_task(acks_late=True, ignore_result=True)
def naive_recompute_lead_task(lead_id: int) -> None:
    """Recompute one lead's score from all its interactions, write it and clear its dirty flag."""
    from leads.models import Lead, LeadScore
    from scoring import services as scoring

    with transaction.atomic():
        lead = Lead.objects.select_for_update().get(pk=lead_id)
        now = timezone.now()
        facts, _ = scoring.lead_facts_for_batch(leads=[lead], now=now)
        result = scoring.score_compute(facts=facts[lead.pk])
        LeadScore.objects.filter(lead=lead).update(score=result.score, grade=result.grade, score_updated_at=now)
        lead.dirty_since = None
        lead.save(update_fields=["dirty_since"])
