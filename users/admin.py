"""Admin for people, teams and API keys."""

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.utils.translation import gettext_lazy as _
from rest_framework_api_key.admin import APIKeyModelAdmin

from users.models import Team, User, UserAPIKey


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    fieldsets = (
        *(BaseUserAdmin.fieldsets or ()),
        (_("leadcrm"), {"fields": ("display_name", "team", "language")}),
    )
    list_display = ("username", "display_name", "email", "team", "is_active", "is_staff")
    list_filter = ("team", "groups", "is_active", "is_staff")
    list_select_related = ("team",)


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin[Team]):
    list_display = ("name", "manager", "created_at")
    list_select_related = ("manager",)
    search_fields = ("name",)


@admin.register(UserAPIKey)
class UserAPIKeyAdmin(APIKeyModelAdmin):
    list_display = (*APIKeyModelAdmin.list_display, "user", "last_used_at")  # type: ignore[assignment]
    list_select_related = ("user",)
    raw_id_fields = ("user",)
