"""Scoring service used by the event pipeline: load the active rule set, gather a batch's facts
set-based, apply the rules, and record score history."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Case, Count, F, Max, Prefetch, Q, TextField, Value, When
from django.db.models.fields.json import KT
from django.db.models.functions import TruncDate
from django.utils import timezone
from django.utils.translation import gettext as _

from leads.models import Interaction, Lead
from scoring import rules, selectors
from scoring.models import GradeBand, ScoreHistory, ScoringRule, ScoringRuleSet, lead_field_names, rule_errors
from scoring.rules import EventBucket, LeadFacts, RuleSet, ScoreResult, Thresholds, score_from_facts

__all__ = [
    "LeadFacts",
    "RuleSet",
    "ScoreResult",
    "Thresholds",
    "interaction_counts",
    "lead_facts_for_batch",
    "lead_score_recompute",
    "rule_set_activate",
    "rule_set_active",
    "rule_set_copy",
    "score_compute",
    "score_history_record",
    "thresholds",
]


def rule_from_row(rule: ScoringRule) -> rules.Rule:
    """The pure rule of a stored one (keyed by its id, which the history's breakdown names)."""
    condition = None
    if rule.field and rule.operator:
        condition = rules.Condition(rule.field, rule.operator, rule.value, rule.negate)
    filters = tuple(
        rules.Condition(str(f["path"]), str(f["operator"]), f.get("value"), bool(f.get("negate", False)))
        for f in (rule.event_filters or [])
        if isinstance(f, dict)
    )
    return rules.Rule(
        key=str(rule.pk),
        kind=rule.kind,
        points=float(rule.points),
        label=rule.name,
        condition=condition,
        event_type=rule.event_type,
        event_filters=filters,
        cap=rule.cap,
        once=rule.once,
        window_days=rule.window_days,
        half_life_days=rule.half_life_days,
    )


def rule_set_from_row(row: ScoringRuleSet) -> RuleSet:
    """The pure rule set of ``row``; its ``rules`` and ``bands`` should be prefetched (active rules only)."""
    compiled = [rule_from_row(rule) for rule in row.rules.all()]
    return RuleSet(
        rules=tuple(compiled),
        bands=tuple(rules.GradeBand(b.key, b.min_score, b.label) for b in row.bands.all()),
        half_life_days=float(row.half_life_days),
        thresholds=Thresholds(mql=row.mql_threshold, sql=row.sql_threshold),
        version=row.version,
    )


def rule_set_active() -> RuleSet:
    """The active rule set (three queries); the built-in defaults when none is active."""
    row = (
        ScoringRuleSet.objects.filter(is_active=True)
        .prefetch_related(Prefetch("rules", queryset=ScoringRule.objects.filter(is_active=True)), "bands")
        .first()
    )
    return rules.DEFAULT_RULE_SET if row is None else rule_set_from_row(row)


def thresholds() -> Thresholds:
    """The active MQL/SQL thresholds."""
    return rule_set_active().thresholds


def event_property_columns(ruleset: RuleSet) -> dict[str, tuple[str, Any]]:
    """One column per property path a filter reads: the text at that path, only for the event types
    whose rules read it (so other events do not multiply the groups), else NULL."""
    by_path: dict[str, set[str]] = defaultdict(set)
    for type_, paths in ruleset.property_paths().items():
        for path in paths:
            by_path[path].add(type_)
    columns: dict[str, tuple[str, Any]] = {}
    for i, path in enumerate(sorted(by_path)):
        if not rules.PROPERTY_PATH.match(path):
            continue  # validated on save; never let a bad path into a lookup
        expression = Case(
            When(type__in=sorted(by_path[path]), then=KT("properties__" + path.replace(".", "__"))),
            default=Value(None),
            output_field=TextField(),
        )
        columns[f"p{i}"] = (path, expression)
    return columns


def lead_facts_for_batch(
    *, leads: Sequence[Lead], now: datetime, rule_set: RuleSet | None = None
) -> tuple[dict[int, LeadFacts], dict[int, int]]:
    """Facts for every lead in one query: interactions counted per lead, type, day and the property
    values the rules filter on.

    Also returns, per lead, how many interactions arrived since its score was last computed.
    """
    ruleset = rule_set_active() if rule_set is None else rule_set
    ids = [lead.pk for lead in leads]
    columns = event_property_columns(ruleset)
    rows = (
        Interaction.objects.filter(lead_id__in=ids)
        .values("lead_id", "type", day=TruncDate("occurred_at"), **{name: expr for name, (_, expr) in columns.items()})
        .annotate(
            n=Count("id"),
            new=Count(
                "id",
                filter=Q(lead__scorecard__score_updated_at__isnull=True)
                | Q(created_at__gt=F("lead__scorecard__score_updated_at")),
            ),
        )
        .order_by()
    )
    today = timezone.localdate(now)
    buckets: dict[int, list[EventBucket]] = defaultdict(list)
    new_events: dict[int, int] = defaultdict(int)
    for row in rows:
        properties = tuple(
            sorted((path, None if row[name] is None else str(row[name])) for name, (path, _) in columns.items())
        )
        buckets[row["lead_id"]].append(
            EventBucket(row["type"], max((today - row["day"]).days, 0), row["n"], properties)
        )
        new_events[row["lead_id"]] += row["new"]
    wanted = (ruleset.fields() | {"email"}) & set(lead_field_names())
    facts = {}
    for lead in leads:
        events = tuple(buckets.get(lead.pk, ()))  # the rules order them (see rules.events_by_type)
        inactive = max((today - timezone.localdate(lead.last_activity_at)).days, 0)
        if events:
            inactive = min(inactive, min(b.age_days for b in events))
        facts[lead.pk] = LeadFacts(
            fields={name: getattr(lead, name) for name in sorted(wanted)},
            attributes=lead.attributes if isinstance(lead.attributes, dict) else {},
            events=events,
            days_inactive=inactive,
        )
    return facts, dict(new_events)


def interaction_counts(*, lead_ids: Sequence[int]) -> dict[int, int]:
    """How many interactions each lead has now (the pipeline's "did anything arrive meanwhile?" check)."""
    rows = Interaction.objects.filter(lead_id__in=list(lead_ids)).values("lead_id").annotate(n=Count("id")).order_by()
    return {row["lead_id"]: row["n"] for row in rows}


def score_compute(*, facts: LeadFacts, rule_set: RuleSet | None = None) -> ScoreResult:
    """The score of ``facts`` under ``rule_set`` (the active one when omitted: pass it in loops)."""
    return score_from_facts(facts, rule_set_active() if rule_set is None else rule_set)


def lead_score_recompute(*, lead: Lead, now: datetime) -> ScoreResult:
    """The score ``lead`` should have now, computed from all its interactions (what tests compare with)."""
    ruleset = rule_set_active()
    facts, _ = lead_facts_for_batch(leads=[lead], now=now, rule_set=ruleset)
    return score_compute(facts=facts[lead.pk], rule_set=ruleset)


def breakdown_json(result: ScoreResult) -> list[dict[str, Any]]:
    return [{**asdict(c), "points": round(c.points, 2)} for c in result.breakdown]


def score_history_record(*, changes: Sequence[tuple[int, ScoreResult]], at: datetime, version: int = 0) -> int:
    """Store one history row per ``(lead_id, result)`` (callers pass only changed scores or grades)."""
    rows = [
        ScoreHistory(
            lead_id=lead_id,
            score=result.score,
            grade=result.grade,
            breakdown=breakdown_json(result),
            rule_set_version=version,
            at=at,
        )
        for lead_id, result in changes
    ]
    ScoreHistory.objects.bulk_create(rows, batch_size=500)
    return len(rows)


def default_rule_set_create(*, version: int = 1, activate: bool = True, using: str = "default") -> ScoringRuleSet:
    """Store the built-in rule set as rows (what the migration's data step does; also after a flush)."""
    defaults = rules.DEFAULT_RULE_SET
    row = ScoringRuleSet.objects.using(using).create(
        name="Default",
        version=version,
        is_active=activate,
        half_life_days=defaults.half_life_days,
        mql_threshold=defaults.thresholds.mql,
        sql_threshold=defaults.thresholds.sql,
    )
    GradeBand.objects.using(using).bulk_create([GradeBand(rule_set=row, **b) for b in rules.default_band_rows()])
    ScoringRule.objects.using(using).bulk_create([ScoringRule(rule_set=row, **r) for r in rules.default_rule_rows()])
    return row


@transaction.atomic
def rule_set_copy(*, rule_set: ScoringRuleSet, name: str = "", created_by: Any = None) -> ScoringRuleSet:
    """A new, inactive version with the same thresholds, bands and rules, to edit before activating it."""
    # Two copies at the same moment would collide on the unique version: one fails, nothing is half-made.
    version = (ScoringRuleSet.objects.aggregate(v=Max("version"))["v"] or 0) + 1
    copy = ScoringRuleSet.objects.create(
        name=name or rule_set.name,
        version=version,
        is_active=False,
        half_life_days=rule_set.half_life_days,
        mql_threshold=rule_set.mql_threshold,
        sql_threshold=rule_set.sql_threshold,
        notes=rule_set.notes,
        created_by=created_by,
    )
    GradeBand.objects.bulk_create(
        [GradeBand(rule_set=copy, key=b.key, label=b.label, min_score=b.min_score) for b in rule_set.bands.all()]
    )
    fields = [f.name for f in ScoringRule._meta.concrete_fields if f.name not in ("id", "rule_set")]
    ScoringRule.objects.bulk_create(
        [ScoringRule(rule_set=copy, **{f: getattr(r, f) for f in fields}) for r in rule_set.rules.all()]
    )
    return copy


@transaction.atomic
def rule_set_activate(*, rule_set: ScoringRuleSet) -> None:
    """Make ``rule_set`` the one the pipeline scores with (the previous one stays as history).

    Only the switch: leads keep their stored scores until they are next processed. Applying a rule
    set (``scoring.rescore``, a ``RescoreJob``) calls this, then rescores every lead.
    """
    ScoringRuleSet.objects.filter(is_active=True).exclude(pk=rule_set.pk).update(is_active=False)
    ScoringRuleSet.objects.filter(pk=rule_set.pk).update(is_active=True)
    rule_set.is_active = True


# --- Editing a draft rule set (the API and the rule editor page) ------------------------------

RULE_FIELDS = (
    "name", "kind", "position", "is_active", "points", "field", "operator", "value", "negate",
    "event_type", "event_filters", "cap", "once", "window_days", "half_life_days",
)  # fmt: skip
RULE_SET_FIELDS = ("name", "half_life_days", "mql_threshold", "sql_threshold", "notes")


def _check_draft(rule_set: ScoringRuleSet) -> None:
    """Versions that were ever applied stay as they were, so that every stored score can be explained.

    Every edit also stamps ``edited_at``: a preview made before it no longer describes the draft.
    """
    if selectors.rule_set_applied(rule_set):
        raise ValidationError(
            {"rule_set": [_("This version has been applied and cannot change; copy it and edit the copy.")]}
        )
    rule_set.edited_at = timezone.now()
    ScoringRuleSet.objects.filter(pk=rule_set.pk).update(edited_at=rule_set.edited_at)


def rule_set_errors(data: dict[str, Any]) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    mql, sql = data.get("mql_threshold"), data.get("sql_threshold")
    if mql is not None and sql is not None and sql < mql:
        errors["sql_threshold"] = [str(_("The SQL threshold cannot be below the MQL threshold."))]
    if (data.get("half_life_days") or 0) < 0:
        errors["half_life_days"] = [str(_("The half-life cannot be negative."))]
    if not str(data.get("name", "x")).strip():
        errors["name"] = [str(_("This field is required."))]
    return errors


@transaction.atomic
def rule_set_update(*, rule_set: ScoringRuleSet, data: dict[str, Any]) -> ScoringRuleSet:
    """Change a draft's name, default half-life, MQL/SQL thresholds or notes (field-level errors)."""
    _check_draft(rule_set)
    changes = {k: v for k, v in data.items() if k in RULE_SET_FIELDS}
    merged = {f: getattr(rule_set, f) for f in RULE_SET_FIELDS} | changes
    if errors := rule_set_errors(merged):
        raise ValidationError(errors)
    for key, value in changes.items():
        setattr(rule_set, key, value)
    rule_set.save(update_fields=[*changes, "edited_at"])
    return rule_set


def _rule_validated(rule: ScoringRule) -> ScoringRule:
    errors = rule_errors(
        kind=rule.kind,
        points=rule.points,
        field=rule.field,
        operator=rule.operator,
        value=rule.value,
        event_type=rule.event_type,
        event_filters=rule.event_filters,
    )
    if rule.kind not in rules.KINDS:
        errors["kind"] = [str(_("Choose fit, behaviour or negative."))]
    if rule.cap is not None and rule.cap <= 0:
        errors["cap"] = [str(_("A cap is a positive number of points."))]
    if rule.half_life_days is not None and rule.half_life_days < 0:
        errors["half_life_days"] = [str(_("The half-life cannot be negative."))]
    if errors:
        raise ValidationError(errors)
    return rule


@transaction.atomic
def rule_create(*, rule_set: ScoringRuleSet, data: dict[str, Any]) -> ScoringRule:
    """Add a rule to a draft (appended after its last rule unless ``position`` says otherwise)."""
    _check_draft(rule_set)
    values = {k: v for k, v in data.items() if k in RULE_FIELDS}
    if "position" not in values:
        values["position"] = (rule_set.rules.aggregate(p=Max("position"))["p"] or 0) + 1
    rule = _rule_validated(ScoringRule(rule_set=rule_set, **values))
    rule.save()
    return rule


@transaction.atomic
def rule_update(*, rule: ScoringRule, data: dict[str, Any]) -> ScoringRule:
    _check_draft(rule.rule_set)
    for key, value in data.items():
        if key in RULE_FIELDS:
            setattr(rule, key, value)
    _rule_validated(rule).save()
    return rule


@transaction.atomic
def rule_delete(*, rule: ScoringRule) -> None:
    _check_draft(rule.rule_set)
    rule.delete()


@transaction.atomic
def bands_replace(*, rule_set: ScoringRuleSet, bands: list[dict[str, Any]]) -> list[GradeBand]:
    """Replace a draft's grade bands, e.g. ``[{"key": "hot", "min_score": 80}, …]``; one must start at 0."""
    _check_draft(rule_set)
    errors: list[str] = []
    keys = [str(b.get("key", "")).strip() for b in bands]
    if not bands:
        errors.append(str(_("Give at least one grade.")))
    if any(not k for k in keys) or len(set(keys)) != len(keys):
        errors.append(str(_("Each grade needs its own key.")))
    minimums = [b.get("min_score") for b in bands]
    if any(not isinstance(m, int) or not 0 <= m <= rules.MAX_SCORE for m in minimums):
        errors.append(str(_("Minimum scores are whole numbers from 0 to 100.")))
    elif 0 not in minimums:
        errors.append(str(_("One grade must start at 0, so that every lead has a grade.")))
    if errors:
        raise ValidationError({"bands": errors})
    rule_set.bands.all().delete()
    return GradeBand.objects.bulk_create(
        [
            GradeBand(rule_set=rule_set, key=k, label=str(b.get("label", ""))[:50], min_score=b["min_score"])
            for k, b in zip(keys, bands, strict=True)
        ]
    )
