"""Scoring reads: a lead's score history (newest first) and its latest breakdown."""

from __future__ import annotations

from django.db.models import QuerySet

from leads.models import Lead
from scoring.models import ScoreHistory

HISTORY_LIMIT = 30


def lead_score_history(*, lead: Lead, limit: int = HISTORY_LIMIT) -> list[ScoreHistory]:
    """The latest ``limit`` score changes of ``lead``, newest first (one indexed query)."""
    qs: QuerySet[ScoreHistory] = ScoreHistory.objects.filter(lead=lead).order_by("-at", "-id")
    return list(qs[:limit])
