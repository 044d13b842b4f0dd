"""People: users with a role (a Django group), teams led by managers, and hashed API keys."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils.functional import cached_property
from django.utils.translation import gettext_lazy as _
from rest_framework_api_key.models import AbstractAPIKey


class Role(models.TextChoices):
    REP = "rep", _("Sales rep")
    MARKETING = "marketing", _("Marketing")
    MANAGER = "manager", _("Manager")
    ADMIN = "admin", _("Admin")


# When a user is in several role groups, the broadest role wins.
ROLE_PRECEDENCE = (Role.ADMIN, Role.MANAGER, Role.MARKETING, Role.REP)


class Team(models.Model):
    name = models.CharField(_("name"), max_length=100, unique=True)
    manager = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("manager"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="managed_teams",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("team")
        verbose_name_plural = _("teams")

    def __str__(self) -> str:
        return self.name


class User(AbstractUser):
    """A person who signs in. The role is the user's role group; ``team`` is the team a rep works in."""

    display_name = models.CharField(_("display name"), max_length=150, blank=True)
    team = models.ForeignKey(
        Team,
        verbose_name=_("team"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="members",
    )
    language = models.CharField(
        _("language"), max_length=10, blank=True, choices=settings.LANGUAGES, help_text=_("Empty: browser default.")
    )

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")

    def __str__(self) -> str:
        return self.display_name or self.get_full_name() or self.username

    @cached_property
    def role(self) -> Role | None:
        if self.is_superuser:
            return Role.ADMIN
        names = set(self.groups.filter(name__in=Role.values).values_list("name", flat=True))
        return next((role for role in ROLE_PRECEDENCE if role.value in names), None)

    @cached_property
    def managed_team_ids(self) -> list[int]:
        return list(self.managed_teams.values_list("id", flat=True))


class UserAPIKey(AbstractAPIKey):
    """A machine credential acting as ``user``; only a salted hash of the key is stored."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_keys")
    last_used_at = models.DateTimeField(null=True, blank=True)
