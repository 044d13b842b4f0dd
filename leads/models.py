"""Leads: the lead itself, where it came from (source, campaign), its event log and its stage history."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db import models
from django.db.models.functions import Coalesce, Concat, Lower
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
    # Indexed in Meta (a plain B-tree each: db_index=True would add a varchar_pattern_ops copy nobody uses).
    email = models.EmailField(_("e-mail"), max_length=254, blank=True)
    phone = models.CharField(_("phone"), max_length=32, blank=True, help_text=_("E.164, e.g. +8613800138000"))
    company = models.CharField(_("company"), max_length=200, blank=True)
    job_title = models.CharField(_("job title"), max_length=200, blank=True)
    website = models.URLField(_("website"), max_length=500, blank=True)

    # Classification.
    industry = models.CharField(_("industry"), max_length=100, blank=True)
    company_size = models.CharField(_("company size"), max_length=10, blank=True, choices=CompanySize.choices)
    country = models.CharField(_("country"), max_length=2, blank=True, help_text=_("ISO 3166 code, e.g. CN"))
    region = models.CharField(_("region"), max_length=100, blank=True)
    city = models.CharField(_("city"), max_length=100, blank=True)
    interests = models.JSONField(_("interests"), default=list, blank=True)
    # The keys an import writes for every row are checked by PostgreSQL once per statement, not per row
    # (common/setfk.py, migration leads/0013): db_constraint=False here, SET_KEYS there.
    tags = models.ManyToManyField(Tag, verbose_name=_("tags"), blank=True, related_name="leads", db_constraint=False)
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
        db_index=False,  # lead_owner_created_idx starts with owner
    )
    team = models.ForeignKey(
        "users.Team",
        verbose_name=_("team"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="leads",
        db_index=False,  # lead_team_owner_idx starts with team
    )

    # Score, grade, probability and priority live in LeadScore (``lead.scorecard``), one row per lead that a
    # database trigger makes with the lead: they change with every scored event and every rescore, and kept
    # here each change would be a new version of this wide row in all its indexes (docs/scoring.md).

    # Not null on purpose: it is a keyset-pagination key. A new lead's last activity is its creation.
    last_activity_at = models.DateTimeField(_("last activity"), default=timezone.now)
    do_not_contact = models.BooleanField(_("do not contact"), default=False)

    # Data quality: a merged lead stays as a pointer to the lead it was merged into.
    merged_into = models.ForeignKey(
        "self",
        verbose_name=_("merged into"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="merged_leads",
        db_index=False,  # the partial lead_merged_idx serves every "= <id>" lookup
    )
    # The import that created this lead (undo deletes exactly these).
    import_job = models.ForeignKey(
        "leads.ImportJob",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="created_leads",
        editable=False,
        db_constraint=False,  # set-checked (see tags)
    )

    # Pipeline: set with every new interaction, cleared by the worker once score and rules are current.
    dirty_since = models.DateTimeField(null=True, blank=True, editable=False)

    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
        db_constraint=False,  # set-checked (see tags)
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
            models.Index(fields=["-last_activity_at", "-id"], name="lead_activity_idx"),
            models.Index(fields=["owner", "-created_at"], name="lead_owner_created_idx"),
            models.Index(fields=["team", "owner"], name="lead_team_owner_idx"),
            models.Index(fields=["stage", "-created_at"], name="lead_stage_created_idx"),
            models.Index(fields=["source"], name="lead_source_idx"),
            # Deduplication looks leads up by normalized e-mail and phone on every entry point.
            models.Index(fields=["email"], name="lead_email_idx"),
            models.Index(fields=["phone"], name="lead_phone_idx"),
            # No index on industry or region: their filters are case-insensitive (UPPER(x) = UPPER(y)), which
            # a plain B-tree cannot serve; walking the ordering index and filtering is fast for any value
            # common enough to matter. Every index costs each non-HOT write of a lead (docs/benchmarks.md).
            # Only the few dirty rows are indexed: the worker and the sweeper find them without a scan.
            models.Index(fields=["dirty_since"], condition=models.Q(dirty_since__isnull=False), name="lead_dirty_idx"),
            models.Index(fields=["merged_into"], condition=models.Q(merged_into__isnull=False), name="lead_merged_idx"),
        ]

    def __str__(self) -> str:
        return self.name

    # Read-only shortcuts to the score card (select_related("scorecard") in lists). Writes go through
    # the scoring services, which update LeadScore set-based.
    @property
    def score(self) -> int:
        return self.scorecard.score

    @property
    def grade(self) -> str:
        return self.scorecard.grade

    @property
    def score_updated_at(self) -> datetime | None:
        return self.scorecard.score_updated_at

    @property
    def conversion_probability(self) -> float | None:
        return self.scorecard.conversion_probability

    @property
    def priority(self) -> float:
        return self.scorecard.priority


class LeadScore(models.Model):
    """A lead's score, grade and predicted conversion, apart from the lead row.

    The scoring pipeline rewrites these on every scored event and a rescore rewrites them for every
    lead, so they sit in a narrow table with only the indexes that sort or filter on them: a change
    here is ~15 µs of PostgreSQL time, against ~175 µs for a new version of the lead row in its
    ~17 indexes (two of them GIN). Every lead has exactly one row: an AFTER INSERT trigger on the lead
    table makes it (migration leads/0009), whichever way the lead was written (ORM, COPY, raw SQL).
    """

    # The database's key is made by the migrations with ON DELETE CASCADE, which Django cannot declare
    # (leads/0009, 0010; since 0013 a set-checked key, see Lead.tags).
    lead = models.OneToOneField(
        Lead, primary_key=True, on_delete=models.CASCADE, related_name="scorecard", db_constraint=False
    )
    score = models.IntegerField(_("score"), default=0)
    grade = models.CharField(_("grade"), max_length=16, blank=True)
    score_updated_at = models.DateTimeField(_("score updated"), null=True, blank=True)
    # P(convert) from the active predictive model (scoring.predictive); null until a model has scored the lead.
    conversion_probability = models.FloatField(_("conversion probability"), null=True, blank=True)
    # The rep's queue order: score points plus the probability in percentage points (docs/scoring.md);
    # computed by the database, so it can never disagree with the two columns it reads.
    priority = models.GeneratedField(
        expression=models.F("score")
        + Coalesce(models.F("conversion_probability"), models.F("score") / models.Value(100.0)) * models.Value(100.0),
        output_field=models.FloatField(),
        db_persist=True,
        verbose_name=_("priority"),
    )

    class Meta:
        verbose_name = _("lead score")
        verbose_name_plural = _("lead scores")
        # (key, lead) so the lead list's keyset pagination walks these in order, joining leads by id.
        indexes = [
            models.Index(fields=["-score", "-lead"], name="leadscore_score_idx"),
            models.Index(fields=["-priority", "-lead"], name="leadscore_priority_idx"),
            models.Index(fields=["grade"], name="leadscore_grade_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.lead_id}: {self.score}"


# The lead's values that live on its score card (read as ``lead.score`` etc.), and their ORM paths from Lead.
SCORE_FIELDS = ("score", "grade", "score_updated_at", "conversion_probability", "priority")
SCORE_PATHS = {name: f"scorecard__{name}" for name in SCORE_FIELDS}


class LeadStageChange(models.Model):
    """One row per stage change: who moved the lead, from where, to where, when, and why."""

    # Set-checked keys (see Lead.tags). No index of its own: ``stagechange_lead_idx`` leads with it.
    lead = models.ForeignKey(
        Lead, on_delete=models.CASCADE, related_name="stage_changes", db_index=False, db_constraint=False
    )
    from_stage = models.CharField(max_length=20, choices=Stage.choices, blank=True)
    to_stage = models.CharField(max_length=20, choices=Stage.choices)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_constraint=False,
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

    # Set-checked keys (see Lead.tags).
    lead = models.ForeignKey(
        Lead, on_delete=models.CASCADE, related_name="interactions", db_index=False, db_constraint=False
    )
    type = models.CharField(_("type"), max_length=50)
    occurred_at = models.DateTimeField(_("occurred at"), default=timezone.now)
    properties = models.JSONField(_("properties"), default=dict, blank=True)
    # Unique where given (``interaction_external_id_uniq``): the events the CRM writes itself (imports,
    # forms, the pages) carry none, and a partial index leaves them out instead of indexing their NULLs.
    external_id = models.CharField(max_length=200, null=True, blank=True)  # noqa: DJ001 - NULL: none given
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_constraint=False,
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-occurred_at", "-id"]
        indexes = [models.Index(fields=["lead", "-occurred_at", "-id"], name="interaction_lead_time_idx")]
        constraints = [
            models.UniqueConstraint(
                fields=["external_id"],
                condition=models.Q(external_id__isnull=False),
                name="interaction_external_id_uniq",
                violation_error_message=_("An interaction with this external id already exists."),
            )
        ]
        verbose_name = _("interaction")
        verbose_name_plural = _("interactions")

    def __str__(self) -> str:
        return f"{self.type} @ {self.occurred_at:%Y-%m-%d %H:%M}"


class EventCategory(models.TextChoices):
    WEB = "web", _("Website")
    EMAIL = "email", _("E-mail")
    CONTENT = "content", _("Content")
    EVENT = "event", _("Webinar / event")
    SALES = "sales", _("Sales activity")
    FORM = "form", _("Form")
    SOCIAL = "social", _("Social")
    SYSTEM = "system", _("System")


class EventType(models.Model):
    """The catalogue of interaction types; admins add their own. ``key`` is what events carry in ``type``."""

    key = models.SlugField(_("key"), max_length=50, unique=True)
    name = models.CharField(_("name"), max_length=100)
    name_zh = models.CharField(_("Chinese name"), max_length=100, blank=True)
    category = models.CharField(_("category"), max_length=20, choices=EventCategory.choices, default=EventCategory.WEB)
    # A logged call, e-mail or meeting by the owner counts as the first touch (contacted, SLA).
    is_touch = models.BooleanField(_("counts as a touch"), default=False)
    is_active = models.BooleanField(_("active"), default=True)
    is_builtin = models.BooleanField(default=False, editable=False)

    class Meta:
        ordering = ["category", "key"]
        verbose_name = _("event type")
        verbose_name_plural = _("event types")

    def __str__(self) -> str:
        return self.name


class Visitor(models.Model):
    """An anonymous visitor id (cookie) and, once they submit a form, the lead they turned out to be."""

    visitor_id = models.CharField(max_length=100, unique=True)
    lead = models.ForeignKey(Lead, null=True, blank=True, on_delete=models.CASCADE, related_name="visitors")
    first_seen_at = models.DateTimeField(default=timezone.now)
    linked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return self.visitor_id


class AnonymousEvent(models.Model):
    """An event from a visitor not yet linked to a lead; it becomes an Interaction when they are."""

    visitor_id = models.CharField(max_length=100, db_index=True)
    type = models.CharField(max_length=50)
    occurred_at = models.DateTimeField()
    properties = models.JSONField(default=dict, blank=True)
    external_id = models.CharField(max_length=200, null=True, blank=True, unique=True)
    received_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["occurred_at", "id"]

    def __str__(self) -> str:
        return f"{self.visitor_id}: {self.type}"


class TaskKind(models.TextChoices):
    CALL = "call", _("Call")
    EMAIL = "email", _("E-mail")
    MEETING = "meeting", _("Meeting")
    TODO = "todo", _("To-do")


class Task(models.Model):
    """A follow-up on a lead: something someone must do by a time."""

    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="tasks")
    title = models.CharField(_("title"), max_length=200)
    kind = models.CharField(_("kind"), max_length=20, choices=TaskKind.choices, default=TaskKind.TODO)
    due_at = models.DateTimeField(_("due"))
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("assignee"), on_delete=models.CASCADE, related_name="tasks"
    )
    notes = models.TextField(_("notes"), blank=True)
    done_at = models.DateTimeField(_("done"), null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["due_at", "id"]
        indexes = [
            models.Index(
                fields=["assignee", "due_at"], condition=models.Q(done_at__isnull=True), name="task_open_due_idx"
            ),
            models.Index(fields=["lead", "due_at"], name="task_lead_idx"),
        ]
        verbose_name = _("task")
        verbose_name_plural = _("tasks")

    def __str__(self) -> str:
        return self.title


class PipelineRun(models.Model):
    """One worker batch: how many leads and events it processed, how long it took, what failed."""

    started_at = models.DateTimeField(default=timezone.now, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    leads = models.PositiveIntegerField(default=0)
    events = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"{self.started_at:%Y-%m-%d %H:%M:%S}: {self.leads} leads"


# --- Collect: web forms, imports, merges ------------------------------------------------------


class WebForm(models.Model):
    """A form on an external site that posts leads to ``/api/v1/forms/<slug>/submit/``."""

    name = models.CharField(_("name"), max_length=200)
    slug = models.SlugField(_("slug"), max_length=100, unique=True)
    # {"form field name": "lead field" | "attr:<custom attribute key>"}
    field_mapping = models.JSONField(_("field mapping"), default=dict, blank=True)
    default_source = models.CharField(
        _("source"), max_length=20, choices=SourceChannel.choices, default=SourceChannel.WEB_FORM
    )
    default_campaign = models.ForeignKey(
        Campaign, verbose_name=_("campaign"), null=True, blank=True, on_delete=models.SET_NULL
    )
    default_tags = models.JSONField(_("tags"), default=list, blank=True)
    allowed_origins = models.JSONField(_("allowed origins"), default=list, blank=True)
    success_url = models.URLField(_("success redirect URL"), max_length=500, blank=True)
    honeypot_field = models.CharField(_("honeypot field"), max_length=50, default="website_url")
    rate_limit_per_minute = models.PositiveIntegerField(_("submissions per minute"), default=30)
    is_active = models.BooleanField(_("active"), default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        verbose_name = _("web form")
        verbose_name_plural = _("web forms")

    def __str__(self) -> str:
        return self.name


class SubmissionStatus(models.TextChoices):
    ACCEPTED = "accepted", _("Accepted")
    QUARANTINED = "quarantined", _("Quarantined")
    RELEASED = "released", _("Released")
    REJECTED = "rejected", _("Rejected")


class FormSubmission(models.Model):
    """Every submission, kept as received: the audit trail, the quarantine and the idempotency record."""

    form = models.ForeignKey(WebForm, on_delete=models.CASCADE, related_name="submissions")
    received_at = models.DateTimeField(default=timezone.now)
    status = models.CharField(max_length=20, choices=SubmissionStatus.choices, default=SubmissionStatus.ACCEPTED)
    spam_reason = models.CharField(max_length=200, blank=True)
    payload = models.JSONField(default=dict)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=500, blank=True)
    referrer = models.CharField(max_length=1000, blank=True)
    idempotency_key = models.CharField(max_length=200, null=True, blank=True)  # noqa: DJ001 - NULL: no key given
    # The first answer, replayed for the same Idempotency-Key.
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.JSONField(null=True, blank=True)
    lead = models.ForeignKey(Lead, null=True, blank=True, on_delete=models.SET_NULL, related_name="form_submissions")

    class Meta:
        ordering = ["-received_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["form", "idempotency_key"],
                condition=models.Q(idempotency_key__isnull=False),
                name="submission_idempotency_unique",
            )
        ]
        indexes = [models.Index(fields=["status", "-received_at"], name="submission_status_idx")]
        verbose_name = _("form submission")
        verbose_name_plural = _("form submissions")

    def __str__(self) -> str:
        return f"{self.form_id} @ {self.received_at:%Y-%m-%d %H:%M}"


class LeadMerge(models.Model):
    """Lead ``merged`` was merged into ``primary``; ``snapshot`` holds what undo needs to put back."""

    primary = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="merges_as_primary")
    merged = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="merges_as_merged")
    merged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    merged_at = models.DateTimeField(default=timezone.now)
    snapshot = models.JSONField(default=dict)
    undone_at = models.DateTimeField(null=True, blank=True)
    undone_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-merged_at"]
        verbose_name = _("lead merge")
        verbose_name_plural = _("lead merges")

    def __str__(self) -> str:
        return f"{self.merged_id} → {self.primary_id}"


class ImportStatus(models.TextChoices):
    PENDING = "pending", _("Waiting")
    RUNNING = "running", _("Running")
    DONE = "done", _("Done")
    FAILED = "failed", _("Failed")
    UNDOING = "undoing", _("Undoing")
    UNDONE = "undone", _("Undone")


class OnDuplicate(models.TextChoices):
    SKIP = "skip", _("Skip the row")
    UPDATE = "update", _("Update the existing lead")
    CREATE = "create", _("Create a new lead anyway")


class ImportJob(models.Model):
    """A campaign-list import: the file, how its columns map to lead fields, progress and counts."""

    file = models.FileField(upload_to="imports/%Y/%m/")
    original_filename = models.CharField(max_length=255)
    status = models.CharField(max_length=20, choices=ImportStatus.choices, default=ImportStatus.PENDING)
    # {"column header": "lead field" | "attr:<key>" | ""}
    mapping = models.JSONField(default=dict, blank=True)
    campaign = models.ForeignKey(Campaign, null=True, blank=True, on_delete=models.SET_NULL, related_name="imports")
    source = models.CharField(max_length=20, choices=SourceChannel.choices, default=SourceChannel.IMPORT)
    tags = models.JSONField(default=list, blank=True)
    on_duplicate = models.CharField(max_length=10, choices=OnDuplicate.choices, default=OnDuplicate.SKIP)
    encoding = models.CharField(max_length=20, blank=True)
    delimiter = models.CharField(max_length=5, blank=True)
    total = models.PositiveIntegerField(default=0)
    processed = models.PositiveIntegerField(default=0)
    created = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # When the job last moved (created, started, a chunk committed, undo started): a job waiting,
    # running or undoing that nobody has moved for LEADCRM_IMPORT_STALE_S is sent to a worker again.
    touched_at = models.DateTimeField(default=timezone.now, editable=False)
    # The status an undo started from (done or failed): where a failed undo puts the job back.
    undo_from = models.CharField(max_length=20, choices=ImportStatus.choices, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("import")
        verbose_name_plural = _("imports")

    def __str__(self) -> str:
        return self.original_filename


class ImportRowError(models.Model):
    job = models.ForeignKey(ImportJob, on_delete=models.CASCADE, related_name="row_errors", db_constraint=False)
    line_number = models.PositiveIntegerField()
    reason = models.TextField()
    row = models.JSONField(default=dict)

    class Meta:
        ordering = ["line_number"]

    def __str__(self) -> str:
        return f"{self.job_id}:{self.line_number}"


class SkipKind(models.TextChoices):
    """Why an import skipped a row as a duplicate (``ImportSkipBatch.rows``)."""

    EMAIL = "email", _("same e-mail as an existing lead")
    PHONE = "phone", _("same phone as an existing lead")
    FILE_EMAIL = "file-email", _("same e-mail as a lead this import created")
    FILE_PHONE = "file-phone", _("same phone as a lead this import created")
    LINE = "line", _("same person as an earlier line of the chunk")


class ImportSkipBatch(models.Model):
    """The duplicates one chunk of an import skipped: one record per chunk, not per row.

    A list of returning contacts skips about half its rows. Kept as an ``ImportRowError`` each, they
    were a row, a translated reason and a COPY line per skipped row: 10-20 % of the import's time.
    ``rows`` holds ``[line, kind, ref]`` per skipped row, in line order: ``kind`` a ``SkipKind``,
    ``ref`` the lead it duplicates (the kinds but ``line``; 0 for a lead of this import that the chunk
    before was still writing, which errors.csv does not name) or the line it repeats (``line``).
    errors.csv words the reasons when it is read, in the reader's language, and takes the cells
    from the job's file (``services.import_error_rows``). A skipped row with cells beyond the file's
    header keeps them in an ``ImportRowError`` instead, as a rejected row does.
    """

    job = models.ForeignKey(
        ImportJob,
        on_delete=models.CASCADE,
        related_name="skip_batches",
        db_index=False,  # importskip_job_line_idx starts with job
    )
    first_line = models.PositiveIntegerField()  # chunks cover disjoint line ranges: batches sort by it
    rows = models.JSONField(default=list)

    class Meta:
        indexes = [models.Index(fields=["job", "first_line"], name="importskip_job_line_idx")]

    def __str__(self) -> str:
        return f"{self.job_id}:{self.first_line}"


class ImportUpdate(models.Model):
    """An existing lead an import changed, with the values it had before (what undo restores)."""

    job = models.ForeignKey(ImportJob, on_delete=models.CASCADE, related_name="lead_updates")
    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="+")
    previous = models.JSONField(default=dict)

    def __str__(self) -> str:
        return f"{self.job_id}:{self.lead_id}"
