"""Admin for assignment: rep profiles, rules (validated like the API), and the read-only log, queue and lead teams."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.http import HttpRequest

from assignment import services
from assignment.forms import AssignmentRuleForm
from assignment.models import (
    AssignmentDecision,
    AssignmentRule,
    LeadTeamMember,
    Notification,
    QueueEntry,
    RepProfile,
    RuleCursor,
    SlaClock,
    SlaPolicy,
)


class RepProfileForm(forms.ModelForm[RepProfile]):
    class Meta:
        model = RepProfile
        fields = (
            "user",
            "is_available",
            "daily_capacity",
            "max_open_leads",
            "time_zone",
            "working_hours",
            "out_of_office",
            "territories",
            "industries",
            "tier",
            "skills",
        )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        try:
            services.profile_validate(
                time_zone=data.get("time_zone"),
                working_hours=data.get("working_hours", {}),
                out_of_office=data.get("out_of_office", []),
            )
        except ValidationError as exc:
            for field, messages in exc.message_dict.items():
                self.add_error(field, messages)
        return data


@admin.register(RepProfile)
class RepProfileAdmin(admin.ModelAdmin[RepProfile]):
    form = RepProfileForm
    list_display = ("user", "is_available", "daily_capacity", "max_open_leads", "tier", "time_zone")
    list_filter = ("is_available", "tier")
    search_fields = ("user__username", "user__display_name")
    raw_id_fields = ("user",)


@admin.register(AssignmentRule)
class AssignmentRuleAdmin(admin.ModelAdmin[AssignmentRule]):
    form = AssignmentRuleForm
    list_display = ("name", "position", "is_enabled", "strategy", "pool", "pool_team")
    list_editable = ("position", "is_enabled")
    list_filter = ("is_enabled", "strategy", "pool")
    filter_horizontal = ("pool_reps",)

    def save_model(self, request: HttpRequest, obj: AssignmentRule, form: Any, change: bool) -> None:
        services.rule_save(rule=obj)  # also creates the rule's rotation cursor


@admin.register(RuleCursor)
class RuleCursorAdmin(admin.ModelAdmin[RuleCursor]):
    list_display = ("rule", "last_user", "assigned", "updated_at")
    readonly_fields = ("rule", "last_user", "assigned", "updated_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(AssignmentDecision)
class AssignmentDecisionAdmin(admin.ModelAdmin[AssignmentDecision]):
    list_display = ("lead", "outcome", "winner", "rule_name", "strategy", "trigger", "decided_at", "decided_by")
    list_filter = ("outcome", "trigger", "strategy")
    raw_id_fields = ("lead", "rule", "winner", "previous_owner", "decided_by")
    date_hierarchy = "decided_at"

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # the log is a record, not an editable table

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(QueueEntry)
class QueueEntryAdmin(admin.ModelAdmin[QueueEntry]):
    list_display = ("lead", "team", "rule", "queued_at", "attempts", "reason")
    list_filter = ("team",)
    raw_id_fields = ("lead", "rule")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(LeadTeamMember)
class LeadTeamMemberAdmin(admin.ModelAdmin[LeadTeamMember]):
    list_display = ("lead", "user", "role", "added_at")
    list_filter = ("role",)
    raw_id_fields = ("lead", "user")


@admin.register(SlaPolicy)
class SlaPolicyAdmin(admin.ModelAdmin[SlaPolicy]):
    list_display = ("grade", "minutes", "is_active")
    list_editable = ("minutes", "is_active")


@admin.register(SlaClock)
class SlaClockAdmin(admin.ModelAdmin[SlaClock]):
    list_display = ("lead", "owner", "started_at", "due_at", "touched_at", "breached_at")
    list_filter = ("breached_at",)
    raw_id_fields = ("lead", "owner", "rule")
    readonly_fields = ("lead", "owner", "rule", "started_at", "due_at", "touched_at", "breached_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin[Notification]):
    list_display = ("user", "kind", "lead", "created_at", "read_at")
    list_filter = ("kind",)
    raw_id_fields = ("user", "lead")
