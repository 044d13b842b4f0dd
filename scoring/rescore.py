"""Rescore every lead under a rule set, set-based in id ranges: a preview that writes nothing, or an apply.

A manager edits a draft rule set, previews it (how many leads change grade, the score distribution
before and after, which stages would move), then applies it. Both are a ``RescoreJob``, split into
parts of ``LEADCRM_RESCORE_BATCH_SIZE`` leads (``RescorePart``, by id range, merged leads excluded)
that the worker processes share, ``LEADCRM_RESCORE_PARALLEL`` at a time. Preview and apply walk the
leads with the same code, so the preview's figures are the apply's as long as no event arrives in
between (``tests/scoring/test_rescore.py``).

Per part:

1. one query for the leads' fields and one grouped query for their interactions (per lead, type, day
   and the property values the rules filter on: the pipeline's ``lead_facts_for_batch`` buckets);
2. ``CompiledRuleSet`` scores them (the engine's numbers, memoized; no worded breakdown);
3. apply only: one ``UPDATE … FROM unnest(…)`` writes the score cards (``LeadScore``, the narrow table
   apart from the wide lead row) whose score or grade changes, and in the same transaction a second
   writes the few leads whose stage moves; both guarded by what step 1 read. A lead that an event,
   the pipeline or a person changed meanwhile is not overwritten with a stale score: it is marked
   dirty and the pipeline, already on the new rules, scores it. Score history (rule, kind, points and
   count per rule that fired) and stage-change rows for the written leads go in with two more
   set-based inserts;
4. the part's figures (a ``Tally``) are stored on it; the part that finishes last adds them up.

Post-score hooks (assignment, nurturing) are the pipeline's per-lead work and are not run for a
bulk rescore; see docs/scoring.md.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models import Count, F, Max, Min, Prefetch, Q
from django.db.models.functions import TruncDate
from django.utils import timezone
from django.utils.translation import gettext as _

from common.db import pg_array
from leads.models import Interaction, Lead, LeadScore, LeadStageChange, Stage
from leads.services.pipeline import stage_target
from scoring import rules
from scoring.compiled import CompiledRuleSet, Fired
from scoring.models import (
    RescoreJob,
    RescoreMode,
    RescorePart,
    RescorePartStatus,
    RescoreStatus,
    ScoreHistory,
    ScoringRule,
    ScoringRuleSet,
)
from scoring.services import event_property_columns, rule_set_activate, rule_set_from_row

logger = logging.getLogger(__name__)

BINS = 10  # score histogram: 0–9, 10–19, …, 90–100
# Worth a retry of the part's task: the database went away for a moment.
TRANSIENT_ERRORS = (OperationalError, InterfaceError)
# Claims of one part by one message before it is failed: a part that kills its worker every time.
MAX_ATTEMPTS = 5


def rule_set_load(rule_set: ScoringRuleSet | int) -> rules.RuleSet:
    """The pure rule set of a stored version (its enabled rules and its bands), active or not."""
    pk = rule_set.pk if isinstance(rule_set, ScoringRuleSet) else rule_set
    enabled = ScoringRule.objects.filter(is_active=True)
    row = ScoringRuleSet.objects.prefetch_related(Prefetch("rules", queryset=enabled), "bands").get(pk=pk)
    return rule_set_from_row(row)


@dataclass
class Tally:
    """The figures of a preview or an apply, added up batch by batch."""

    total: int = 0
    changed_scores: int = 0
    changed_grades: int = 0
    stage_moves: int = 0
    skipped: int = 0
    before: list[int] = field(default_factory=lambda: [0] * BINS)
    after: list[int] = field(default_factory=lambda: [0] * BINS)
    grades_before: Counter[str] = field(default_factory=Counter)
    grades_after: Counter[str] = field(default_factory=Counter)
    grade_moves: Counter[str] = field(default_factory=Counter)
    stages: Counter[str] = field(default_factory=Counter)
    phases: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))  # seconds per phase

    def add(self, old_score: int, old_grade: str, new_score: int, new_grade: str, target: str | None) -> None:
        self.total += 1
        self.before[min(max(old_score, 0) // 10, BINS - 1)] += 1
        self.after[min(max(new_score, 0) // 10, BINS - 1)] += 1
        self.grades_before[old_grade] += 1
        self.grades_after[new_grade] += 1
        if new_score != old_score:
            self.changed_scores += 1
        if new_grade != old_grade:
            self.changed_grades += 1
            self.grade_moves[f"{old_grade or '-'}→{new_grade or '-'}"] += 1
        if target is not None:
            self.stage_moves += 1
            self.stages[target] += 1

    def merge(self, other: Tally) -> None:
        """Add another part's figures to these."""
        for name in ("total", "changed_scores", "changed_grades", "stage_moves", "skipped"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.before = [a + b for a, b in zip(self.before, other.before, strict=True)]
        self.after = [a + b for a, b in zip(self.after, other.after, strict=True)]
        self.grades_before.update(other.grades_before)
        self.grades_after.update(other.grades_after)
        self.grade_moves.update(other.grade_moves)
        self.stages.update(other.stages)
        for phase, seconds in other.phases.items():
            self.phases[phase] += seconds

    def as_json(self) -> dict[str, Any]:
        """The figures as a part stores them (``RescorePart.tally``)."""
        return {
            "total": self.total,
            "changed_scores": self.changed_scores,
            "changed_grades": self.changed_grades,
            "stage_moves": self.stage_moves,
            "skipped": self.skipped,
            "before": self.before,
            "after": self.after,
            "grades_before": dict(self.grades_before),
            "grades_after": dict(self.grades_after),
            "grade_moves": dict(self.grade_moves),
            "stages": dict(self.stages),
            "phases": dict(self.phases),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Tally:
        tally = cls(
            total=data["total"],
            changed_scores=data["changed_scores"],
            changed_grades=data["changed_grades"],
            stage_moves=data["stage_moves"],
            skipped=data["skipped"],
            before=list(data["before"]),
            after=list(data["after"]),
            grades_before=Counter(data["grades_before"]),
            grades_after=Counter(data["grades_after"]),
            grade_moves=Counter(data["grade_moves"]),
            stages=Counter(data["stages"]),
        )
        tally.phases.update(data["phases"])
        return tally

    def summary(self) -> dict[str, Any]:
        return {
            "histogram_before": self.before,
            "histogram_after": self.after,
            "grades_before": dict(self.grades_before),
            "grades_after": dict(self.grades_after),
            "grade_moves": dict(self.grade_moves.most_common()),
            "stage_moves": dict(self.stages),
            "phases_s": {phase: round(seconds, 1) for phase, seconds in self.phases.items()},
        }


@dataclass
class _Row:
    """One lead as a batch reads it, and what the new rules make of it."""

    pk: int
    score: int
    grade: str
    stage: str
    mql_at: datetime | None
    sql_at: datetime | None
    score_updated_at: datetime | None
    new_score: int = 0
    new_grade: str = ""
    target: str | None = None
    fired: tuple[Fired, ...] = ()
    dirty: bool = False  # waiting for the pipeline when the batch read it: left to the pipeline

    @property
    def changes(self) -> bool:
        return (self.new_score, self.new_grade) != (self.score, self.grade) or self.target is not None


def _id_ranges(size: int) -> Iterator[tuple[int, int]]:
    bounds = Lead.objects.filter(merged_into__isnull=True).aggregate(lo=Min("id"), hi=Max("id"))
    if bounds["lo"] is None:
        return
    lo = bounds["lo"]
    while lo <= bounds["hi"]:
        yield lo, lo + size
        lo += size


def _day(value: date | str) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def _buckets(ruleset: rules.RuleSet, lo: int, hi: int, today: date) -> dict[int, list[Any]]:
    """Per lead, ``(type, age in days, count, properties)`` buckets, exactly as ``lead_facts_for_batch``."""
    columns = event_property_columns(ruleset)
    query = (
        Interaction.objects.filter(lead_id__gte=lo, lead_id__lt=hi)
        .values("lead_id", "type", day=TruncDate("occurred_at"), **{name: expr for name, (_, expr) in columns.items()})
        .annotate(n=Count("id"))
        .order_by()
    )
    # event_property_columns numbers the paths in sorted order, so each row's pairs come out sorted already.
    paths = [path for _, (path, _) in columns.items()]
    # A raw cursor over the ORM's own SQL: millions of grouped rows, without a dict and converters each.
    sql, params = query.query.get_compiler(using=query.db).as_sql()
    by_lead: dict[int, list[Any]] = {}
    ages: dict[Any, int] = {}
    # Few distinct (value, value…) combinations repeat across millions of rows: build each tuple once.
    properties_for: dict[tuple[Any, ...], tuple[tuple[str, str | None], ...]] = {}
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for lead_id, type_, day, *values, n in cursor.fetchall():
            age = ages.get(day)
            if age is None:
                age = ages[day] = max((today - _day(day)).days, 0)
            key = tuple(values)
            properties = properties_for.get(key)
            if properties is None:
                properties = properties_for[key] = tuple(
                    (path, None if value is None else str(value)) for path, value in zip(paths, values, strict=True)
                )
            bucket = (type_, age, n, properties)
            found = by_lead.get(lead_id)
            if found is None:
                by_lead[lead_id] = [bucket]
            else:
                found.append(bucket)
    return by_lead


@dataclass
class _Batch:
    """One id range as read from the database: the leads' columns and their event buckets."""

    leads: list[tuple[Any, ...]]
    buckets: dict[int, list[Any]]
    read_s: float


def _read_batch(compiled: CompiledRuleSet, lo: int, hi: int, today: date, wants_attributes: bool) -> _Batch:
    """Read the leads with ids in [lo, hi) and their event buckets, in one read-only transaction.

    (Reading ahead on a second connection while a batch is scored was tried: on two cores, with the
    writers busy, it only made the threads fight over the GIL and the cores; docs/benchmarks.md.)
    """
    t0 = time.perf_counter()
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                # The grouped read sorts ~100k rows a batch: in memory, not in a temporary file.
                cursor.execute("SET LOCAL work_mem = '64MB'")
        columns = ["id", "scorecard__score", "scorecard__grade", "stage", "mql_at", "sql_at"]
        columns += ["scorecard__score_updated_at", "last_activity_at", "dirty_since"]
        if wants_attributes:
            columns.append("attributes")
        columns += _field_names(compiled)
        query = (
            Lead.objects.filter(id__gte=lo, id__lt=hi, merged_into__isnull=True).order_by("id").values_list(*columns)
        )
        leads = _raw_rows(query, json_column=9 if wants_attributes else None)
        buckets = _buckets(compiled.ruleset, lo, hi, today)
    return _Batch(leads, buckets, time.perf_counter() - t0)


def _raw_rows(query: Any, json_column: int | None) -> list[tuple[Any, ...]]:
    """``list(query)`` for a values_list query; on PostgreSQL straight from the cursor.

    psycopg already returns aware datetimes, so Django's per-value converters only cost time there
    (about 5 µs a row); the one JSON column is decoded here instead.
    """
    if connection.vendor != "postgresql":
        return list(query)
    sql, params = query.query.get_compiler(using=query.db).as_sql()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    if json_column is None:
        return rows
    return [
        (*row[:json_column], json.loads(row[json_column]) if isinstance(row[json_column], str) else row[json_column],
         *row[json_column + 1 :])
        for row in rows
    ]  # fmt: skip


def _field_names(compiled: CompiledRuleSet) -> list[str]:
    return sorted(compiled.fields() & {f.name for f in Lead._meta.concrete_fields})


def _score_rows(compiled: CompiledRuleSet, batch: _Batch, now: datetime, wants_attributes: bool) -> list[_Row]:
    """Score a batch's leads under ``compiled``: new score, grade, the rules that fired, the stage to move to."""
    today = timezone.localdate(now)
    names = _field_names(compiled)
    buckets = batch.buckets
    thresholds = compiled.ruleset.thresholds
    evaluate = compiled.evaluate
    # timezone.localdate() per lead, without its thread-local lookup each time; and only when a rule reads it.
    zone = timezone.get_current_timezone()
    inactivity = compiled.reads_inactivity
    rows = []
    for pk, score, grade, stage, mql_at, sql_at, updated, last_activity, dirty_since, *rest in batch.leads:
        attributes = rest.pop(0) if wants_attributes else {}
        events = buckets.get(pk, ())
        inactive = None
        if inactivity:
            inactive = max((today - last_activity.astimezone(zone).date()).days, 0)
            if events:
                inactive = min(inactive, min(bucket[1] for bucket in events))
        row = _Row(pk, score, grade, stage, mql_at, sql_at, updated, dirty=dirty_since is not None)
        row.new_score, row.new_grade, row.fired = evaluate(
            dict(zip(names, rest, strict=True)), attributes if isinstance(attributes, dict) else {}, events, inactive
        )
        row.target = stage_target(stage, row.new_score, thresholds)
        rows.append(row)
    return rows


def _score_batch(compiled: CompiledRuleSet, lo: int, hi: int, now: datetime, wants_attributes: bool) -> list[_Row]:
    """Read and score one id range in this thread (what the tests call directly)."""
    batch = _read_batch(compiled, lo, hi, timezone.localdate(now), wants_attributes)
    return _score_rows(compiled, batch, now, wants_attributes)


def _breakdown(ruleset: rules.RuleSet, fired: Sequence[Fired]) -> list[dict[str, Any]]:
    """The history's breakdown for a bulk rescore: each rule that fired with its points and count.

    The worded reason is left out: a million sentences would cost more than the scores, and the rule
    (kept in its rule set version) says what it was.
    """
    return [
        {"rule": ruleset.rules[i].key, "kind": ruleset.rules[i].kind, "points": round(p, 2), "count": n}
        for i, p, n in fired
    ]


class _BreakdownEncoder:
    """``json.dumps(_breakdown(ruleset, fired), ensure_ascii=False)``, a few times faster.

    An apply that changes every score writes a million history rows, and building a dict per rule
    that fired, then encoding it, was a third of the Python time of the write. Each rule's JSON up
    to its points is made once; per lead only the numbers are formatted (``repr`` of a float is
    what ``json`` writes; ``tests/scoring/test_rescore.py`` compares the two).
    """

    def __init__(self, ruleset: rules.RuleSet) -> None:
        self.heads = [
            f'{{"rule": {json.dumps(rule.key, ensure_ascii=False)}, "kind": {json.dumps(rule.kind)}, "points": '
            for rule in ruleset.rules
        ]
        # Leads with the same rules firing at the same ages share a breakdown, and leads with different
        # breakdowns share most of their rules' entries: encode each breakdown and each entry once.
        self.memo: dict[tuple[Fired, ...], str] = {}
        self.entries: dict[Fired, str] = {}

    def __call__(self, fired: tuple[Fired, ...]) -> str:
        text = self.memo.get(fired)
        if text is None:
            text = self.memo[fired] = "[" + ", ".join([self._entry(one) for one in fired]) + "]"
        return text

    def _entry(self, fired: Fired) -> str:
        text = self.entries.get(fired)
        if text is None:
            i, points, count = fired
            text = self.entries[fired] = f'{self.heads[i]}{round(points, 2)!r}, "count": {count}}}'
        return text


def _write(rows: list[_Row], ruleset: rules.RuleSet, now: datetime) -> list[int]:
    """Write the changed leads whose stored state is still what the batch read; return the other leads' ids.

    Those others (changed since the batch read them, or waiting for the pipeline then) are marked
    dirty: the pipeline, on the new rule set already, scores them from their facts.
    """
    for row in rows:
        if row.target is not None:
            # Passing straight to SQL also passes MQL: both stamps, first time only (as the pipeline does).
            row.mql_at = row.mql_at or now
            if row.target == Stage.SQL:
                row.sql_at = row.sql_at or now
    # A lead that was dirty when the batch read it is the pipeline's: it scores it under the new rules.
    clean = [row for row in rows if not row.dirty]
    if connection.vendor == "postgresql":
        missed = _cards_postgresql(clean, ruleset, now)
    else:
        missed = _cards_orm(clean, ruleset, now)
    stale = [row.pk for row in rows if row.dirty or row.pk in missed]
    moving = [row for row in clean if row.target is not None and row.pk not in missed]
    _stages(moving, ruleset, now)
    if stale:
        Lead.objects.filter(pk__in=stale, dirty_since__isnull=True).update(dirty_since=now)
    return stale


def _cards_postgresql(rows: list[_Row], ruleset: rules.RuleSet, now: datetime) -> set[int]:
    """Write the rows' score cards where they are as read, and their history rows: one statement.

    Only the narrow score table is written for a score or grade change (the point of LeadScore), and
    the guard is the card's own columns (score, grade and ``score_updated_at`` as read): the pipeline
    writes ``score_updated_at`` whenever it scores a lead, so a card it wrote meanwhile is left alone,
    without a look at the lead row per card. The history rows are inserted in the same statement for
    exactly the cards it wrote, so nothing but the few missed ids comes back. Returns those ids.
    """
    if not rows:
        return set()
    encode = _BreakdownEncoder(ruleset)
    cards = connection.ops.quote_name(LeadScore._meta.db_table)
    history = connection.ops.quote_name(ScoreHistory._meta.db_table)
    with connection.cursor() as cursor:
        # The part's arrays are sorted and joined in memory, not in temporary files.
        cursor.execute("SET LOCAL work_mem = '64MB'")
        cursor.execute(
            "WITH v AS MATERIALIZED (SELECT * FROM unnest(%s::bigint[], %s::int[], %s::text[], %s::int[], %s::text[],"
            " %s::timestamptz[], %s::text[]) AS v(id, score, grade, old_score, old_grade, read_at, breakdown)),"
            f" written AS (UPDATE {cards} AS s SET score = v.score, grade = v.grade, score_updated_at = %s FROM v"
            " WHERE s.lead_id = v.id AND s.score = v.old_score AND s.grade = v.old_grade"
            " AND s.score_updated_at IS NOT DISTINCT FROM v.read_at"
            # The part's id range, said outright: a merge join otherwise walks the cards from the first.
            " AND s.lead_id BETWEEN %s AND %s RETURNING s.lead_id),"
            f" history AS (INSERT INTO {history} (lead_id, score, grade, breakdown, rule_set_version, at)"
            " SELECT v.id, v.score, v.grade, v.breakdown::jsonb, %s, %s FROM v JOIN written ON written.lead_id = v.id"
            " WHERE v.breakdown IS NOT NULL)"
            " SELECT v.id FROM v WHERE NOT EXISTS (SELECT FROM written WHERE written.lead_id = v.id)",
            [
                pg_array([r.pk for r in rows]),
                pg_array([r.new_score for r in rows]),
                pg_array([r.new_grade for r in rows]),
                pg_array([r.score for r in rows]),
                pg_array([r.grade for r in rows]),
                pg_array([r.score_updated_at for r in rows]),
                # A breakdown only where the score or grade changes: a history row for those only.
                pg_array([encode(r.fired) if r.new_score != r.score or r.new_grade != r.grade else None for r in rows]),
                now,
                rows[0].pk,
                rows[-1].pk,
                ruleset.version,
                now,
            ],
        )
        return {row[0] for row in cursor.fetchall()}


def _cards_orm(rows: list[_Row], ruleset: rules.RuleSet, now: datetime) -> set[int]:
    """``_cards_postgresql`` lead by lead, for SQLite (the embedded demo and the quick tests)."""
    missed = set()
    history = []
    for row in rows:
        # The same guard as on PostgreSQL: the card's own columns as the batch read them.
        updated = LeadScore.objects.filter(
            lead_id=row.pk, score=row.score, grade=row.grade, score_updated_at=row.score_updated_at
        ).update(score=row.new_score, grade=row.new_grade, score_updated_at=now)
        if not updated:
            missed.add(row.pk)
        elif (row.new_score, row.new_grade) != (row.score, row.grade):
            history.append(
                ScoreHistory(
                    lead_id=row.pk,
                    score=row.new_score,
                    grade=row.new_grade,
                    breakdown=_breakdown(ruleset, row.fired),
                    rule_set_version=ruleset.version,
                    at=now,
                )
            )
    ScoreHistory.objects.bulk_create(history, batch_size=2000)
    return missed


def _stages(rows: list[_Row], ruleset: rules.RuleSet, now: datetime) -> None:
    """Move the stages of the (few) leads whose card was written and whose new score crosses MQL/SQL.

    Someone who moved the lead since the batch read it wins: the stage is written only where it is as
    read, and only the leads moved get a stage-change row.
    """
    if not rows:
        return
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {connection.ops.quote_name(Lead._meta.db_table)} AS l SET stage = v.stage,"
                " mql_at = v.mql_at, sql_at = v.sql_at, updated_at = %s"
                " FROM unnest(%s::bigint[], %s::text[], %s::timestamptz[], %s::timestamptz[], %s::text[])"
                " AS v(id, stage, mql_at, sql_at, old_stage) WHERE l.id = v.id AND l.stage = v.old_stage"
                " RETURNING l.id",
                [
                    now,
                    pg_array([r.pk for r in rows]),
                    pg_array([r.target for r in rows]),
                    pg_array([r.mql_at for r in rows]),
                    pg_array([r.sql_at for r in rows]),
                    pg_array([r.stage for r in rows]),
                ],
            )
            moved = {row[0] for row in cursor.fetchall()}
    else:
        moved = {
            row.pk
            for row in rows
            if Lead.objects.filter(pk=row.pk, stage=row.stage).update(
                stage=row.target, mql_at=row.mql_at, sql_at=row.sql_at, updated_at=now
            )
        }
    thresholds = ruleset.thresholds
    LeadStageChange.objects.bulk_create(
        [
            LeadStageChange(
                lead_id=row.pk,
                from_stage=row.stage,
                to_stage=row.target,
                changed_at=now,
                reason=f"score {row.new_score} ≥ {thresholds.sql if row.target == Stage.SQL else thresholds.mql}",
            )
            for row in rows
            if row.pk in moved and row.target is not None
        ],
        batch_size=2000,
    )


# --- Jobs ----------------------------------------------------------------------------------------


def preview_for_apply(rule_set: ScoringRuleSet) -> RescoreJob | None:
    """The finished preview of the version as it is now (made after its last edit), if there is one."""
    return (
        RescoreJob.objects.filter(
            rule_set=rule_set,
            mode=RescoreMode.PREVIEW,
            status=RescoreStatus.DONE,
            created_at__gte=rule_set.edited_at,
        )
        .order_by("-created_at")
        .first()
    )


def rescore_job_create(*, rule_set: ScoringRuleSet, mode: str, created_by: Any = None) -> RescoreJob:
    """Queue a preview or an apply of ``rule_set`` (run by ``scoring.tasks.rescore_run_task`` on commit).

    An apply needs a finished preview of the version as it is now, so that nobody rescores every lead
    without having seen what it does; and only one apply runs at a time (two would race each other's
    guarded writes for nothing).
    """
    from scoring.tasks import rescore_run_task

    if mode not in RescoreMode.values:
        raise ValidationError({"mode": [_("Choose preview or apply.")]})
    if mode == RescoreMode.APPLY:
        busy = RescoreJob.objects.filter(
            mode=RescoreMode.APPLY, status__in=[RescoreStatus.PENDING, RescoreStatus.RUNNING]
        )
        if busy.exists():
            raise ValidationError({"rule_set": [_("Another rule set is being applied; wait for it to finish.")]})
        if preview_for_apply(rule_set) is None:
            raise ValidationError(
                {"rule_set": [_("Preview this version first: apply what you have seen, not a guess.")]}
            )
    job = RescoreJob.objects.create(rule_set=rule_set, mode=mode, created_by=created_by)
    transaction.on_commit(lambda: rescore_run_task.delay(job.pk))
    return job


def _inline() -> bool:
    """Run every part here, one after another: eager tasks (the embedded demo, tests) or inside a
    transaction, where a worker could not see the job's rows."""
    from leadcrm.celery import app

    return bool(app.conf.task_always_eager) or connection.in_atomic_block


def rescore_run(*, job_id: int) -> RescoreJob | None:
    """Start the job: claim it, (apply: activate its rule set), split the leads into parts, run or queue them.

    Parts are id ranges of ``LEADCRM_RESCORE_BATCH_SIZE`` leads (``RescorePart``). Inline, every part runs
    here and the job is finished when this returns. With a broker, ``LEADCRM_RESCORE_PARALLEL`` parts are
    queued as ``rescore_part_task`` and each finished part queues the next one: every worker process
    takes a share of the job, and event tasks queued meanwhile run between two parts instead of waiting
    for the whole job. The part that finishes last adds up the figures and finishes the job.

    A redelivered task finds the parts made already and only queues more when fewer are in flight than
    wanted; returns None for a job that is over.
    """
    try:
        with transaction.atomic():
            job = (
                RescoreJob.objects.select_for_update()
                .select_related("rule_set")
                .filter(pk=job_id, status__in=[RescoreStatus.PENDING, RescoreStatus.RUNNING])
                .first()
            )
            if job is None:
                return None
            if job.status == RescoreStatus.PENDING:
                _plan(job)
    except Exception as exc:
        if isinstance(exc, TRANSIENT_ERRORS):
            raise  # the task retries; the job stays waiting
        logger.exception("rescore job %s could not start", job_id)
        RescoreJob.objects.filter(pk=job_id).update(
            status=RescoreStatus.FAILED, error=repr(exc)[:2000], finished_at=timezone.now()
        )
        raise
    if _inline():
        for part_id in job.parts.exclude(status=RescorePartStatus.DONE).order_by("lo").values_list("pk", flat=True):
            rescore_part_run(part_id=part_id, queue_next=False)
    else:
        _queue_more(job.pk)
    job.refresh_from_db()
    return job


def _plan(job: RescoreJob) -> None:
    """Claim a waiting job and make its parts (the job's row is locked by the caller)."""
    if job.mode == RescoreMode.APPLY:
        # First, so that the pipeline scores every lead it touches from now on with the new rules.
        rule_set_activate(rule_set=job.rule_set)
    now = timezone.now()
    ranges = list(_id_ranges(settings.LEADCRM_RESCORE_BATCH_SIZE))
    RescorePart.objects.bulk_create([RescorePart(job=job, lo=lo, hi=hi) for lo, hi in ranges])
    job.status = RescoreStatus.RUNNING
    job.started_at = now
    job.processed = 0
    job.total = Lead.objects.filter(merged_into__isnull=True).count()
    job.save(update_fields=["status", "started_at", "processed", "total"])
    if not ranges:
        _finish(job, [])


def _queue_more(job_id: int) -> None:
    """Queue waiting parts until ``LEADCRM_RESCORE_PARALLEL`` are in flight (queued or running)."""
    from scoring.tasks import rescore_part_task

    with transaction.atomic():
        job = RescoreJob.objects.select_for_update().filter(pk=job_id, status=RescoreStatus.RUNNING).first()
        if job is None:
            return
        in_flight = job.parts.filter(status__in=[RescorePartStatus.QUEUED, RescorePartStatus.RUNNING]).count()
        wanted = max(1, settings.LEADCRM_RESCORE_PARALLEL) - in_flight
        if wanted <= 0:
            return
        ids = list(
            job.parts.filter(status=RescorePartStatus.PENDING).order_by("lo").values_list("pk", flat=True)[:wanted]
        )
        RescorePart.objects.filter(pk__in=ids).update(status=RescorePartStatus.QUEUED, touched_at=timezone.now())
        for part_id in ids:
            transaction.on_commit(partial(rescore_part_task.delay, part_id))


class _NotMine(Exception):
    """The part was taken over (re-sent by the sweeper) or its job ended while this run computed it."""


def rescore_part_run(*, part_id: int, task_id: str = "", queue_next: bool = True, last_attempt: bool = True) -> None:
    """Read, score and (apply) write one part's leads; record its figures; queue the next part.

    The write, the part's figures and (last part) the job's are one transaction: a run that dies or
    fails before its commit leaves nothing, and the message's redelivery (same ``task_id``) computes
    the part again from unchanged cards; a run that committed is done, and a redelivery finds it so.
    A part re-sent by the sweeper has a new task id and takes the part over: the old run, if it was
    only slow, then rolls back at its end instead of writing twice. An error fails the part and its
    job with the error shown to the manager, except a transient one with retries left
    (``last_attempt`` False), which the task retries.
    """
    now = timezone.now()
    stale = now - timedelta(seconds=settings.LEADCRM_RESCORE_STALE_S)
    claimable = Q(status__in=[RescorePartStatus.PENDING, RescorePartStatus.QUEUED]) | Q(
        Q(task_id=task_id) | Q(touched_at__lt=stale), status=RescorePartStatus.RUNNING
    )
    claimed = (
        RescorePart.objects.filter(claimable, pk=part_id, job__status=RescoreStatus.RUNNING)
        .exclude(task_id=task_id, status=RescorePartStatus.RUNNING, attempts__gte=MAX_ATTEMPTS)
        .update(status=RescorePartStatus.RUNNING, task_id=task_id, touched_at=now, attempts=F("attempts") + 1)
    )
    part = RescorePart.objects.select_related("job__rule_set").filter(pk=part_id).first()
    if part is None:
        return
    if not claimed:
        if part.status == RescorePartStatus.RUNNING and part.task_id == task_id:
            # Claimed MAX_ATTEMPTS times by this message: it kills its worker (memory?) every time.
            _fail(part, RuntimeError(f"gave up after {part.attempts} attempts"))
        return
    try:
        with transaction.atomic():
            tally = _run_part(part)
            finished = _complete(part, tally, task_id)
    except _NotMine:
        return
    except Exception as exc:
        if isinstance(exc, TRANSIENT_ERRORS) and not last_attempt:
            raise
        logger.exception("rescore job %s, part [%s, %s) failed", part.job_id, part.lo, part.hi)
        if isinstance(exc, TRANSIENT_ERRORS) and not connection.in_atomic_block:
            connection.close()  # a broken connection: record the failure on a new one
        _fail(part, exc)
        raise
    if queue_next and not finished:
        _queue_more(part.job_id)


def _complete(part: RescorePart, tally: Tally, task_id: str) -> bool:
    """Record a part's figures in the transaction of its write; finish the job after its last part.

    Returns whether the job is finished. Part completions (and failures) take the job's row lock
    first, one at a time, so exactly one of them sees no part left.
    """
    job = RescoreJob.objects.select_for_update().get(pk=part.job_id)
    done = RescorePart.objects.filter(pk=part.pk, status=RescorePartStatus.RUNNING, task_id=task_id).update(
        status=RescorePartStatus.DONE, tally=tally.as_json(), finished_at=timezone.now()
    )
    if not done or job.status != RescoreStatus.RUNNING:
        raise _NotMine  # roll the write back: another run has the part, or the job failed meanwhile
    RescoreJob.objects.filter(pk=job.pk).update(processed=F("processed") + tally.total)
    if job.parts.exclude(status=RescorePartStatus.DONE).exists():
        return False
    _finish(job, [Tally.from_json(t) for t in job.parts.values_list("tally", flat=True)])
    return True


def _run_part(part: RescorePart) -> Tally:
    job = part.job
    apply = job.mode == RescoreMode.APPLY
    ruleset = rule_set_load(job.rule_set)
    compiled = CompiledRuleSet(ruleset)
    wants_attributes = any(
        rule.condition is not None and rule.condition.field.startswith(rules.ATTR_PREFIX) for rule in ruleset.rules
    )
    tally = Tally()
    now = timezone.now()
    data = _read_batch(compiled, part.lo, part.hi, timezone.localdate(now), wants_attributes)
    tally.phases["read"] += data.read_s
    t0 = time.perf_counter()
    batch = _score_rows(compiled, data, now, wants_attributes)
    tally.phases["score"] += time.perf_counter() - t0
    if apply:
        t0 = time.perf_counter()
        stale = _write([row for row in batch if row.changes], ruleset, now)  # in rescore_part_run's transaction
        tally.skipped += len(stale)
        tally.phases["write"] += time.perf_counter() - t0
    for row in batch:
        tally.add(row.score, row.grade, row.new_score, row.new_grade, row.target)
    return tally


def _fail(part: RescorePart, exc: BaseException) -> None:
    now = timezone.now()
    with transaction.atomic():
        RescoreJob.objects.select_for_update().filter(pk=part.job_id).first()  # the job first, as _complete
        RescorePart.objects.filter(pk=part.pk).update(status=RescorePartStatus.FAILED, finished_at=now)
        RescoreJob.objects.filter(pk=part.job_id, status=RescoreStatus.RUNNING).update(
            status=RescoreStatus.FAILED,
            error=f"[{part.lo}, {part.hi}): {exc!r}"[:2000],
            finished_at=now,
        )


def _finish(job: RescoreJob, tallies: list[Tally]) -> None:
    """Add up the parts' figures and finish the job (its row is locked by the caller)."""
    tally = Tally()
    for part in tallies:
        tally.merge(part)
    finished = timezone.now()
    summary = tally.summary()
    if job.started_at is not None:
        summary["elapsed_s"] = round((finished - job.started_at).total_seconds(), 1)
    RescoreJob.objects.filter(pk=job.pk).update(
        status=RescoreStatus.DONE,
        total=tally.total,
        processed=tally.total,
        changed_scores=tally.changed_scores,
        changed_grades=tally.changed_grades,
        stage_moves=tally.stage_moves,
        skipped=tally.skipped,
        summary=summary,
        finished_at=finished,
    )


def rescore_sweep(*, stale_after_s: float | None = None) -> int:
    """Re-send what a lost message left waiting (a Redis restart, a dead host); return how many sends.

    A waiting job older than the limit is started again; a part queued or running that nobody has
    touched for that long is sent again (a duplicate run only repeats guarded writes); a running job
    with fewer parts in flight than wanted gets more. Run by beat (``rescore_sweep_task``).
    """
    from scoring.tasks import rescore_part_task, rescore_run_task

    after = settings.LEADCRM_RESCORE_STALE_S if stale_after_s is None else stale_after_s
    limit = timezone.now() - timedelta(seconds=after)
    sent = 0
    for job_id in RescoreJob.objects.filter(status=RescoreStatus.PENDING, created_at__lt=limit).values_list(
        "pk", flat=True
    ):
        rescore_run_task.delay(job_id)
        sent += 1
    stale = RescorePart.objects.filter(
        job__status=RescoreStatus.RUNNING,
        status__in=[RescorePartStatus.QUEUED, RescorePartStatus.RUNNING],
        touched_at__lt=limit,
    )
    for part_id in stale.values_list("pk", flat=True):
        # Queued again, for a new message to claim; only one of two sweeps running at once sends it.
        if stale.filter(pk=part_id).update(status=RescorePartStatus.QUEUED, task_id="", touched_at=timezone.now()):
            rescore_part_task.delay(part_id)
            sent += 1
    for job_id in RescoreJob.objects.filter(status=RescoreStatus.RUNNING).values_list("pk", flat=True):
        _queue_more(job_id)
    return sent
