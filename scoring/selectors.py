"""Scoring reads: a lead's score history (newest first) and a breakdown explained in words."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from leads.models import Lead
from scoring import rules
from scoring.models import RescoreMode, ScoreHistory, ScoringRule, ScoringRuleSet

HISTORY_LIMIT = 30


def lead_score_history(*, lead: Lead, limit: int = HISTORY_LIMIT) -> list[ScoreHistory]:
    """The latest ``limit`` score changes of ``lead``, newest first (one indexed query)."""
    qs: QuerySet[ScoreHistory] = ScoreHistory.objects.filter(lead=lead).order_by("-at", "-id")
    return list(qs[:limit])


def rule_set_applied(rule_set: ScoringRuleSet) -> bool:
    """Whether ``rule_set`` is or was ever applied: such a version explains stored scores and never changes."""
    return rule_set.is_active or rule_set.rescore_jobs.filter(mode=RescoreMode.APPLY).exists()


def _version_rules(version: int) -> dict[str, rules.Rule]:
    """The rules of a version by key (one query). Applied versions never change (``rule_set_applied``)."""
    from scoring.services import rule_from_row

    # Every rule, enabled or not: a history row names only rules that fired under that version.
    return {str(r.pk): rule_from_row(r) for r in ScoringRule.objects.filter(rule_set__version=version)}


def breakdown_explained(row: ScoreHistory) -> list[dict[str, Any]]:
    """``row``'s breakdown, each rule with its reason in words in the current language.

    The bulk rescore stores each rule's points and count without words (``scoring.rescore``); the words
    come from the rule in its version, so they follow the reader's language. Rows the pipeline wrote
    carry their reason; it is kept when the rule cannot be found.
    """
    explained = []
    by_key = _version_rules(row.rule_set_version) if row.breakdown else {}
    for item in row.breakdown or []:
        entry = dict(item)
        rule = by_key.get(str(entry.get("rule", "")))
        if rule is not None:
            entry["reason"] = rules.reason_for(rule, float(entry.get("points", 0)), int(entry.get("count", 0)))
        entry.setdefault("reason", "")
        explained.append(entry)
    return explained
