"""Rescore every lead under a rule set, set-based in id batches: a preview that writes nothing, or an apply.

A manager edits a draft rule set, previews it (how many leads change grade, the score distribution
before and after, which stages would move), then applies it. Both are a ``RescoreJob`` run by
``rescore_run`` in a worker, and both walk the leads with the same code, so the preview's figures are
the apply's as long as no event arrives in between (``tests/scoring/test_rescore.py``).

Per batch of ``LEADCRM_RESCORE_BATCH_SIZE`` leads (by id range, merged leads excluded):

1. one query for the leads' fields and one grouped query for their interactions (per lead, type, day
   and the property values the rules filter on: the pipeline's ``lead_facts_for_batch`` buckets);
2. ``CompiledRuleSet`` scores them (the engine's numbers, memoized; no worded breakdown);
3. apply only: one ``UPDATE … FROM unnest(…)`` writes the score cards (``LeadScore``, the narrow table
   apart from the wide lead row) whose score or grade changes, and in the same transaction a second
   writes the few leads whose stage moves; both guarded by what step 1 read. A lead that an event, the pipeline or a person changed meanwhile is
   not overwritten with a stale score: it is marked dirty and the pipeline, already on the new rules,
   scores it. Score history (rule, kind, points and count per rule that fired) and stage-change rows
   for the written leads go in with two more set-based inserts.

Post-score hooks (assignment, nurturing) are the pipeline's per-lead work and are not run for a
bulk rescore; see docs/scoring.md.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter, defaultdict, deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, connections, transaction
from django.db.models import Count, F, Max, Min, Prefetch
from django.db.models.functions import TruncDate
from django.utils import timezone
from django.utils.translation import gettext as _

from common.db import pg_array
from leads.models import Interaction, Lead, LeadScore, LeadStageChange, Stage
from leads.services.pipeline import stage_target
from scoring import rules
from scoring.compiled import CompiledRuleSet, Fired
from scoring.models import RescoreJob, RescoreMode, RescoreStatus, ScoreHistory, ScoringRule, ScoringRuleSet
from scoring.services import event_property_columns, rule_set_activate, rule_set_from_row

logger = logging.getLogger(__name__)

BINS = 10  # score histogram: 0–9, 10–19, …, 90–100


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


def _write(rows: list[_Row], ruleset: rules.RuleSet, now: datetime) -> tuple[list[_Row], list[int]]:
    """Write the changed leads whose stored state is still what the batch read; return them and the rest."""
    for row in rows:
        if row.target is not None:
            # Passing straight to SQL also passes MQL: both stamps, first time only (as the pipeline does).
            row.mql_at = row.mql_at or now
            if row.target == Stage.SQL:
                row.sql_at = row.sql_at or now
    # A lead that was dirty when the batch read it is the pipeline's: it scores it under the new rules.
    clean = [row for row in rows if not row.dirty]
    if connection.vendor == "postgresql":
        written_ids, moved_ids = _update_postgresql(clean, now)
    else:
        written_ids, moved_ids = set(), set()
        for row in clean:
            with transaction.atomic():
                # The same guard as on PostgreSQL: the card's own columns as the batch read them.
                updated = LeadScore.objects.filter(
                    lead_id=row.pk,
                    score=row.score,
                    grade=row.grade,
                    score_updated_at=row.score_updated_at,
                ).update(score=row.new_score, grade=row.new_grade, score_updated_at=now)
                if updated:
                    written_ids.add(row.pk)
                moved = (
                    updated
                    and row.target is not None
                    and Lead.objects.filter(pk=row.pk, stage=row.stage).update(
                        stage=row.target, mql_at=row.mql_at, sql_at=row.sql_at, updated_at=now
                    )
                )
                if moved:
                    moved_ids.add(row.pk)
    written = [row for row in rows if row.pk in written_ids]
    stale = [row.pk for row in rows if row.pk not in written_ids]
    history = [row for row in written if (row.new_score, row.new_grade) != (row.score, row.grade)]
    if connection.vendor == "postgresql":
        _history_postgresql(history, ruleset, now)
        history = []
    ScoreHistory.objects.bulk_create(
        [
            ScoreHistory(
                lead_id=row.pk,
                score=row.new_score,
                grade=row.new_grade,
                breakdown=_breakdown(ruleset, row.fired),
                rule_set_version=ruleset.version,
                at=now,
            )
            for row in history
        ],
        batch_size=2000,
    )
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
            for row in written
            if row.target is not None and row.pk in moved_ids
        ],
        batch_size=2000,
    )
    if stale:
        # Changed since the batch read it: the pipeline, on the new rule set already, scores it from its facts.
        Lead.objects.filter(pk__in=stale, dirty_since__isnull=True).update(dirty_since=now)
    return written, stale


def _history_postgresql(rows: list[_Row], ruleset: rules.RuleSet, now: datetime) -> None:
    """One INSERT … SELECT FROM unnest for a batch's history rows (bulk_create builds a model per row)."""
    if not rows:
        return
    table = connection.ops.quote_name(ScoreHistory._meta.db_table)
    # Leads with the same rules firing at the same ages share a breakdown: encode each once.
    memo: dict[tuple[Fired, ...], str] = {}

    def encoded(fired: tuple[Fired, ...]) -> str:
        text = memo.get(fired)
        if text is None:
            text = memo[fired] = json.dumps(_breakdown(ruleset, fired), ensure_ascii=False)
        return text

    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (lead_id, score, grade, breakdown, rule_set_version, at)"
            " SELECT id, score, grade, breakdown::jsonb, %s, %s FROM unnest(%s::bigint[], %s::int[], %s::text[],"
            " %s::text[]) AS v(id, score, grade, breakdown)",
            [
                ruleset.version,
                now,
                pg_array([r.pk for r in rows]),
                pg_array([r.new_score for r in rows]),
                pg_array([r.new_grade for r in rows]),
                pg_array([encoded(r.fired) for r in rows]),
            ],
        )


def _update_postgresql(rows: list[_Row], now: datetime) -> tuple[set[int], set[int]]:
    """Write the rows' score cards where they are as read; move the few stages.

    Only the narrow score table is written for a score or grade change (the point of LeadScore), and
    the guard is the card's own columns (score, grade and ``score_updated_at`` as read): the pipeline
    writes ``score_updated_at`` whenever it scores a lead, so a card it wrote meanwhile is left alone,
    without a look at the lead row per card. The lead row itself is written only for a stage move,
    with its stage as the batch read it as the guard.
    """
    leads_table = connection.ops.quote_name(Lead._meta.db_table)
    # One transaction for both statements: the stage is written for exactly the cards written.
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {connection.ops.quote_name(LeadScore._meta.db_table)} AS s SET score = v.score,"
            " grade = v.grade, score_updated_at = %s"
            " FROM unnest(%s::bigint[], %s::int[], %s::text[], %s::int[], %s::text[], %s::timestamptz[])"
            " AS v(id, score, grade, old_score, old_grade, read_at)"
            " WHERE s.lead_id = v.id AND s.score = v.old_score AND s.grade = v.old_grade"
            " AND s.score_updated_at IS NOT DISTINCT FROM v.read_at"
            " RETURNING s.lead_id",
            [
                now,
                pg_array([r.pk for r in rows]),
                pg_array([r.new_score for r in rows]),
                pg_array([r.new_grade for r in rows]),
                pg_array([r.score for r in rows]),
                pg_array([r.grade for r in rows]),
                pg_array([r.score_updated_at for r in rows]),
            ],
        )
        written = {row[0] for row in cursor.fetchall()}
        moving = [row for row in rows if row.target is not None and row.pk in written]
        if not moving:
            return written, set()
        # Someone who moved the lead since the check above wins: the stage is written only where it is as read.
        cursor.execute(
            f"UPDATE {leads_table} AS l SET stage = v.stage, mql_at = v.mql_at, sql_at = v.sql_at, updated_at = %s"
            " FROM unnest(%s::bigint[], %s::text[], %s::timestamptz[], %s::timestamptz[], %s::text[])"
            " AS v(id, stage, mql_at, sql_at, old_stage) WHERE l.id = v.id AND l.stage = v.old_stage"
            " RETURNING l.id",
            [
                now,
                pg_array([r.pk for r in moving]),
                pg_array([r.target for r in moving]),
                pg_array([r.mql_at for r in moving]),
                pg_array([r.sql_at for r in moving]),
                pg_array([r.stage for r in moving]),
            ],
        )
        return written, {row[0] for row in cursor.fetchall()}


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


def rescore_run(*, job_id: int) -> RescoreJob | None:
    """Run the job: claim it, (apply: activate its rule set), score every lead batch by batch, record figures.

    A redelivered task (the worker died) claims a job left running and starts it over; scores are
    computed from facts, so running an apply twice writes the same result.
    """
    claimed = RescoreJob.objects.filter(pk=job_id, status__in=[RescoreStatus.PENDING, RescoreStatus.RUNNING]).update(
        status=RescoreStatus.RUNNING, started_at=timezone.now(), processed=0
    )
    if not claimed:
        return None
    job = RescoreJob.objects.select_related("rule_set").get(pk=job_id)
    try:
        tally = _run(job)
    except Exception as exc:
        logger.exception("rescore job %s failed", job_id)
        RescoreJob.objects.filter(pk=job_id).update(
            status=RescoreStatus.FAILED, error=repr(exc)[:2000], finished_at=timezone.now()
        )
        raise
    RescoreJob.objects.filter(pk=job_id).update(
        status=RescoreStatus.DONE,
        total=tally.total,
        processed=tally.total,
        changed_scores=tally.changed_scores,
        changed_grades=tally.changed_grades,
        stage_moves=tally.stage_moves,
        skipped=tally.skipped,
        summary=tally.summary(),
        finished_at=timezone.now(),
    )
    job.refresh_from_db()
    return job


def _write_batch(
    rows: list[_Row], ruleset: rules.RuleSet, now: datetime, *, own_connection: bool = False
) -> tuple[int, float]:
    """Write one batch in its own transaction; return how many leads were left to the pipeline, and seconds.

    ``own_connection``: called in a writer thread, whose connection is closed afterwards (a reconnect
    per batch of thousands of rows costs nothing next to the writes, and no thread leaves one open).
    """
    t0 = time.perf_counter()
    try:
        with transaction.atomic():
            _written, stale = _write(rows, ruleset, now)
    finally:
        if own_connection:
            connections.close_all()
    return len(stale), time.perf_counter() - t0


def _run(job: RescoreJob) -> Tally:
    apply = job.mode == RescoreMode.APPLY
    if apply:
        # First, so that the pipeline scores every lead it touches from now on with the new rules.
        rule_set_activate(rule_set=job.rule_set)
    ruleset = rule_set_load(job.rule_set)
    compiled = CompiledRuleSet(ruleset)
    wants_attributes = any(
        rule.condition is not None and rule.condition.field.startswith(rules.ATTR_PREFIX) for rule in ruleset.rules
    )
    total = Lead.objects.filter(merged_into__isnull=True).count()
    RescoreJob.objects.filter(pk=job.pk).update(total=total)
    size = settings.LEADCRM_RESCORE_BATCH_SIZE
    tally = Tally()
    now = timezone.now()
    # On PostgreSQL the writes run on LEADCRM_RESCORE_WRITERS other connections while the next batches
    # are read and scored: writing is PostgreSQL maintaining every lead index for every changed row, by
    # far the largest cost when many scores move, and it then uses every core. Inside a transaction (the
    # tests) another connection could not see the rows, so it all runs inline.
    overlap = apply and connection.vendor == "postgresql" and not connection.in_atomic_block
    writers = max(1, settings.LEADCRM_RESCORE_WRITERS) if overlap else 0
    pool = ThreadPoolExecutor(max_workers=writers, thread_name_prefix="rescore-writer") if writers else None
    pending: deque[Future[tuple[int, float]]] = deque()

    def settle(in_flight: int) -> None:
        """Wait until at most ``in_flight`` batches are being written (memory stays a few batches deep)."""
        while len(pending) > in_flight:
            stale, seconds = pending.popleft().result()
            tally.skipped += stale
            tally.phases["write"] += seconds

    today = timezone.localdate(now)
    try:
        for lo, hi in _id_ranges(size):
            data = _read_batch(compiled, lo, hi, today, wants_attributes)
            tally.phases["read"] += data.read_s
            t0 = time.perf_counter()
            batch = _score_rows(compiled, data, now, wants_attributes)
            tally.phases["score"] += time.perf_counter() - t0
            if apply:
                changed = [row for row in batch if row.changes]
                if pool is not None:
                    settle(writers - 1)
                    pending.append(pool.submit(_write_batch, changed, ruleset, now, own_connection=True))
                else:
                    stale, seconds = _write_batch(changed, ruleset, now)
                    tally.skipped += stale
                    tally.phases["write"] += seconds
            for row in batch:
                tally.add(row.score, row.grade, row.new_score, row.new_grade, row.target)
            RescoreJob.objects.filter(pk=job.pk).update(processed=F("processed") + len(batch))
        settle(0)
    finally:
        if pool is not None:
            pool.shutdown(wait=True)
    return tally
