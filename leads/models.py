"""Leads: the lead itself, where it came from (source, campaign), its event log and its stage history."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models.functions import Concat, Lower
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class SourceChannel(models.TextChoices):
    ONLINE_ADS = "online_ads", _("Online ads")
    SOCIAL_MEDIA = "social_media", _("Social media")
    EVENT = "event", _("Trade show / event")
    CONTENT = "content", _("Content marketing")
    PROMOTION = "promotion", _("Promotion")
    REFERRAL = "referral", _("Referral")
    WEB_FORM = "web_form", _("Website form")
    IMPORT = "import", _("Import")
    API = "api", _("API")
    OTHER = "other", _("Other")


class Stage(models.TextChoices):
    NEW = "new", _("New")
    CONTACTED = "contacted", _("Contacted")
    NURTURING = "nurturing", _("Nurturing")
    MQL = "mql", _("Marketing qualified")
    SQL = "sql", _("Sales qualified")
    CONVERTED = "converted", _("Converted")
    LOST = "lost", _("Disqualified / lost")
    RECYCLED = "recycled", _("Recycled")


class CompanySize(models.TextChoices):
    S1_10 = "1-10", "1–10"
    S11_50 = "11-50", "11–50"
    S51_200 = "51-200", "51–200"
    S201_500 = "201-500", "201–500"
    S501_1000 = "501-1000", "501–1,000"
    S1001_5000 = "1001-5000", "1,001–5,000"
    S5000_PLUS = "5000+", "5,000+"


class Campaign(models.Model):
    name = models.CharField(_("name"), max_length=200, unique=True)
    channel = models.CharField(_("channel"), max_length=20, choices=SourceChannel.choices)
    cost = models.DecimalField(_("cost"), max_digits=14, decimal_places=2, default=0)
    currency = models.CharField(_("currency"), max_length=3, default="CNY")
    starts_on = models.DateField(_("starts on"), null=True, blank=True)
    ends_on = models.DateField(_("ends on"), null=True, blank=True)
    utm_campaign = models.CharField(_("UTM campaign"), max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-starts_on", "name"]
        verbose_name = _("campaign")
        verbose_name_plural = _("campaigns")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(ends_on__isnull=True)
                | models.Q(starts_on__isnull=True)
                | models.Q(ends_on__gte=models.F("starts_on")),
                name="campaign_ends_after_start",
            ),
            models.CheckConstraint(condition=models.Q(cost__gte=0), name="campaign_cost_not_negative"),
        ]

    def __str__(self) -> str:
        return self.name


class Tag(models.Model):
    name = models.CharField(_("name"), max_length=50, unique=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("tag")
        verbose_name_plural = _("tags")

    def __str__(self) -> str:
        return self.name


class Lead(models.Model):
    # Contact. One name field: Chinese names have no first/last split worth forcing.
    name = models.CharField(_("name"), max_length=200)
    email = models.EmailField(_("e-mail"), max_length=254, blank=True, db_index=True)
    phone = models.CharField(
        _("phone"), max_length=32, blank=True, db_index=True, help_text=_("E.164, e.g. +8613800138000")
    )
    company = models.CharField(_("company"), max_length=200, blank=True)
    job_title = models.CharField(_("job title"), max_length=200, blank=True)
    website = models.URLField(_("website"), max_length=500, blank=True)

    # Classification.
    industry = models.CharField(_("industry"), max_length=100, blank=True, db_index=True)
    company_size = models.CharField(_("company size"), max_length=10, blank=True, choices=CompanySize.choices)
    country = models.CharField(_("country"), max_length=2, blank=True, help_text=_("ISO 3166 code, e.g. CN"))
    region = models.CharField(_("region"), max_length=100, blank=True, db_index=True)
    city = models.CharField(_("city"), max_length=100, blank=True)
    interests = models.JSONField(_("interests"), default=list, blank=True)
    tags = models.ManyToManyField(Tag, verbose_name=_("tags"), blank=True, related_name="leads")
    attributes = models.JSONField(_("custom attributes"), default=dict, blank=True)

    # Origin.
    source = models.CharField(_("source"), max_length=20, choices=SourceChannel.choices, default=SourceChannel.OTHER)
    campaign = models.ForeignKey(
        Campaign, verbose_name=_("campaign"), null=True, blank=True, on_delete=models.SET_NULL, related_name="leads"
    )
    utm_source = models.CharField(_("UTM source"), max_length=200, blank=True)
    utm_medium = models.CharField(_("UTM medium"), max_length=200, blank=True)
    utm_campaign = models.CharField(_("UTM campaign"), max_length=200, blank=True)
    utm_term = models.CharField(_("UTM term"), max_length=200, blank=True)
    utm_content = models.CharField(_("UTM content"), max_length=200, blank=True)

    # Lifecycle.
    stage = models.CharField(_("stage"), max_length=20, choices=Stage.choices, default=Stage.NEW)
    lost_reason = models.CharField(_("lost reason"), max_length=200, blank=True)
    first_contacted_at = models.DateTimeField(_("first contacted"), null=True, blank=True)
    mql_at = models.DateTimeField(_("became MQL"), null=True, blank=True)
    sql_at = models.DateTimeField(_("became SQL"), null=True, blank=True)
    converted_at = models.DateTimeField(_("converted"), null=True, blank=True)
    lost_at = models.DateTimeField(_("lost"), null=True, blank=True)

    # Ownership.
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("owner"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="owned_leads",
    )
    team = models.ForeignKey(
        "users.Team", verbose_name=_("team"), null=True, blank=True, on_delete=models.SET_NULL, related_name="leads"
    )

    # Score (computed by the scoring app; never edited by hand).
    score = models.IntegerField(_("score"), default=0)
    grade = models.CharField(_("grade"), max_length=16, blank=True)
    score_updated_at = models.DateTimeField(_("score updated"), null=True, blank=True)

    # Not null on purpose: it is a keyset-pagination key. A new lead's last activity is its creation.
    last_activity_at = models.DateTimeField(_("last activity"), default=timezone.now)
    do_not_contact = models.BooleanField(_("do not contact"), default=False)

    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", editable=False
    )

    # Lower-cased haystack for the free-text search; PostgreSQL indexes it with trigrams.
    search_text = models.GeneratedField(
        expression=Lower(
            Concat(
                "name",
                models.Value(" "),
                "email",
                models.Value(" "),
                "phone",
                models.Value(" "),
                "company",
                output_field=models.TextField(),
            )
        ),
        output_field=models.TextField(),
        db_persist=True,
    )

    class Meta:
        verbose_name = _("lead")
        verbose_name_plural = _("leads")
        # Each list ordering is (key, id) so keyset pagination walks an index at any depth.
        indexes = [
            models.Index(fields=["-created_at", "-id"], name="lead_created_idx"),
            models.Index(fields=["-score", "-id"], name="lead_score_idx"),
            models.Index(fields=["-last_activity_at", "-id"], name="lead_activity_idx"),
            models.Index(fields=["owner", "-created_at"], name="lead_owner_created_idx"),
            models.Index(fields=["team", "owner"], name="lead_team_owner_idx"),
            models.Index(fields=["stage", "-created_at"], name="lead_stage_created_idx"),
            models.Index(fields=["source"], name="lead_source_idx"),
            models.Index(fields=["grade"], name="lead_grade_idx"),
        ]

    def __str__(self) -> str:
        return self.name


class LeadStageChange(models.Model):
    """One row per stage change: who moved the lead, from where, to where, when, and why."""

    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="stage_changes")
    from_stage = models.CharField(max_length=20, choices=Stage.choices, blank=True)
    to_stage = models.CharField(max_length=20, choices=Stage.choices)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    changed_at = models.DateTimeField(default=timezone.now)
    reason = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-changed_at", "-id"]
        indexes = [models.Index(fields=["lead", "-changed_at"], name="stagechange_lead_idx")]
        verbose_name = _("stage change")
        verbose_name_plural = _("stage changes")

    def __str__(self) -> str:
        return f"{self.lead_id}: {self.from_stage or '∅'} → {self.to_stage}"


class Interaction(models.Model):
    """The event log: anything that happened to a lead. ``external_id`` makes ingestion idempotent."""

    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="interactions")
    type = models.CharField(_("type"), max_length=50)
    occurred_at = models.DateTimeField(_("occurred at"), default=timezone.now)
    properties = models.JSONField(_("properties"), default=dict, blank=True)
    external_id = models.CharField(max_length=200, null=True, blank=True, unique=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-occurred_at", "-id"]
        indexes = [models.Index(fields=["lead", "-occurred_at", "-id"], name="interaction_lead_time_idx")]
        verbose_name = _("interaction")
        verbose_name_plural = _("interactions")

    def __str__(self) -> str:
        return f"{self.type} @ {self.occurred_at:%Y-%m-%d %H:%M}"
