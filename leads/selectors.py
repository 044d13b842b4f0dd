"""Reads for leads. ``lead_visible_to`` is the one place that decides who sees which lead."""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser
from django.db.models import Q, QuerySet

from leads.models import Interaction, Lead, LeadStageChange
from users.models import Role, Team, User


def lead_visibility_q(user: User) -> Q | None:
    """The condition a lead must meet to be visible to ``user``; None means every lead."""
    role = user.role
    if role in (Role.ADMIN, Role.MARKETING):
        return None
    if role == Role.MANAGER:
        team_ids = user.managed_team_ids
        members = User.objects.filter(team_id__in=team_ids).values("id")
        # A manager also sees what they own themselves.
        return Q(team_id__in=team_ids) | Q(owner_id__in=members) | Q(owner_id=user.pk)
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


def user_assignable_to(user: User) -> QuerySet[User]:
    """People whose leads ``user`` may see: the choices of the owner filter and owner field."""
    people = User.objects.filter(is_active=True).order_by("username")
    role = user.role
    if role in (Role.ADMIN, Role.MARKETING):
        return people
    if role == Role.MANAGER:
        return people.filter(Q(team_id__in=user.managed_team_ids) | Q(pk=user.pk))
    if role == Role.REP and user.team_id is not None:
        return people.filter(Q(team_id=user.team_id) | Q(pk=user.pk))
    return people.filter(pk=user.pk)


def team_visible_to(user: User) -> QuerySet[Team]:
    """Teams ``user`` may filter by: all for marketing/admin, the led teams for a manager, a rep's own."""
    role = user.role
    if role in (Role.ADMIN, Role.MARKETING):
        return Team.objects.all()
    if role == Role.MANAGER:
        return Team.objects.filter(pk__in=user.managed_team_ids)
    return Team.objects.filter(pk=user.team_id) if user.team_id else Team.objects.none()


def lead_get_visible(*, user: User, lead_id: int) -> Lead:
    """The lead, or Lead.DoesNotExist when it does not exist *or* the user may not see it."""
    return lead_visible_to(user).get(pk=lead_id)


def lead_interactions(*, lead: Lead) -> QuerySet[Interaction]:
    return Interaction.objects.filter(lead=lead).select_related("created_by").order_by("-occurred_at", "-id")


def lead_stage_history(*, lead: Lead) -> QuerySet[LeadStageChange]:
    return LeadStageChange.objects.filter(lead=lead).select_related("changed_by").order_by("-changed_at", "-id")
