"""Reads for leads. ``lead_visible_to`` is the one place that decides who sees which lead."""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser
from django.db.models import Q, QuerySet

from leads.models import Interaction, Lead, LeadStageChange
from users.models import Role, User


def lead_visibility_q(user: User) -> Q | None:
    """The condition a lead must meet to be visible to ``user``; None means every lead."""
    role = user.role
    if role in (Role.ADMIN, Role.MARKETING):
        return None
    if role == Role.MANAGER:
        team_ids = user.managed_team_ids
        member_ids = list(User.objects.filter(team_id__in=team_ids).values_list("id", flat=True))
        # A manager also sees what they own themselves.
        return Q(team_id__in=team_ids) | Q(owner_id__in=[*member_ids, user.pk])
    if role == Role.REP:
        own = Q(owner_id=user.pk)
        if user.team_id is None:
            return own
        return own | Q(owner__isnull=True, team_id=user.team_id)
    return Q(pk__in=[])  # no role: nothing


def lead_visible_to(user: User | AnonymousUser) -> QuerySet[Lead]:
    """Every lead ``user`` may see, ready for list pages (owner, team and campaign joined)."""
    qs = Lead.objects.select_related("owner", "team", "campaign").prefetch_related("tags")
    if not user.is_authenticated or not isinstance(user, User):
        return qs.none()
    condition = lead_visibility_q(user)
    return qs if condition is None else qs.filter(condition)


def lead_get_visible(*, user: User, lead_id: int) -> Lead:
    """The lead, or Lead.DoesNotExist when it does not exist *or* the user may not see it."""
    return lead_visible_to(user).get(pk=lead_id)


def lead_interactions(*, lead: Lead) -> QuerySet[Interaction]:
    return Interaction.objects.filter(lead=lead).select_related("created_by").order_by("-occurred_at", "-id")


def lead_stage_history(*, lead: Lead) -> QuerySet[LeadStageChange]:
    return LeadStageChange.objects.filter(lead=lead).select_related("changed_by").order_by("-changed_at", "-id")
