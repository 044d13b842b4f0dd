"""Scoring service used by the event pipeline: gather a batch's facts set-based, then apply the rules."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime

from django.conf import settings
from django.db.models import Count, F, Q
from django.db.models.functions import TruncDate

from leads.models import Interaction, Lead
from scoring.rules import EventBucket, LeadFacts, ScoreResult, Thresholds, score_from_facts

__all__ = ["LeadFacts", "ScoreResult", "interaction_counts", "lead_facts_for_batch", "score_compute", "thresholds"]


def thresholds() -> Thresholds:
    return Thresholds(
        half_life_days=float(settings.LEADCRM_SCORE_HALF_LIFE_DAYS),
        hot=int(settings.LEADCRM_GRADE_HOT),
        warm=int(settings.LEADCRM_GRADE_WARM),
    )


def lead_facts_for_batch(*, leads: Sequence[Lead], now: datetime) -> tuple[dict[int, LeadFacts], dict[int, int]]:
    """Facts for every lead in one query: interactions counted per lead, type and day.

    Also returns, per lead, how many interactions arrived since its score was last computed.
    """
    ids = [lead.pk for lead in leads]
    rows = (
        Interaction.objects.filter(lead_id__in=ids)
        .values("lead_id", "type", day=TruncDate("occurred_at"))
        .annotate(
            n=Count("id"),
            new=Count(
                "id", filter=Q(lead__score_updated_at__isnull=True) | Q(created_at__gt=F("lead__score_updated_at"))
            ),
        )
        .order_by()
    )
    today = now.date()
    buckets: dict[int, list[EventBucket]] = defaultdict(list)
    new_events: dict[int, int] = defaultdict(int)
    for row in rows:
        buckets[row["lead_id"]].append(EventBucket(row["type"], max((today - row["day"]).days, 0), row["n"]))
        new_events[row["lead_id"]] += row["new"]
    facts = {
        lead.pk: LeadFacts(
            job_title=lead.job_title,
            company_size=lead.company_size,
            # Sorted so that the float sum does not depend on the database's row order.
            events=tuple(sorted(buckets.get(lead.pk, []), key=lambda b: (b.type, b.age_days))),
        )
        for lead in leads
    }
    return facts, dict(new_events)


def interaction_counts(*, lead_ids: Sequence[int]) -> dict[int, int]:
    """How many interactions each lead has now (the pipeline's "did anything arrive meanwhile?" check)."""
    rows = Interaction.objects.filter(lead_id__in=list(lead_ids)).values("lead_id").annotate(n=Count("id")).order_by()
    return {row["lead_id"]: row["n"] for row in rows}


def score_compute(*, facts: LeadFacts) -> ScoreResult:
    return score_from_facts(facts, thresholds())


def lead_score_recompute(*, lead: Lead, now: datetime) -> ScoreResult:
    """The score ``lead`` should have now, computed from all its interactions (what tests compare with)."""
    facts, _ = lead_facts_for_batch(leads=[lead], now=now)
    return score_compute(facts=facts[lead.pk])
