"""Admin for scoring: rule sets with their bands and rules inline, and the (read-only) score history."""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from scoring import services
from scoring.models import (
    GradeBand,
    RescoreJob,
    RescoreMode,
    RescorePart,
    ScoreHistory,
    ScoringRule,
    ScoringRuleSet,
)
from scoring.rescore import rescore_job_create
from scoring.selectors import rule_set_applied


class GradeBandInline(admin.TabularInline[GradeBand, ScoringRuleSet]):
    model = GradeBand
    extra = 0


class ScoringRuleInline(admin.StackedInline[ScoringRule, ScoringRuleSet]):
    model = ScoringRule
    extra = 0
    fieldsets = (
        (None, {"fields": ("kind", "name", "points", "is_active", "position")}),
        (_("Fit"), {"fields": ("field", "operator", "value", "negate")}),
        (_("Behaviour"), {"fields": ("event_type", "event_filters", "cap", "once", "window_days", "half_life_days")}),
    )


@admin.register(ScoringRuleSet)
class ScoringRuleSetAdmin(admin.ModelAdmin[ScoringRuleSet]):
    list_display = ("name", "version", "is_active", "mql_threshold", "sql_threshold", "half_life_days", "created_at")
    list_filter = ("is_active",)
    inlines = (GradeBandInline, ScoringRuleInline)
    readonly_fields = ("is_active", "created_at", "created_by")
    actions = ("copy_as_new_version", "activate")

    @admin.action(description=_("Copy as a new (inactive) version"))
    def copy_as_new_version(self, request: HttpRequest, queryset: QuerySet[ScoringRuleSet]) -> None:
        for rule_set in queryset:
            copy = services.rule_set_copy(rule_set=rule_set, created_by=request.user)
            self.message_user(request, _("Created %(rule_set)s.") % {"rule_set": copy})

    @admin.action(description=_("Apply (activate and rescore every lead)"))
    def activate(self, request: HttpRequest, queryset: QuerySet[ScoringRuleSet]) -> None:
        if queryset.count() != 1:
            self.message_user(request, _("Choose exactly one rule set to activate."), messages.ERROR)
            return
        rule_set = queryset.get()
        try:
            job = rescore_job_create(rule_set=rule_set, mode=RescoreMode.APPLY, created_by=request.user)
        except ValidationError as exc:
            self.message_user(request, " ".join(exc.messages), messages.ERROR)
            return
        self.message_user(
            request,
            _("%(rule_set)s is being applied: every lead is rescored in the background (job %(job)s).")
            % {"rule_set": rule_set, "job": job.pk},
        )

    def has_change_permission(self, request: HttpRequest, obj: ScoringRuleSet | None = None) -> bool:
        # An applied version explains the scores it made: it stays as it was (copy it to change it).
        if obj is not None and rule_set_applied(obj):
            return False
        return super().has_change_permission(request, obj)


@admin.register(ScoringRule)
class ScoringRuleAdmin(admin.ModelAdmin[ScoringRule]):
    list_display = ("__str__", "rule_set", "kind", "points", "field", "operator", "event_type", "is_active", "position")
    list_filter = ("rule_set", "kind", "is_active")
    search_fields = ("name", "field", "event_type")

    def has_change_permission(self, request: HttpRequest, obj: ScoringRule | None = None) -> bool:
        if obj is not None and rule_set_applied(obj.rule_set):
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: ScoringRule | None = None) -> bool:
        if obj is not None and rule_set_applied(obj.rule_set):
            return False
        return super().has_delete_permission(request, obj)


@admin.register(ScoreHistory)
class ScoreHistoryAdmin(admin.ModelAdmin[ScoreHistory]):
    list_display = ("lead", "score", "grade", "rule_set_version", "at")
    list_filter = ("grade",)
    raw_id_fields = ("lead",)
    date_hierarchy = "at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: ScoreHistory | None = None) -> bool:
        return False


class RescorePartInline(admin.TabularInline[RescorePart, RescoreJob]):
    """Each id range's state: which part a failure or a stuck job is in."""

    model = RescorePart
    fields = ("lo", "hi", "status", "touched_at", "finished_at")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: RescoreJob | None = None) -> bool:
        return False


@admin.register(RescoreJob)
class RescoreJobAdmin(admin.ModelAdmin[RescoreJob]):
    list_display = ("__str__", "status", "processed", "total", "changed_scores", "changed_grades", "created_at")
    list_filter = ("mode", "status")
    readonly_fields = [f.name for f in RescoreJob._meta.fields]
    inlines = [RescorePartInline]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
