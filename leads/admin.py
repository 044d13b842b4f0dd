"""Admin for leads and their related records."""

from django.contrib import admin

from leads.models import Campaign, Interaction, Lead, LeadStageChange, Tag


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
    list_filter = ("stage", "source", "grade", "company_size")
    list_select_related = ("owner",)
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
