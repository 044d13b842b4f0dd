"""Reads for assignment: rules, profiles, a lead's decision history and the queue."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Avg, Count, DurationField, ExpressionWrapper, F, Q, QuerySet, Sum

from assignment.models import (
    AssignmentDecision,
    AssignmentRule,
    Notification,
    Outcome,
    QueueEntry,
    RepProfile,
    SlaClock,
)
from leads.models import Lead, Stage
from users.models import User


def rule_list() -> QuerySet[AssignmentRule]:
    return AssignmentRule.objects.select_related("pool_team", "cursor").prefetch_related("pool_reps")


def profile_list() -> QuerySet[RepProfile]:
    return RepProfile.objects.select_related("user", "user__team").order_by("user__username")


def lead_decisions(*, lead: Lead) -> QuerySet[AssignmentDecision]:
    """The lead's assignment decisions, newest first, with the people they name joined."""
    return AssignmentDecision.objects.filter(lead=lead).select_related("winner", "previous_owner", "decided_by")


def queue_list() -> QuerySet[QueueEntry]:
    return QueueEntry.objects.select_related("lead", "team", "rule").order_by("queued_at", "pk")


def notifications_for(user: User) -> QuerySet[Notification]:
    return Notification.objects.filter(user=user).order_by("-created_at", "-id")


@dataclass(frozen=True)
class RepStats:
    """One rep over a period: what they received (against capacity) and how they did with it."""

    user: User
    received: int
    score_sum: int
    daily_capacity: int | None
    open_leads: int
    won: int
    lost: int
    breaches: int
    minutes_to_first_touch: float | None  # average over leads received in the period and touched since

    @property
    def conversion_rate(self) -> float | None:
        closed = self.won + self.lost
        return self.won / closed if closed else None


def rep_stats(*, users: QuerySet[User], since: datetime) -> list[RepStats]:
    """Per rep with a profile among ``users``: received leads and their score sum since ``since`` (from the
    decision log), open / won / lost owned leads, first-touch breaches and the average minutes from
    assignment to first contact. Four grouped queries whatever the number of reps."""
    people = list(users.filter(rep_profile__isnull=False).select_related("rep_profile").order_by("username"))
    ids = [person.pk for person in people]
    assigned = AssignmentDecision.objects.filter(outcome=Outcome.ASSIGNED, winner_id__in=ids, decided_at__gte=since)
    received = {
        row["winner_id"]: row
        for row in assigned.values("winner_id").annotate(n=Count("pk"), scores=Sum("lead_score")).order_by()
    }
    touch = ExpressionWrapper(F("lead__first_contacted_at") - F("decided_at"), output_field=DurationField())
    touched = {
        row["winner_id"]: row["wait"]
        for row in assigned.filter(lead__first_contacted_at__gte=F("decided_at"), lead__owner_id=F("winner_id"))
        .values("winner_id")
        .annotate(wait=Avg(touch))
        .order_by()
    }
    owned = Q(owned_leads__merged_into__isnull=True)
    outcomes = {
        row["pk"]: row
        for row in User.objects.filter(pk__in=ids)
        .values("pk")
        .annotate(
            n_open=Count("owned_leads", filter=owned & ~Q(owned_leads__stage__in=(Stage.CONVERTED, Stage.LOST))),
            n_won=Count("owned_leads", filter=owned & Q(owned_leads__stage=Stage.CONVERTED)),
            n_lost=Count("owned_leads", filter=owned & Q(owned_leads__stage=Stage.LOST)),
        )
        .order_by()
    }
    breaches = dict(
        SlaClock.objects.filter(owner_id__in=ids, breached_at__gte=since)
        .values("owner_id")
        .annotate(n=Count("pk"))
        .values_list("owner_id", "n")
        .order_by()
    )
    stats = []
    for person in people:
        got, result, wait = received.get(person.pk, {}), outcomes[person.pk], touched.get(person.pk)
        stats.append(
            RepStats(
                user=person,
                received=got.get("n", 0),
                score_sum=got.get("scores") or 0,
                daily_capacity=person.rep_profile.daily_capacity,
                open_leads=result["n_open"],
                won=result["n_won"],
                lost=result["n_lost"],
                breaches=breaches.get(person.pk, 0),
                minutes_to_first_touch=None if wait is None else round(_as_duration(wait).total_seconds() / 60, 1),
            )
        )
    return stats


def _as_duration(value: Any) -> timedelta:
    # SQLite gives the average of a duration as microseconds; PostgreSQL as an interval.
    return value if isinstance(value, timedelta) else timedelta(microseconds=float(value))
