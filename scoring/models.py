"""Scoring data: rule sets (versioned, one active), their rules, grade bands and thresholds; score history."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from scoring import rules


class RuleKind(models.TextChoices):
    FIT = rules.FIT, _("Fit (who the lead is)")
    BEHAVIOUR = rules.BEHAVIOUR, _("Behaviour (what the lead did)")
    NEGATIVE = rules.NEGATIVE, _("Negative signal")


class Operator(models.TextChoices):
    EQUALS = rules.EQUALS, _("equals")
    IN = rules.IN, _("in list")
    CONTAINS = rules.CONTAINS, _("contains")
    RANGE = rules.RANGE, _("number range")
    EMPTY = rules.EMPTY, _("is empty")
    REGEX = rules.REGEX, _("matches regular expression")


class ScoringRuleSet(models.Model):
    """A version of the scoring rules with its grade bands and MQL/SQL thresholds; one is active."""

    name = models.CharField(_("name"), max_length=200)
    version = models.PositiveIntegerField(_("version"), unique=True)
    is_active = models.BooleanField(_("active"), default=False)
    half_life_days = models.FloatField(
        _("default half-life (days)"),
        default=30.0,
        help_text=_("An event this many days old counts half; 0 turns decay off. Rules may override it."),
    )
    mql_threshold = models.PositiveIntegerField(_("MQL threshold"), default=50)
    sql_threshold = models.PositiveIntegerField(_("SQL threshold"), default=80)
    notes = models.TextField(_("notes"), blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    # The last change to the draft's rules, grades or settings: an apply needs a preview made after it.
    edited_at = models.DateTimeField(_("last edited"), default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-version"]
        verbose_name = _("scoring rule set")
        verbose_name_plural = _("scoring rule sets")
        constraints = [
            models.UniqueConstraint(
                fields=["is_active"], condition=models.Q(is_active=True), name="scoring_one_active_ruleset"
            ),
            models.CheckConstraint(
                condition=models.Q(sql_threshold__gte=models.F("mql_threshold")), name="scoring_sql_above_mql"
            ),
            models.CheckConstraint(condition=models.Q(half_life_days__gte=0), name="scoring_half_life_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.name} (v{self.version})"


class GradeBand(models.Model):
    """A grade (hot, warm, cold…): a lead gets the highest band whose minimum score it reaches."""

    rule_set = models.ForeignKey(ScoringRuleSet, on_delete=models.CASCADE, related_name="bands")
    key = models.SlugField(_("key"), max_length=16)
    label = models.CharField(_("label"), max_length=50, blank=True)
    min_score = models.IntegerField(_("minimum score"))

    class Meta:
        ordering = ["rule_set", "-min_score"]
        verbose_name = _("grade band")
        verbose_name_plural = _("grade bands")
        constraints = [models.UniqueConstraint(fields=["rule_set", "key"], name="scoring_band_key_unique")]

    def __str__(self) -> str:
        return f"{self.key} ≥ {self.min_score}"


class ScoringRule(models.Model):
    """One rule of a rule set; ``scoring.rules`` evaluates it (see docs/scoring.md for the fields)."""

    rule_set = models.ForeignKey(ScoringRuleSet, on_delete=models.CASCADE, related_name="rules")
    name = models.CharField(
        _("reason shown"), max_length=200, blank=True, help_text=_("Shown in the breakdown; empty: described for you.")
    )
    kind = models.CharField(_("kind"), max_length=16, choices=RuleKind.choices)
    position = models.PositiveIntegerField(_("position"), default=0)
    is_active = models.BooleanField(_("active"), default=True)
    points = models.FloatField(_("points"), help_text=_("Per occurrence for event rules; negative rules take away."))

    # Fit rules (and negative rules on a field).
    field = models.CharField(
        _("field"),
        max_length=100,
        blank=True,
        help_text=_(
            "A lead field (job_title, industry…), attr.<key> for a custom attribute, email_domain or days_inactive."
        ),
    )
    operator = models.CharField(_("operator"), max_length=16, choices=Operator.choices, blank=True)
    value = models.JSONField(
        _("value"),
        null=True,
        blank=True,
        help_text=_('A text, a list ["a", "b"], or a range {"min": 500, "max": 1000}.'),
    )
    negate = models.BooleanField(_("negate"), default=False)

    # Behaviour rules (and negative rules on an event).
    event_type = models.CharField(_("event type"), max_length=50, blank=True)
    event_filters = models.JSONField(
        _("property filters"),
        default=list,
        blank=True,
        help_text=_('All must hold, e.g. [{"path": "url", "operator": "contains", "value": "/pricing"}].'),
    )
    cap = models.FloatField(
        _("cap"), null=True, blank=True, help_text=_("The most points this rule adds or takes away.")
    )
    once = models.BooleanField(_("once only"), default=False)
    window_days = models.PositiveIntegerField(_("time window (days)"), null=True, blank=True)
    half_life_days = models.FloatField(
        _("half-life (days)"), null=True, blank=True, help_text=_("Empty: the rule set's; 0: no decay.")
    )

    class Meta:
        ordering = ["rule_set", "position", "id"]
        verbose_name = _("scoring rule")
        verbose_name_plural = _("scoring rules")
        indexes = [models.Index(fields=["rule_set", "position"], name="scoring_rule_position_idx")]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(kind=rules.NEGATIVE) | models.Q(points__lt=0), name="scoring_negative_rule_points"
            ),
            models.CheckConstraint(
                condition=models.Q(cap__isnull=True) | models.Q(cap__gt=0), name="scoring_cap_positive"
            ),
        ]

    def __str__(self) -> str:
        return self.name or self.event_type or self.field

    def clean(self) -> None:
        errors = rule_errors(
            kind=self.kind,
            points=self.points,
            field=self.field,
            operator=self.operator,
            value=self.value,
            event_type=self.event_type,
            event_filters=self.event_filters,
        )
        if errors:
            raise ValidationError(errors)


def rule_errors(
    *, kind: str, points: float | None, field: str, operator: str, value: Any, event_type: str, event_filters: Any
) -> dict[str, list[str]]:
    """Field-level errors of a rule's settings (empty when it is valid)."""
    errors: dict[str, list[str]] = {}
    if kind == rules.NEGATIVE and points is not None and points >= 0:
        errors["points"] = [str(_("A negative rule takes points away: use a negative number."))]
    if kind in (rules.FIT, rules.BEHAVIOUR) and points is not None and points < 0:
        errors["points"] = [str(_("Use the negative kind for rules that take points away."))]
    if kind == rules.FIT or (kind == rules.NEGATIVE and not event_type):
        if not field:
            errors["field"] = [str(_("Name the field the condition reads."))]
        elif not field.startswith(rules.ATTR_PREFIX) and field not in lead_field_names() + rules.DERIVED_FIELDS:
            errors["field"] = [str(_("No lead field is called “%(field)s”.") % {"field": field})]
        if problems := rules.validate_condition(operator, value):
            errors["value" if operator in rules.OPERATORS else "operator"] = problems
    if kind == rules.BEHAVIOUR and not event_type:
        errors["event_type"] = [str(_("Name the event type this rule counts."))]
    if event_type:
        problems = []
        if not isinstance(event_filters, list):
            problems = [str(_("Property filters are a list."))]
        else:
            for item in event_filters:
                if not isinstance(item, dict) or not rules.PROPERTY_PATH.match(str(item.get("path", ""))):
                    problems.append(str(_('Each filter needs a "path" such as "url" or "page.url".')))
                else:
                    problems += rules.validate_condition(str(item.get("operator", "")), item.get("value"))
        if problems:
            errors["event_filters"] = problems
    return errors


def lead_field_names() -> tuple[str, ...]:
    """Lead fields a fit rule may read: the plain columns (no relations, no internals)."""
    from leads.models import Lead

    # Score, grade and probability are outputs of scoring (they live in LeadScore), not facts about the lead.
    hidden = {"id", "dirty_since", "search_text", "attributes"}
    return tuple(f.name for f in Lead._meta.concrete_fields if not f.is_relation and f.name not in hidden)


class ScoreHistory(models.Model):
    """A lead's score and grade whenever either changes, with the breakdown that explained it."""

    # db_index=False: scorehistory_lead_at_idx starts with lead and serves every lookup by lead; a second
    # index would be one more entry per history row, and a rescore writes up to one row per lead.
    # db_constraint=False: the database's check of each new row takes a KEY SHARE lock on its lead, which
    # writes the (wide) lead row's page: it doubled the WAL of a history insert and cost 0.76 s of
    # PostgreSQL per 100,000 rows (measured: 1.19 s and 103 MB with it, 0.43 s and 51 MB without), and an
    # apply writes up to a row per lead. History rows are written only for a lead just scored, and leads
    # are deleted through the ORM, whose CASCADE removes them (Django does it, not the constraint).
    lead = models.ForeignKey(
        "leads.Lead",
        on_delete=models.CASCADE,
        related_name="score_history",
        db_index=False,
        db_constraint=False,
    )
    score = models.IntegerField(_("score"))
    grade = models.CharField(_("grade"), max_length=16, blank=True)
    # [{"rule": key, "kind": …, "points": 4.0, "count": 2, "reason": "+4 content_download ×2"}, …]
    breakdown = models.JSONField(_("breakdown"), default=list, blank=True)
    rule_set_version = models.PositiveIntegerField(_("rule set version"), default=0)
    at = models.DateTimeField(_("at"), default=timezone.now)

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name = _("score history")
        verbose_name_plural = _("score history")
        indexes = [models.Index(fields=["lead", "-at", "-id"], name="scorehistory_lead_at_idx")]

    def __str__(self) -> str:
        return f"{self.lead_id}: {self.score} {self.grade} @ {self.at:%Y-%m-%d %H:%M}"


class PredictiveStatus(models.TextChoices):
    PENDING = "pending", _("Waiting")
    RUNNING = "running", _("Training")
    ACTIVE = "active", _("Active")
    RETIRED = "retired", _("Replaced by a newer model")
    REJECTED = "rejected", _("Rejected (not better than the active model)")
    REFUSED = "refused", _("Refused (too little data)")
    FAILED = "failed", _("Failed")


class PredictiveModel(models.Model):
    """One training of the conversion model: its held-out quality, factors and the fitted model itself.

    At most one row is active; a new one replaces it only when its held-out AUC is at least the active
    one's on the same held-out leads (``scoring.predictive.services``).
    """

    version = models.PositiveIntegerField(_("version"), unique=True)
    status = models.CharField(
        _("status"), max_length=16, choices=PredictiveStatus.choices, default=PredictiveStatus.PENDING
    )
    is_active = models.BooleanField(_("active"), default=False)
    message = models.TextField(_("message"), blank=True, help_text=_("Why it was refused, rejected or failed."))
    trigger = models.CharField(_("trigger"), max_length=16, default="manual")  # manual | schedule
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(_("requested"), default=timezone.now)
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    n_positive = models.PositiveIntegerField(_("converted leads"), default=0)
    n_negative = models.PositiveIntegerField(_("lost leads"), default=0)
    n_train = models.PositiveIntegerField(_("training leads"), default=0)
    n_test = models.PositiveIntegerField(_("held-out leads"), default=0)
    auc = models.FloatField(_("held-out AUC"), null=True, blank=True)
    log_loss = models.FloatField(_("held-out log-loss"), null=True, blank=True)
    cv_auc = models.FloatField(_("cross-validated AUC"), null=True, blank=True)
    # The active model's AUC on the same held-out leads when this one was trained (None: there was none).
    previous_auc = models.FloatField(_("previous model's AUC"), null=True, blank=True)
    features = models.JSONField(_("features"), default=list, blank=True)  # [{"key", "label", "kind"}]
    top_factors = models.JSONField(_("top factors"), default=list, blank=True)  # [{"feature", "label", "weight"}]
    params = models.JSONField(_("parameters"), default=dict, blank=True)
    sklearn_version = models.CharField(max_length=20, blank=True)
    # The fitted model (joblib); written only by the training service, see docs/scoring.md on trust.
    artifact = models.BinaryField(null=True, blank=True, editable=False)
    artifact_sha256 = models.CharField(max_length=64, blank=True, editable=False)
    leads_scored = models.PositiveIntegerField(_("leads scored"), default=0)
    scored_at = models.DateTimeField(_("all leads scored"), null=True, blank=True)

    class Meta:
        ordering = ["-version"]
        verbose_name = _("predictive model")
        verbose_name_plural = _("predictive models")
        permissions = [("train_predictivemodel", _("Can train the predictive model"))]
        constraints = [
            models.UniqueConstraint(
                fields=["is_active"], condition=models.Q(is_active=True), name="scoring_one_active_predictive_model"
            )
        ]

    def __str__(self) -> str:
        return f"v{self.version} ({self.status})"


class RescoreMode(models.TextChoices):
    PREVIEW = "preview", _("Preview")
    APPLY = "apply", _("Apply")


class RescoreStatus(models.TextChoices):
    PENDING = "pending", _("Waiting")
    RUNNING = "running", _("Running")
    DONE = "done", _("Done")
    FAILED = "failed", _("Failed")


class RescoreJob(models.Model):
    """Every lead scored under one rule set, in the background: a preview (nothing written) or an apply.

    Both walk the leads in id batches with the same code (``scoring.rescore``), so what a preview shows
    is what an apply then writes, as long as no event arrives in between. ``summary`` holds the figures:
    score histograms and grade counts before and after, grade moves (``"warm→hot": 120``), stage moves.
    """

    rule_set = models.ForeignKey(ScoringRuleSet, on_delete=models.CASCADE, related_name="rescore_jobs")
    mode = models.CharField(_("mode"), max_length=8, choices=RescoreMode.choices)
    status = models.CharField(_("status"), max_length=8, choices=RescoreStatus.choices, default=RescoreStatus.PENDING)
    total = models.PositiveIntegerField(_("leads"), default=0)
    processed = models.PositiveIntegerField(_("processed"), default=0)
    changed_scores = models.PositiveIntegerField(_("scores changed"), default=0)
    changed_grades = models.PositiveIntegerField(_("grades changed"), default=0)
    stage_moves = models.PositiveIntegerField(_("stages moved"), default=0)
    # Apply only: leads left to the pipeline because an event arrived while the job ran.
    skipped = models.PositiveIntegerField(_("left to the pipeline"), default=0)
    summary = models.JSONField(_("summary"), default=dict, blank=True)
    error = models.TextField(_("error"), blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(_("requested"), default=timezone.now)
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("rescore job")
        verbose_name_plural = _("rescore jobs")

    def __str__(self) -> str:
        return f"{self.get_mode_display()} v{self.rule_set.version} ({self.status})"

    @property
    def percent(self) -> int:
        return min(100, self.processed * 100 // self.total) if self.total else (100 if self.status == "done" else 0)


class RescorePartStatus(models.TextChoices):
    PENDING = "pending", _("Waiting")
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    DONE = "done", _("Done")
    FAILED = "failed", _("Failed")


class RescorePart(models.Model):
    """One id range of a ``RescoreJob``: the unit a worker process reads, scores and writes.

    A job over every lead is split into parts so that every worker process takes a share (a million
    leads is a minute of one Python thread; two processes on two cores halve it) and a worker that dies
    costs one part, redelivered, not the whole job. ``tally`` holds the part's figures; the job's are
    their sum, added up by whichever part finishes last (``scoring.rescore``).
    """

    job = models.ForeignKey(RescoreJob, on_delete=models.CASCADE, related_name="parts")
    lo = models.BigIntegerField()  # first lead id of the range
    hi = models.BigIntegerField()  # past the last
    status = models.CharField(max_length=8, choices=RescorePartStatus.choices, default=RescorePartStatus.PENDING)
    tally = models.JSONField(default=dict, blank=True)
    # The Celery task that claimed the part: only it may finish it (a re-sent copy takes it over).
    task_id = models.CharField(max_length=64, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)  # claims so far: a part that kills its worker ends
    # Set when queued and when claimed: a part not touched for long has lost its message or its worker.
    touched_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["job_id", "lo"]
        constraints = [models.UniqueConstraint(fields=["job", "lo"], name="scoring_rescorepart_one_per_range")]
        verbose_name = _("rescore part")
        verbose_name_plural = _("rescore parts")

    def __str__(self) -> str:
        return f"{self.job_id} [{self.lo}, {self.hi}) {self.status}"
