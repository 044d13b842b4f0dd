"""Writes for assignment: route a lead (race-free), drain the queue, reassign in bulk, edit rules and profiles.

Locking (see docs/assignment.md): every routing transaction locks, in this order,
1. the lead row (``FOR NO KEY UPDATE``: the pipeline holds the same lock on its batch, so a lead is
   routed by one transaction at a time, and an owner written by another is seen before deciding);
2. the rotation cursors of **all** enabled rules, in rule-id order, in one statement.
Every assignment holds (2) until it commits, so assignments are serialized: a round-robin cursor is
read after the previous winner was committed (counts never drift), and the loads and today's
counts the capacity checks read include every earlier assignment. Taking the whole set in one
fixed order — rather than the matched rule's cursor only — matters because a pipeline batch routes
many leads in one transaction: two batches locking the cursors of different rules in different
orders could deadlock. Lead locks are always taken before cursor locks, and a transaction never
waits for a lead while it holds cursors (the pipeline claims leads with SKIP LOCKED), so the two
kinds of lock cannot form a cycle.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Count, Exists, F, GeneratedField, IntegerField, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _

from assignment import rules as engine
from assignment.models import (
    AssignmentDecision,
    AssignmentRule,
    LeadTeamMember,
    MemberRole,
    Notification,
    NotificationKind,
    Outcome,
    QueueEntry,
    RepProfile,
    RuleCursor,
    SlaClock,
    SlaPolicy,
    Strategy,
    Trigger,
)
from assignment.rules.availability import (
    add_working_minutes,
    parse_out_of_office,
    validate_out_of_office,
    validate_time_zone,
    validate_working_hours,
)
from assignment.rules.strategies import Context
from assignment.rules.validation import (
    conditions_from_json,
    validate_conditions,
    validate_options,
    validate_triggers,
)
from assignment.tasks import notification_email_task, queue_drain_task
from leads import services as leads_services
from leads.models import EventType, Interaction, Lead, LeadScore, LeadStageChange, Stage
from leads.services.pipeline import hook_batch_memo
from scoring import rules as scoring_rules
from scoring import services as scoring
from users.models import User

logger = logging.getLogger(__name__)

CLOSED_STAGES = (Stage.CONVERTED, Stage.LOST)
# Lead columns a rule's conditions must not read (internals, or not facts about the lead).
HIDDEN_LEAD_FIELDS = {"id", "dirty_since", "search_text", "attributes", "import_job", "merged_into", "created_by"}
QUEUE_DRAIN_LIMIT = 200
# Scoring's outputs (the lead's LeadScore) are facts worth routing on too; rules name them as lead fields.
SCORE_FIELDS = ("score", "grade", "conversion_probability", "priority")


def lead_condition_fields() -> tuple[str, ...]:
    """Lead fields a rule condition may name (besides ``attr.<key>``): the columns, FKs as ``<name>_id``,
    and the score card's.

    Search haystacks are left out; other generated columns (a derived priority) are facts worth routing on.
    """
    columns = tuple(
        f.attname
        for f in Lead._meta.concrete_fields
        if f.name not in HIDDEN_LEAD_FIELDS and not f.name.startswith("search_")
    )
    return (*columns, *SCORE_FIELDS)


def _generated(name: str) -> bool:
    model = LeadScore if name in SCORE_FIELDS else Lead
    return isinstance(model._meta.get_field(name.removesuffix("_id")), GeneratedField)


def sample_lead(fields: Mapping[str, Any], attributes: Mapping[str, Any] | None = None) -> Lead:
    """An unsaved lead to try rules on: its fields, and score fields on an unsaved score card."""
    lead = Lead(**{k: v for k, v in fields.items() if k not in SCORE_FIELDS}, attributes=dict(attributes or {}))
    lead.scorecard = LeadScore(**{k: v for k, v in fields.items() if k in SCORE_FIELDS})
    return lead


# --- Snapshots (set-based reads) -----------------------------------------------------------------


def lead_snapshot(lead: Lead) -> engine.LeadSnapshot:
    # An unsaved sample lead (the rule tester) has no generated values yet.
    names = [n for n in lead_condition_fields() if not (lead._state.adding and _generated(n))]
    fields = {name: getattr(lead, name) for name in names}
    return engine.LeadSnapshot(
        id=lead.pk,
        fields=fields,
        attributes=dict(lead.attributes or {}),
        owner_id=lead.owner_id,
        team_id=lead.team_id,
    )


def rule_spec(rule: AssignmentRule, *, last_user_id: int | None = None) -> engine.RuleSpec:
    """The engine's view of a rule row (``pool_reps`` prefetched by the caller)."""
    return engine.RuleSpec(
        id=rule.pk,
        name=rule.name,
        strategy=rule.strategy,
        conditions=conditions_from_json(rule.conditions),
        triggers=frozenset(rule.triggers or ()),
        pool=rule.pool,
        team_id=rule.pool_team_id,
        rep_ids=frozenset(rep.pk for rep in rule.pool_reps.all()),
        options=dict(rule.options or {}),
        last_user_id=last_user_id,
    )


def _day_start(now: datetime) -> datetime:
    """Midnight of ``now``'s day in the server's time zone: "today" of the daily capacity."""
    return timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)


def rep_snapshots(*, now: datetime, user_ids: Iterable[int] | None = None) -> list[engine.RepSnapshot]:
    """Every active user with a rep profile, with load and history, in one query.

    Open leads, won and lost are counted over the rep's owned leads (one join, conditional counts);
    leads received today come from the decision log (a correlated count on its partial index).
    """
    today = (
        AssignmentDecision.objects.filter(
            winner=OuterRef("pk"), outcome=Outcome.ASSIGNED, decided_at__gte=_day_start(now)
        )
        .order_by()
        .values("winner")
        .annotate(n=Count("pk"))
        .values("n")
    )
    owned = Q(owned_leads__merged_into__isnull=True)
    users = (
        User.objects.filter(is_active=True, rep_profile__isnull=False)
        .select_related("rep_profile")
        .annotate(
            n_open=Count("owned_leads", filter=owned & ~Q(owned_leads__stage__in=CLOSED_STAGES)),
            n_won=Count("owned_leads", filter=owned & Q(owned_leads__stage=Stage.CONVERTED)),
            n_lost=Count("owned_leads", filter=owned & Q(owned_leads__stage=Stage.LOST)),
            n_today=Coalesce(Subquery(today, output_field=IntegerField()), 0),
        )
        .order_by("pk")
    )
    if user_ids is not None:
        users = users.filter(pk__in=list(user_ids))
    return [_rep_snapshot(user) for user in users]


def _rep_snapshot(user: Any) -> engine.RepSnapshot:
    profile: RepProfile = user.rep_profile
    return engine.RepSnapshot(
        user_id=user.pk,
        name=str(user),
        team_id=user.team_id,
        is_available=profile.is_available,
        open_leads=user.n_open,
        assigned_today=user.n_today,
        daily_capacity=profile.daily_capacity,
        max_open_leads=profile.max_open_leads,
        time_zone=profile.time_zone,
        working_hours=dict(profile.working_hours or {}),
        out_of_office=parse_out_of_office(profile.out_of_office),
        territories=tuple(str(t) for t in profile.territories or ()),
        industries=tuple(str(i) for i in profile.industries or ()),
        tier=profile.tier,
        skills=tuple(str(s) for s in profile.skills or ()),
        won=user.n_won,
        lost=user.n_lost,
    )


def _enabled_rules() -> list[AssignmentRule]:
    return list(AssignmentRule.objects.filter(is_enabled=True).prefetch_related("pool_reps").order_by("position", "pk"))


def _lock_cursors(rules: Sequence[AssignmentRule]) -> dict[int, int | None]:
    """Lock the cursors of ``rules`` in rule-id order (created first if missing); rule id → last user id."""
    ids = sorted(rule.pk for rule in rules)
    if not ids:
        return {}
    locked = RuleCursor.objects.select_for_update().filter(rule_id__in=ids).order_by("rule_id")
    cursors: dict[int, int | None] = dict(locked.values_list("rule_id", "last_user_id"))
    if len(cursors) < len(ids):
        # rule_save creates each cursor; a rule written around it (a fixture, raw SQL) gets one here.
        RuleCursor.objects.bulk_create([RuleCursor(rule_id=pk) for pk in ids], ignore_conflicts=True)
        cursors = dict(locked.all().values_list("rule_id", "last_user_id"))
    return cursors


def _lock_lead(lead_id: int, *, skip_locked: bool = False) -> Lead | None:
    qs = Lead.objects.select_for_update(no_key=connection.vendor == "postgresql", skip_locked=skip_locked)
    return qs.filter(pk=lead_id).first()


# --- Routing -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RouteResult:
    """What ``lead_route`` did: the engine's decision and the record written (None: nothing to do)."""

    decision: engine.Decision | None
    record: AssignmentDecision | None

    @property
    def assigned(self) -> bool:
        return self.record is not None and self.record.outcome == Outcome.ASSIGNED


def lead_route(
    *,
    lead: Lead,
    trigger: str,
    now: datetime | None = None,
    by: User | None = None,
    rng: random.Random | None = None,
) -> RouteResult:
    """Run the assignment rules for ``lead`` and apply the decision, in one transaction (see the module docstring).

    New-lead and queue triggers do nothing when the lead has an owner by the time its row is locked
    (another worker won). A grade crossing acts only if a rule for that trigger matches. No eligible
    rep: a lead without an owner waits in its team's queue; an owned lead keeps its owner.
    """
    now = now or timezone.now()
    with transaction.atomic():
        locked = _lock_lead(lead.pk)
        if locked is None:
            return RouteResult(None, None)
        result = _route_locked(locked, trigger=trigger, now=now, by=by, rng=rng)
    # The caller's instance reflects the new owner (the pipeline holds the same lead object).
    lead.owner_id, lead.team_id = locked.owner_id, locked.team_id
    return result


def _route_locked(
    lead: Lead, *, trigger: str, now: datetime, by: User | None, rng: random.Random | None
) -> RouteResult:
    if trigger in (Trigger.NEW, Trigger.QUEUE) and lead.owner_id is not None:
        return RouteResult(None, None)
    rules = _enabled_rules()
    if not rules:
        return RouteResult(None, None)  # assignment is not set up: leads stay in the unassigned pool
    cursors = _lock_cursors(rules)
    specs = [rule_spec(rule, last_user_id=cursors.get(rule.pk)) for rule in rules]
    decision = engine.decide(
        lead=lead_snapshot(lead), rules=specs, reps=rep_snapshots(now=now), trigger=trigger, now=now, rng=rng
    )
    rule = next((r for r in rules if decision.rule is not None and r.pk == decision.rule.id), None)
    if decision.winner_id is not None:
        return RouteResult(decision, _apply_winner(lead, decision, decision.winner_id, rule, now=now, by=by))
    if trigger == Trigger.GRADE_UP and rule is None:
        return RouteResult(decision, None)  # no rule for this crossing: nothing to say
    if lead.owner_id is not None:
        return RouteResult(decision, _record(lead, decision, rule, Outcome.KEPT, now=now, by=by))
    return RouteResult(decision, _enqueue(lead, decision, rule, now=now, by=by))


def _record(
    lead: Lead,
    decision: engine.Decision,
    rule: AssignmentRule | None,
    outcome: str,
    *,
    now: datetime,
    by: User | None,
    previous_owner_id: int | None = None,
) -> AssignmentDecision:
    reason = decision.reason
    if decision.rules_skipped:
        reason += "\n" + "\n".join(decision.rules_skipped)
    return AssignmentDecision.objects.create(
        lead=lead,
        rule=rule,
        rule_name=rule.name if rule is not None else "",
        strategy=rule.strategy if rule is not None else "",
        trigger=decision.trigger,
        outcome=outcome,
        candidates=decision.candidates_json(),
        winner_id=decision.winner_id if outcome != Outcome.QUEUED else None,
        reason=reason,
        supporting=[{"user": user_id, "role": role} for user_id, role in decision.supporting],
        lead_score=lead.score,
        lead_grade=lead.grade,
        previous_owner_id=previous_owner_id if previous_owner_id is not None else lead.owner_id,
        decided_at=now,
        decided_by=by,
    )


def _apply_winner(
    lead: Lead,
    decision: engine.Decision,
    winner_id: int,
    rule: AssignmentRule | None,
    *,
    now: datetime,
    by: User | None,
) -> AssignmentDecision:
    previous = lead.owner_id
    if rule is not None:
        RuleCursor.objects.filter(rule_id=rule.pk).update(last_user_id=winner_id, assigned=F("assigned") + 1)
    if previous == winner_id:
        return _record(lead, decision, rule, Outcome.KEPT, now=now, by=by)
    winner = User.objects.select_related("team").get(pk=winner_id)
    leads_services.lead_assign(lead=lead, owner=winner, assigned_by=by)
    QueueEntry.objects.filter(lead_id=lead.pk).delete()
    _on_assigned(lead, winner, rule, now=now)
    _write_members(lead, winner, decision.supporting, collaborative=rule is not None and rule.strategy == Strategy.TEAM)
    return _record(lead, decision, rule, Outcome.ASSIGNED, now=now, by=by, previous_owner_id=previous)


def _write_members(lead: Lead, owner: User, supporting: Sequence[tuple[int, str]], *, collaborative: bool) -> None:
    """Collaborative rules replace the lead's team; otherwise only an existing owner row follows the new owner."""
    if collaborative:
        LeadTeamMember.objects.filter(lead=lead).delete()
        LeadTeamMember.objects.bulk_create(
            [LeadTeamMember(lead=lead, user=owner, role=MemberRole.OWNER)]
            + [LeadTeamMember(lead=lead, user_id=user_id, role=role) for user_id, role in supporting]
        )
        return
    LeadTeamMember.objects.filter(lead=lead, role=MemberRole.OWNER).exclude(user=owner).delete()
    if LeadTeamMember.objects.filter(lead=lead).exists():
        LeadTeamMember.objects.get_or_create(lead=lead, user=owner, defaults={"role": MemberRole.OWNER})


def _enqueue(
    lead: Lead, decision: engine.Decision, rule: AssignmentRule | None, *, now: datetime, by: User | None
) -> AssignmentDecision | None:
    """Put the lead in its team's queue; a retry from the queue updates the entry instead of logging again."""
    team_id = lead.team_id if lead.team_id is not None else (rule.pool_team_id if rule is not None else None)
    entry = QueueEntry.objects.filter(lead_id=lead.pk).first()
    if entry is not None:
        entry.attempts += 1
        entry.reason, entry.rule, entry.team_id = decision.reason, rule, team_id
        entry.save(update_fields=["attempts", "reason", "rule", "team"])
        if decision.trigger == Trigger.QUEUE:
            return None  # the drain retries every minute: one record per queueing, not per retry
    else:
        QueueEntry.objects.create(lead=lead, team_id=team_id, rule=rule, reason=decision.reason, queued_at=now)
    return _record(lead, decision, rule, Outcome.QUEUED, now=now, by=by)


def _grade_rank(grade: str, bands: Sequence[Any]) -> int:
    keys = [band.key for band in sorted(bands, key=lambda b: b.min_score)]
    return keys.index(grade) if grade in keys else -1


STAGE_RANK: dict[str, int] = {Stage.MQL: 1, Stage.SQL: 2}


def crossed_up(*, lead: Lead, previous_score: int, previous_stage: str) -> bool:
    """Whether the lead just moved up a grade or into MQL/SQL (what grade-crossing rules listen to)."""
    if STAGE_RANK.get(lead.stage, 0) > STAGE_RANK.get(previous_stage, 0):
        return True
    if lead.score <= previous_score:
        return False
    bands = scoring.rule_set_active().bands
    return _grade_rank(lead.grade, bands) > _grade_rank(scoring_rules.grade_for(previous_score, bands), bands)


def _any_rule_enabled(_lead_ids: frozenset[int]) -> bool:
    return AssignmentRule.objects.filter(is_enabled=True).exists()


def _queued_of(lead_ids: frozenset[int]) -> set[int] | None:
    if not lead_ids:
        return None  # outside a pipeline batch: ask per lead
    return set(QueueEntry.objects.filter(lead_id__in=lead_ids).values_list("lead_id", flat=True))


class PipelineHook:
    """Post-score hook (``LEADCRM_PIPELINE_HOOKS``): route new leads at once, and leads crossing a grade.

    Runs inside the pipeline's batch transaction, which already holds the lead row. Does nothing when
    no rule is enabled (assignment not set up) or the lead is closed, and leaves a queued lead to
    ``queue_drain``. Its questions about the whole batch are asked once per batch
    (``pipeline.hook_batch_memo``), and with no rule enabled the pipeline skips it for the batch.
    """

    def wants_batch(self, lead_ids: frozenset[int]) -> bool:
        return bool(hook_batch_memo("assignment:any_rule", _any_rule_enabled))

    def __call__(self, *, lead: Lead, result: Any, previous_score: int, previous_stage: str) -> None:
        if lead.stage in CLOSED_STAGES or not hook_batch_memo("assignment:any_rule", _any_rule_enabled):
            return
        if lead.owner_id is None:
            queued = hook_batch_memo("assignment:queued", _queued_of)
            is_queued = QueueEntry.objects.filter(lead_id=lead.pk).exists() if queued is None else lead.pk in queued
            if not is_queued:
                lead_route(lead=lead, trigger=Trigger.NEW)
        elif crossed_up(lead=lead, previous_score=previous_score, previous_stage=previous_stage):
            lead_route(lead=lead, trigger=Trigger.GRADE_UP)


pipeline_hook = PipelineHook()


def queue_drain(*, now: datetime | None = None, limit: int = QUEUE_DRAIN_LIMIT) -> int:
    """Try to assign queued leads, oldest first; return how many got an owner.

    Called when a rep switches availability on or gets more capacity, and every minute by beat
    (which also covers leads closing and freeing capacity, and working hours starting). One
    transaction per lead; a lead another transaction holds is skipped until the next drain.
    """
    now = now or timezone.now()
    if not _anyone_can_take(now):
        return 0
    assigned = 0
    for lead_id in QueueEntry.objects.order_by("queued_at", "pk").values_list("lead_id", flat=True)[:limit]:
        with transaction.atomic():
            lead = _lock_lead(lead_id, skip_locked=connection.features.has_select_for_update_skip_locked)
            if lead is None:
                continue
            if lead.owner_id is not None:  # assigned by hand meanwhile
                QueueEntry.objects.filter(lead_id=lead_id).delete()
                continue
            assigned += _route_locked(lead, trigger=Trigger.QUEUE, now=now, by=None, rng=None).assigned
    return assigned


def _anyone_can_take(now: datetime) -> bool:
    """A cheap pre-check: someone is switched on, in the office and below both limits (hours are not checked)."""
    any_rule = engine.RuleSpec(id=None, name="", strategy=Strategy.RANDOM)
    ctx = Context(lead=engine.LeadSnapshot(id=None), rule=any_rule, now=now, rng=random.Random())
    return any(not engine.exclusion(rep, ctx) for rep in rep_snapshots(now=now))


def leads_reassign(*, lead_ids: Sequence[int], by: User, owner: User | None = None) -> dict[str, int]:
    """Bulk reassignment by a manager: to ``owner``, or (None) by re-running the rules with the bulk trigger.

    One transaction per lead, each locking the lead and then the cursors like any routing, and each
    writing a decision record. Returns counts of assigned / kept / queued / unchanged leads.
    """
    counts = {"assigned": 0, "kept": 0, "queued": 0, "unchanged": 0}
    now = timezone.now()
    for lead_id in sorted(set(lead_ids)):
        with transaction.atomic():
            lead = _lock_lead(lead_id)
            if lead is None:
                counts["unchanged"] += 1
                continue
            if owner is None:
                record = _route_locked(lead, trigger=Trigger.BULK, now=now, by=by, rng=None).record
            else:
                record = _assign_directly(lead, owner, by=by, now=now)
            counts[record.outcome if record is not None else "unchanged"] += 1
    return counts


def _assign_directly(lead: Lead, owner: User, *, by: User, now: datetime) -> AssignmentDecision:
    _lock_cursors(_enabled_rules())  # the capacity counts the engine reads must include this one
    previous = lead.owner_id
    reason = _("Reassigned by %(by)s to %(owner)s.") % {"by": by, "owner": owner}
    if previous != owner.pk:
        leads_services.lead_assign(lead=lead, owner=owner, assigned_by=by)
        QueueEntry.objects.filter(lead_id=lead.pk).delete()
        _on_assigned(lead, owner, None, now=now)
    return AssignmentDecision.objects.create(
        lead=lead,
        trigger=Trigger.BULK,
        outcome=Outcome.ASSIGNED if previous != owner.pk else Outcome.KEPT,
        winner=owner,
        reason=reason,
        lead_score=lead.score,
        lead_grade=lead.grade,
        previous_owner_id=previous,
        decided_at=now,
        decided_by=by,
    )


def rule_test(
    *, lead: Lead, rules: Sequence[AssignmentRule] | None = None, trigger: str = Trigger.MANUAL
) -> engine.Decision:
    """What the rules (default: the enabled ones, in order) would decide for ``lead`` now; writes nothing."""
    rows = list(rules) if rules is not None else _enabled_rules()
    cursors = dict(RuleCursor.objects.filter(rule__in=rows).values_list("rule_id", "last_user_id"))
    specs = [rule_spec(rule, last_user_id=cursors.get(rule.pk)) for rule in rows]
    now = timezone.now()
    return engine.decide(lead=lead_snapshot(lead), rules=specs, reps=rep_snapshots(now=now), trigger=trigger, now=now)


# --- Rules and profiles ---------------------------------------------------------------------------


def rule_validate(*, strategy: str, conditions: Any, triggers: Any, options: Any) -> None:
    """Raise ValidationError naming each bad field, in words."""
    errors: dict[str, list[str]] = {}
    problems = validate_conditions(conditions, known_fields=lead_condition_fields())
    if problems:
        errors["conditions"] = problems
    problems = validate_triggers(triggers)
    if problems:
        errors["triggers"] = problems
    problems = validate_options(strategy, options)
    if problems:
        errors["options"] = problems
    if errors:
        raise ValidationError(errors)


@transaction.atomic
def rule_save(*, rule: AssignmentRule, pool_reps: Iterable[User] | None = None) -> AssignmentRule:
    """Validate and save a rule (new ones go last) with its cursor row."""
    rule_validate(strategy=rule.strategy, conditions=rule.conditions, triggers=rule.triggers, options=rule.options)
    if rule.pk is None and not rule.position:
        last = AssignmentRule.objects.order_by("-position").values_list("position", flat=True).first()
        rule.position = (last or 0) + 1
    rule.save()
    RuleCursor.objects.get_or_create(rule=rule)
    if pool_reps is not None:
        rule.pool_reps.set(list(pool_reps))
    return rule


@transaction.atomic
def rules_reorder(*, rule_ids: Sequence[int]) -> None:
    """Give the listed rules positions 1, 2, 3… in that order; unlisted rules keep theirs after them."""
    known = set(AssignmentRule.objects.filter(pk__in=rule_ids).values_list("pk", flat=True))
    missing = [pk for pk in rule_ids if pk not in known]
    if missing or len(set(rule_ids)) != len(rule_ids):
        raise ValidationError({"rule_ids": [_("Each id must name a rule, once.")]})
    rows = list(AssignmentRule.objects.filter(pk__in=rule_ids))
    position = {pk: index + 1 for index, pk in enumerate(rule_ids)}
    for rule in rows:
        rule.position = position[rule.pk]
    AssignmentRule.objects.bulk_update(rows, ["position"])
    rest = AssignmentRule.objects.exclude(pk__in=rule_ids).order_by("position", "pk")
    for offset, rule in enumerate(rest, start=len(rule_ids) + 1):
        if rule.position != offset:
            rule.position = offset
            rule.save(update_fields=["position"])


def profile_validate(*, time_zone: Any, working_hours: Any, out_of_office: Any) -> None:
    errors: dict[str, list[str]] = {}
    for name, problems in (
        ("time_zone", validate_time_zone(time_zone)),
        ("working_hours", validate_working_hours(working_hours)),
        ("out_of_office", validate_out_of_office(out_of_office)),
    ):
        if problems:
            errors[name] = problems
    if errors:
        raise ValidationError(errors)


@transaction.atomic
def profile_save(*, profile: RepProfile) -> RepProfile:
    """Validate and save a profile; more capacity or availability may let queued leads through (drain on commit)."""
    profile_validate(
        time_zone=profile.time_zone, working_hours=profile.working_hours, out_of_office=profile.out_of_office
    )
    profile.save()
    _drain_on_commit()
    return profile


@transaction.atomic
def availability_set(*, user: User, available: bool) -> RepProfile:
    """A rep's on/off switch; switching on drains the queue once the change is committed."""
    profile, _created = RepProfile.objects.get_or_create(user=user)
    if profile.is_available != available:
        profile.is_available = available
        profile.save(update_fields=["is_available", "updated_at"])
        if available:
            _drain_on_commit()
    return profile


def _drain_on_commit() -> None:
    transaction.on_commit(queue_drain_task.delay)


# --- Dry run --------------------------------------------------------------------------------------

DRY_RUN_MAX_LEADS = 5000


@dataclass(frozen=True)
class DryRunRow:
    lead_id: int
    lead_name: str
    score: int
    decision: engine.Decision


@dataclass(frozen=True)
class DryRun:
    rows: tuple[DryRunRow, ...]
    reps: tuple[engine.RepSnapshot, ...]


def rule_spec_from_data(data: dict[str, Any], *, position: int) -> engine.RuleSpec:
    """A draft rule (the API's rule fields, unsaved) as the engine sees it; validate it first."""
    return engine.RuleSpec(
        id=data.get("id"),
        name=str(data.get("name") or _("Draft rule %(n)s") % {"n": position}),
        strategy=str(data.get("strategy") or Strategy.ROUND_ROBIN),
        conditions=conditions_from_json(data.get("conditions") or []),
        triggers=frozenset(data.get("triggers") or (Trigger.NEW, Trigger.MANUAL, Trigger.BULK)),
        pool=str(data.get("pool") or engine.POOL_EVERYONE),
        team_id=data.get("pool_team"),
        rep_ids=frozenset(int(pk) for pk in data.get("pool_reps") or ()),
        options=dict(data.get("options") or {}),
    )


def assignment_dry_run(
    *, leads: Sequence[Lead], rules: Sequence[engine.RuleSpec] | None = None, now: datetime | None = None
) -> DryRun:
    """Replay ``leads`` (oldest first) through ``rules`` (default: the enabled ones) as new leads; write nothing.

    Starts from today's loads and the stored rotation cursors, and carries the simulation forward:
    each simulated winner gets one more open lead and one more lead that day, round-robin cursors
    advance, and each lead is decided at its own creation time (working hours, out of office). For
    leads that have no owner yet this is exactly what live routing would then do, in the same order.
    """
    if rules is None:
        rows = _enabled_rules()
        cursors = dict(RuleCursor.objects.filter(rule__in=rows).values_list("rule_id", "last_user_id"))
        rules = [rule_spec(rule, last_user_id=cursors.get(rule.pk)) for rule in rows]
    last_user = {index: rule.last_user_id for index, rule in enumerate(rules)}
    reps = {rep.user_id: rep for rep in rep_snapshots(now=now or timezone.now())}
    day = timezone.localdate(now) if now is not None else timezone.localdate()
    results: list[DryRunRow] = []
    for lead in sorted(leads, key=lambda item: (item.created_at, item.pk))[:DRY_RUN_MAX_LEADS]:
        at = lead.created_at
        if timezone.localdate(at) != day:  # a new day: nobody has received anything yet
            day = timezone.localdate(at)
            reps = {pk: replace(rep, assigned_today=0) for pk, rep in reps.items()}
        specs = [replace(rule, last_user_id=last_user[index]) for index, rule in enumerate(rules)]
        snapshot = replace(lead_snapshot(lead), owner_id=None)
        decision = engine.decide(lead=snapshot, rules=specs, reps=list(reps.values()), trigger=Trigger.NEW, now=at)
        if decision.winner_id is not None and decision.rule is not None:
            last_user[specs.index(decision.rule)] = decision.winner_id
            winner = reps[decision.winner_id]
            reps[winner.user_id] = replace(
                winner, open_leads=winner.open_leads + 1, assigned_today=winner.assigned_today + 1
            )
        results.append(DryRunRow(lead.pk, lead.name, lead.score, decision))
    return DryRun(tuple(results), tuple(reps.values()))


# --- Notifications and the first-touch SLA -------------------------------------------------------


def notify(*, user: User, kind: str, message: str, lead: Lead | None = None) -> Notification:
    """An in-app notice; e-mailed too (after commit, by a task) when the person has an address."""
    notice = Notification.objects.create(user=user, kind=kind, lead=lead, message=message)
    if user.email:
        transaction.on_commit(lambda: notification_email_task.delay(notice.pk))
    return notice


def notification_mark_read(*, notification: Notification) -> Notification:
    if notification.read_at is None:
        notification.read_at = timezone.now()
        notification.save(update_fields=["read_at"])
    return notification


def _profile_snapshot(user: User) -> engine.RepSnapshot:
    """The owner's hours and days off, for counting a deadline in their working time."""
    profile = RepProfile.objects.filter(user=user).first()
    if profile is None:
        return engine.RepSnapshot(user_id=user.pk, name=str(user))
    return engine.RepSnapshot(
        user_id=user.pk,
        name=str(user),
        time_zone=profile.time_zone,
        working_hours=dict(profile.working_hours or {}),
        out_of_office=parse_out_of_office(profile.out_of_office),
    )


def _on_assigned(lead: Lead, owner: User, rule: AssignmentRule | None, *, now: datetime) -> None:
    """Tell the new owner, and start their first-touch clock when the lead's grade has a deadline."""
    SlaClock.objects.filter(lead=lead).delete()
    policy = SlaPolicy.objects.filter(grade=lead.grade, is_active=True).first() if lead.grade else None
    deadline = ""
    if policy is not None:
        due = add_working_minutes(_profile_snapshot(owner), now, policy.minutes)
        SlaClock.objects.create(lead=lead, owner=owner, rule=rule, started_at=now, due_at=due)
        deadline = " " + _("First touch due by %(due)s.") % {"due": timezone.localtime(due).strftime("%Y-%m-%d %H:%M")}
    notify(
        user=owner,
        kind=NotificationKind.NEW_LEAD,
        lead=lead,
        message=_("New lead for you: %(lead)s.") % {"lead": lead.name} + deadline,
    )


def sla_check(*, now: datetime | None = None, limit: int = 500) -> dict[str, int]:
    """Close the first-touch clocks whose deadline passed: touched in time, or breached.

    A touch is a call/e-mail/meeting (an event type counted as a touch) logged by the owner, or a
    stage change by the owner, since the clock started. A breach notifies the owner's team manager
    and, when the rule that assigned the lead says ``sla_reassign``, re-runs that rule without the
    owner (recorded like any assignment; the new owner gets a new clock). A clock whose lead changed
    hands some other way is dropped. Runs every minute from beat; running it twice is harmless
    (each clock is closed once, under the lead's row lock).
    """
    now = now or timezone.now()
    touch_types = EventType.objects.filter(is_touch=True).values("key")
    since = {"created_by": OuterRef("owner_id"), "lead": OuterRef("lead_id")}
    clocks = (
        SlaClock.objects.filter(touched_at__isnull=True, breached_at__isnull=True, due_at__lte=now)
        .annotate(
            called=Exists(
                Interaction.objects.filter(**since, type__in=touch_types, created_at__gte=OuterRef("started_at"))
            ),
            moved=Exists(
                LeadStageChange.objects.filter(
                    lead=OuterRef("lead_id"), changed_by=OuterRef("owner_id"), changed_at__gte=OuterRef("started_at")
                )
            ),
        )
        .select_related("owner__team__manager", "rule")
        .prefetch_related("rule__pool_reps")
        .order_by("due_at")[:limit]
    )
    counts = {"touched": 0, "breached": 0, "reassigned": 0, "dropped": 0}
    for clock in clocks:
        with transaction.atomic():
            lead = _lock_lead(clock.lead_id)
            if lead is None or lead.owner_id != clock.owner_id:
                SlaClock.objects.filter(pk=clock.pk).delete()
                counts["dropped"] += 1
                continue
            if clock.called or clock.moved:
                SlaClock.objects.filter(pk=clock.pk).update(touched_at=now)
                counts["touched"] += 1
                continue
            SlaClock.objects.filter(pk=clock.pk).update(breached_at=now)
            counts["breached"] += 1
            _notify_breach(lead, clock)
            if clock.rule is not None and clock.rule.is_enabled and (clock.rule.options or {}).get("sla_reassign"):
                counts["reassigned"] += _sla_reassign(lead, clock, clock.rule, now=now)
    return counts


def _notify_breach(lead: Lead, clock: SlaClock) -> None:
    manager = clock.owner.team.manager if clock.owner.team is not None else None
    if manager is None:
        logger.warning("sla: lead %s breached, but %s has no team manager to tell", lead.pk, clock.owner)
        return
    notify(
        user=manager,
        kind=NotificationKind.SLA_BREACH,
        lead=lead,
        message=_("%(owner)s missed the first-touch deadline (%(due)s) for %(lead)s.")
        % {"owner": clock.owner, "due": timezone.localtime(clock.due_at).strftime("%Y-%m-%d %H:%M"), "lead": lead.name},
    )


def _sla_reassign(lead: Lead, clock: SlaClock, rule: AssignmentRule, *, now: datetime) -> int:
    """Re-run the rule that assigned ``lead`` without its owner; 1 when someone else got it."""
    cursors = _lock_cursors(_enabled_rules())
    decision = engine.decide(
        lead=lead_snapshot(lead),
        rules=[rule_spec(rule, last_user_id=cursors.get(rule.pk))],
        reps=rep_snapshots(now=now),
        trigger=Trigger.SLA,
        now=now,
        exclude=frozenset({clock.owner_id}),
    )
    if decision.winner_id is None:
        _record(lead, decision, rule, Outcome.KEPT, now=now, by=None)
        return 0
    _apply_winner(lead, decision, decision.winner_id, rule, now=now, by=None)
    return 1
