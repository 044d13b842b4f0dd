"""Reads for assignment: rules, profiles, a lead's decision history and the queue."""

from __future__ import annotations

from django.db.models import QuerySet

from assignment.models import AssignmentDecision, AssignmentRule, QueueEntry, RepProfile
from leads.models import Lead


def rule_list() -> QuerySet[AssignmentRule]:
    return AssignmentRule.objects.select_related("pool_team", "cursor").prefetch_related("pool_reps")


def profile_list() -> QuerySet[RepProfile]:
    return RepProfile.objects.select_related("user", "user__team").order_by("user__username")


def lead_decisions(*, lead: Lead) -> QuerySet[AssignmentDecision]:
    """The lead's assignment decisions, newest first, with the people they name joined."""
    return AssignmentDecision.objects.filter(lead=lead).select_related("winner", "previous_owner", "decided_by")


def queue_list() -> QuerySet[QueueEntry]:
    return QueueEntry.objects.select_related("lead", "team", "rule").order_by("queued_at", "pk")
