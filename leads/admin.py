"""Admin for leads and their related records."""

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest
from django.utils.translation import gettext as _

from common.normalize import normalize_email, normalize_phone
from leads import services
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
from leads.services.leads import EDITABLE_FIELDS


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


class LeadAdminForm(forms.ModelForm[Lead]):
    """The lead fields the services may write, checked as every entry point checks them."""

    website = forms.URLField(required=False, max_length=500, assume_scheme="https")

    class Meta:
        model = Lead
        fields = [f.name for f in Lead._meta.get_fields() if f.name in EDITABLE_FIELDS | {"stage", "tags"}]

    def clean_email(self) -> str:
        return normalize_email(self.cleaned_data.get("email"))

    def clean_phone(self) -> str:
        return normalize_phone(self.cleaned_data.get("phone"))


@admin.register(Lead)
class LeadAdmin(admin.ModelAdmin[Lead]):
    """Leads in the admin go through the same services as the API and the pages.

    A new lead is an upsert (a lead with the same normalized e-mail or phone is updated instead, with
    differing values kept on its timeline); an edit is ``lead_update`` (normalized fields, a stage
    change recorded in the history). Writing the model directly would skip all of that.
    """

    form = LeadAdminForm
    list_display = ("name", "email", "phone", "company", "stage", "score", "grade", "owner", "source", "created_at")
    list_filter = ("stage", "source", "scorecard__grade", "company_size")
    list_select_related = ("owner", "scorecard")
    search_fields = ("search_text",)
    raw_id_fields = ("owner", "campaign")
    readonly_fields = ("score", "grade", "score_updated_at", "created_by", "created_at", "updated_at")
    inlines = [StageChangeInline]
    show_full_result_count = False  # COUNT(*) over millions of leads on every page is not worth it

    def save_model(self, request: HttpRequest, obj: Lead, form: forms.ModelForm[Lead], change: bool) -> None:
        user: Any = request.user
        data = form.cleaned_data
        tags = [tag.name for tag in data["tags"]] if "tags" in data else None
        if change:
            fields = {name: data[name] for name in form.changed_data if name in EDITABLE_FIELDS}
            lead = Lead.objects.get(pk=obj.pk)
            services.lead_update(lead=lead, changed_by=user, tags=tags, stage=data.get("stage"), **fields)
        else:
            fields = {name: value for name, value in data.items() if name in EDITABLE_FIELDS}
            lead, created = services.lead_upsert(
                source_label="admin", created_by=user, tags=tags or (), stage=data.get("stage") or "new", **fields
            )
            if not created:
                messages.warning(
                    request,
                    _("A lead with this e-mail or phone exists: it was updated instead (#%(id)s).") % {"id": lead.pk},
                )
        obj.pk = lead.pk
        obj.refresh_from_db()

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        # The tags were written by the service; the stage history inline is read-only.
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)


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
