"""Admin for leads and their related records."""

from django.contrib import admin
from django.http import HttpRequest

from leads.models import (
    AnonymousEvent,
    Campaign,
    EventType,
    FormSubmission,
    ImportJob,
    ImportRowError,
    ImportUpdate,
    Interaction,
    Lead,
    LeadMerge,
    LeadStageChange,
    PipelineRun,
    Tag,
    Task,
    Visitor,
    WebForm,
)


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin[Campaign]):
    list_display = ("name", "channel", "cost", "currency", "starts_on", "ends_on")
    list_filter = ("channel",)
    search_fields = ("name", "utm_campaign")


@admin.register(Tag)
class TagAdmin(admin.ModelAdmin[Tag]):
    search_fields = ("name",)


class StageChangeInline(admin.TabularInline[LeadStageChange, Lead]):
    model = LeadStageChange
    extra = 0
    readonly_fields = ("from_stage", "to_stage", "changed_by", "changed_at", "reason")
    can_delete = False


@admin.register(Lead)
class LeadAdmin(admin.ModelAdmin[Lead]):
    list_display = ("name", "email", "phone", "company", "stage", "score", "grade", "owner", "source", "created_at")
    list_filter = ("stage", "source", "scorecard__grade", "company_size")
    list_select_related = ("owner", "scorecard")
    search_fields = ("search_text",)
    raw_id_fields = ("owner", "campaign", "created_by")
    readonly_fields = ("score", "grade", "score_updated_at", "created_at", "updated_at")
    inlines = [StageChangeInline]
    show_full_result_count = False  # COUNT(*) over millions of leads on every page is not worth it


@admin.register(LeadStageChange)
class LeadStageChangeAdmin(admin.ModelAdmin[LeadStageChange]):
    list_display = ("lead", "from_stage", "to_stage", "changed_by", "changed_at")
    raw_id_fields = ("lead", "changed_by")
    list_select_related = ("lead", "changed_by")


@admin.register(Interaction)
class InteractionAdmin(admin.ModelAdmin[Interaction]):
    list_display = ("lead", "type", "occurred_at", "external_id")
    list_filter = ("type",)
    raw_id_fields = ("lead", "created_by")
    list_select_related = ("lead",)
    show_full_result_count = False


@admin.register(EventType)
class EventTypeAdmin(admin.ModelAdmin[EventType]):
    list_display = ("key", "name", "name_zh", "category", "is_touch", "is_active", "is_builtin")
    list_filter = ("category", "is_touch", "is_active")
    search_fields = ("key", "name", "name_zh")

    def get_readonly_fields(self, request: HttpRequest, obj: EventType | None = None) -> tuple[str, ...]:
        # Events already stored refer to the key; renaming a built-in's key would orphan them.
        return ("key",) if obj is not None and obj.is_builtin else ()


@admin.register(Visitor)
class VisitorAdmin(admin.ModelAdmin[Visitor]):
    list_display = ("visitor_id", "lead", "first_seen_at", "linked_at")
    raw_id_fields = ("lead",)
    search_fields = ("visitor_id",)


@admin.register(AnonymousEvent)
class AnonymousEventAdmin(admin.ModelAdmin[AnonymousEvent]):
    list_display = ("visitor_id", "type", "occurred_at", "received_at")
    search_fields = ("visitor_id",)
    show_full_result_count = False


@admin.register(Task)
class TaskAdmin(admin.ModelAdmin[Task]):
    list_display = ("title", "kind", "lead", "assignee", "due_at", "done_at")
    list_filter = ("kind",)
    raw_id_fields = ("lead", "assignee", "created_by")
    list_select_related = ("lead", "assignee")


@admin.register(PipelineRun)
class PipelineRunAdmin(admin.ModelAdmin[PipelineRun]):
    list_display = ("started_at", "finished_at", "leads", "events", "failed")


@admin.register(WebForm)
class WebFormAdmin(admin.ModelAdmin[WebForm]):
    list_display = ("name", "slug", "default_source", "is_active", "rate_limit_per_minute")
    prepopulated_fields = {"slug": ("name",)}
    raw_id_fields = ("default_campaign", "created_by")


@admin.register(FormSubmission)
class FormSubmissionAdmin(admin.ModelAdmin[FormSubmission]):
    list_display = ("form", "status", "received_at", "ip_address", "lead")
    list_filter = ("status", "form")
    raw_id_fields = ("lead",)
    list_select_related = ("form", "lead")
    show_full_result_count = False


@admin.register(LeadMerge)
class LeadMergeAdmin(admin.ModelAdmin[LeadMerge]):
    list_display = ("primary", "merged", "merged_by", "merged_at", "undone_at")
    raw_id_fields = ("primary", "merged", "merged_by", "undone_by")


class ImportRowErrorInline(admin.TabularInline[ImportRowError, ImportJob]):
    model = ImportRowError
    extra = 0
    readonly_fields = ("line_number", "reason", "row")
    can_delete = False


@admin.register(ImportJob)
class ImportJobAdmin(admin.ModelAdmin[ImportJob]):
    list_display = ("original_filename", "status", "total", "created", "updated", "skipped", "failed", "created_at")
    list_filter = ("status",)
    raw_id_fields = ("campaign", "created_by")
    inlines = [ImportRowErrorInline]


@admin.register(ImportUpdate)
class ImportUpdateAdmin(admin.ModelAdmin[ImportUpdate]):
    list_display = ("job", "lead")
    raw_id_fields = ("job", "lead")
