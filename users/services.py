"""Writes for people: role groups, users, teams and API keys."""

from __future__ import annotations

from django.contrib.auth.models import Group, Permission
from django.db import transaction

from users.models import Role, Team, User, UserAPIKey

# Model permissions granted to each role group, as "app_label.codename".
# Which leads a user may touch is decided by visibility (leads.selectors.lead_visible_to);
# these decide what they may do to the leads they can see.
ROLE_PERMISSIONS: dict[Role, tuple[str, ...]] = {
    Role.REP: (
        "leads.view_lead",
        "leads.add_lead",
        "leads.change_lead",
        "leads.view_interaction",
        "leads.add_interaction",
        "leads.view_campaign",
        "leads.view_tag",
    ),
    Role.MARKETING: (
        "leads.view_lead",
        "leads.add_lead",
        "leads.change_lead",
        "leads.delete_lead",
        "leads.view_interaction",
        "leads.add_interaction",
        "leads.view_campaign",
        "leads.add_campaign",
        "leads.change_campaign",
        "leads.delete_campaign",
        "leads.view_tag",
        "leads.add_tag",
        "leads.change_tag",
        "leads.view_importjob",
        "leads.add_importjob",
        "leads.change_importjob",
        "leads.view_webform",
        "leads.add_webform",
        "leads.change_webform",
        "leads.delete_webform",
        "leads.view_formsubmission",
        "leads.change_formsubmission",
        "leads.delete_formsubmission",
        "leads.view_leadmerge",
        "leads.add_leadmerge",
        "leads.change_leadmerge",
        "scoring.view_predictivemodel",
        "scoring.view_scoringruleset",
        "scoring.change_scoringruleset",
    ),
    Role.MANAGER: (
        "leads.view_lead",
        "leads.add_lead",
        "leads.change_lead",
        "leads.delete_lead",
        "leads.view_interaction",
        "leads.add_interaction",
        "leads.view_campaign",
        "leads.view_tag",
        "leads.add_tag",
        "leads.view_leadmerge",
        "leads.add_leadmerge",
        "leads.change_leadmerge",
        "users.view_team",
        "users.view_user",
        "scoring.view_predictivemodel",
        "scoring.train_predictivemodel",
        "scoring.view_scoringruleset",
        "scoring.change_scoringruleset",
    ),
}


def role_groups_sync() -> None:
    """Create the role groups and give them exactly their permissions (idempotent)."""
    for role in Role:
        group, _ = Group.objects.get_or_create(name=role.value)
        perms = Permission.objects.select_related("content_type")
        if role != Role.ADMIN:
            wanted = {tuple(p.split(".", 1)) for p in ROLE_PERMISSIONS[role]}
            candidates = perms.filter(codename__in={code for _, code in wanted})
            perms = candidates.filter(
                pk__in=[p.pk for p in candidates if (p.content_type.app_label, p.codename) in wanted]
            )
        group.permissions.set(perms)


@transaction.atomic
def team_get_or_create(*, name: str, manager: User | None = None) -> Team:
    team, created = Team.objects.get_or_create(name=name, defaults={"manager": manager})
    if not created and manager is not None and team.manager_id != manager.pk:
        team.manager = manager
        team.save(update_fields=["manager"])
    return team


@transaction.atomic
def user_create(
    *,
    username: str,
    password: str,
    role: Role,
    team: Team | None = None,
    email: str = "",
    display_name: str = "",
    language: str = "",
) -> User:
    """Create a user in one role group. A manager given a team leads it; anyone else joins it."""
    role_groups_sync()
    user = User(
        username=username,
        email=email,
        display_name=display_name,
        language=language,
        is_staff=role == Role.ADMIN,
        is_superuser=role == Role.ADMIN,
    )
    user.set_password(password)
    if team is not None and role != Role.MANAGER:
        user.team = team
    user.full_clean(exclude=["password"])
    user.save()
    user.groups.set([Group.objects.get(name=role.value)])
    if team is not None and role == Role.MANAGER:
        team_get_or_create(name=team.name, manager=user)
    return user


def api_key_create(*, user: User, name: str) -> tuple[UserAPIKey, str]:
    """Return the stored key and the plain key; the plain key is shown once and never stored."""
    api_key, key = UserAPIKey.objects.create_key(name=name, user=user)
    assert isinstance(api_key, UserAPIKey)
    return api_key, key


def api_key_revoke(*, api_key: UserAPIKey) -> None:
    api_key.revoked = True
    api_key.save(update_fields=["revoked"])


def user_set_language(*, user: User, language: str) -> None:
    user.language = language
    user.save(update_fields=["language"])
