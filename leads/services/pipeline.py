"""The event pipeline: mark leads dirty, and process dirty leads in batches (score, stage, hooks)."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from common.db import pg_array
from leads.models import Lead, LeadScore, LeadStageChange, PipelineRun, Stage
from scoring import services as scoring
from scoring.predictive import services as predictive

logger = logging.getLogger(__name__)

# Advisory-lock namespace of the pipeline (the first key of pg_try_advisory_lock(int, int)).
ADVISORY_NAMESPACE = 0x1EAD
# Big id lists (an import) are marked in chunks: one statement per chunk keeps SQL parameters bounded.
MARK_CHUNK = 1000
# Stages the pipeline may move forward from; converted, lost and anything past the target stay put.
AUTO_STAGE_ORDER = {Stage.NEW: 0, Stage.CONTACTED: 1, Stage.NURTURING: 2, Stage.RECYCLED: 2, Stage.MQL: 3}
STAGE_RANK_TARGET = {Stage.MQL: 3, Stage.SQL: 4}
_AUTO_STAGES = {stage.value: rank for stage, rank in AUTO_STAGE_ORDER.items()}

PostScoreHook = Callable[..., None]


def _broker_errors() -> tuple[type[BaseException], ...]:
    from kombu.exceptions import OperationalError as KombuOperationalError
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    return (KombuOperationalError, RedisConnectionError, RedisTimeoutError, ConnectionError, OSError)


# While this key exists a processing task is queued and no worker has started it yet (Redis brokers only).
PENDING_KEY = "leadcrm:pipeline:pending"
# A safety net only: a task that starts deletes the key at once; the sweeper covers a lost message.
PENDING_TTL_S = 10


@cache
def _pending_client(url: str) -> Any:
    import redis

    return redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)


def _pending_redis() -> Any | None:
    """The broker's Redis, when the pipeline runs on real workers over Redis; None otherwise."""
    from leadcrm.celery import app

    url = str(app.conf.broker_url or "")
    if app.conf.task_always_eager or not url.startswith(("redis://", "rediss://")):
        return None
    return _pending_client(url)


def pipeline_clear_pending() -> None:
    """Called by a processing task as it starts: from now on, a new write must enqueue another task."""
    client = _pending_redis()
    if client is None:
        return
    try:
        client.delete(PENDING_KEY)
    except _broker_errors() as exc:
        logger.warning("pipeline: could not clear the pending flag (%s)", exc)


def pipeline_enqueue(*, force: bool = False) -> bool:
    """Send one ``process_dirty_leads_task`` unless one is already queued; never raise when the broker is down.

    A burst of writes (a form post per request, an events batch per request) needs one task, not one per
    write: a task still waiting in the queue will see every lead marked dirty before it starts. So the
    first write sets ``PENDING_KEY`` (SET NX, one Redis round trip, ~0.2 ms) and publishes; later writes
    find the key and skip the publish (~1.5 ms of kombu each); the task deletes the key when it starts.
    ``force`` (the sweeper) always publishes. PostgreSQL is the record: a lead stays dirty until
    processed, so a lost message only delays it until the sweeper re-enqueues. Returns whether a
    message was sent.
    """
    from leads.tasks.pipeline import process_dirty_leads_task

    client = None if force else _pending_redis()
    if client is not None:
        try:
            if not client.set(PENDING_KEY, "1", nx=True, ex=PENDING_TTL_S):
                return False  # a queued task will see this write
        except _broker_errors() as exc:
            logger.warning("pipeline: pending flag unavailable (%s); enqueueing anyway", exc)
    try:
        # One quick retry only: an API request must not hang on a dead broker.
        process_dirty_leads_task.apply_async(
            retry=True, retry_policy={"max_retries": 1, "interval_start": 0, "interval_step": 0.2}
        )
    except _broker_errors() as exc:
        logger.warning("pipeline: could not enqueue processing (%s); the sweeper will retry", exc)
        if client is not None:
            with contextlib.suppress(*_broker_errors()):
                client.delete(PENDING_KEY)  # nothing is queued: let the next write try again
        return False
    return True


def pipeline_enqueue_on_commit() -> None:
    """Enqueue processing once the current transaction commits (at once outside a transaction)."""
    transaction.on_commit(pipeline_enqueue)


def leads_mark_dirty(*, lead_ids: Iterable[int]) -> int:
    """Mark leads as needing processing and enqueue processing on commit; return how many became dirty.

    A lead already dirty keeps its ``dirty_since`` (the sweeper measures the oldest wait). The rows
    are locked in id order first: a worker writing a batch that holds one of them makes us wait
    for that short write, so the worker cannot clear the flag over an event it did not see (its
    check counts the interactions committed before it locked), and two writers never deadlock.
    """
    ids = sorted({int(i) for i in lead_ids})
    if not ids:
        return 0
    now = timezone.now()
    became = 0
    # savepoint=False: inside a caller's transaction a savepoint costs two round trips and buys nothing,
    # since any error here is a database error that leaves the caller's transaction unusable anyway.
    with transaction.atomic(savepoint=False):
        for start in range(0, len(ids), MARK_CHUNK):
            chunk = ids[start : start + MARK_CHUNK]
            # NO KEY UPDATE: does not conflict with the key-share locks of concurrent interaction inserts.
            locked = Lead.objects.select_for_update(no_key=connection.vendor == "postgresql")
            list(locked.filter(pk__in=chunk).order_by("pk").values_list("pk", flat=True))
            became += Lead.objects.filter(pk__in=chunk, dirty_since__isnull=True).update(dirty_since=now)
        pipeline_enqueue_on_commit()
    return became


def leads_mark_dirty_with_activity(*, activity: Mapping[int, datetime]) -> None:
    """Mark leads dirty and move each one's last activity to ``activity[lead_id]`` (never backwards).

    The events API's write: one locking SELECT and one UPDATE for the whole batch on PostgreSQL.
    Processing is enqueued on commit.
    """
    ids = sorted(activity)
    if not ids:
        return
    if connection.vendor != "postgresql":
        leads_mark_dirty(lead_ids=ids)
        for pk in ids:
            Lead.objects.filter(pk=pk, last_activity_at__lt=activity[pk]).update(last_activity_at=activity[pk])
        return
    now = timezone.now()
    table = connection.ops.quote_name(Lead._meta.db_table)
    with transaction.atomic(savepoint=False), connection.cursor() as cursor:  # see leads_mark_dirty
        # Locked in id order (see leads_mark_dirty), NO KEY UPDATE so interaction inserts are not blocked.
        cursor.execute(f"SELECT id FROM {table} WHERE id = ANY(%s) ORDER BY id FOR NO KEY UPDATE", [ids])
        cursor.execute(
            f"UPDATE {table} AS l SET dirty_since = COALESCE(l.dirty_since, %s),"
            " last_activity_at = GREATEST(l.last_activity_at, v.at)"
            " FROM unnest(%s::bigint[], %s::timestamptz[]) AS v(id, at) WHERE l.id = v.id"
            # A lead already dirty whose activity does not move would be rewritten unchanged: a new row
            # version and an entry in each of its ~15 indexes. Skipping it is the same result.
            " AND (l.dirty_since IS NULL OR l.last_activity_at < v.at)",
            [now, ids, [activity[pk] for pk in ids]],
        )
        pipeline_enqueue_on_commit()


# --- Processing ------------------------------------------------------------------------------


@cache
def _hooks(paths: tuple[str, ...]) -> tuple[PostScoreHook, ...]:
    return tuple(import_string(path) for path in paths)


@dataclass
class HookBatch:
    """What the post-score hooks of one batch share: its lead ids and answers computed once per batch."""

    lead_ids: frozenset[int]
    memo: dict[str, Any] = field(default_factory=dict)


_batch: ContextVar[HookBatch | None] = ContextVar("pipeline_hook_batch", default=None)


def hook_batch_memo(key: str, compute: Callable[[frozenset[int]], Any]) -> Any:
    """For a post-score hook: ``compute(batch lead ids)`` once per batch, not once per lead.

    A hook that asks "is any rule enabled?" or "which of these leads are queued?" for every lead would
    cost the batch a query per lead; this answers it once for the whole batch. Called outside a batch
    (a test, a manual call) it computes for the one call, with no lead ids.
    """
    batch = _batch.get()
    if batch is None:
        return compute(frozenset())
    if key not in batch.memo:
        batch.memo[key] = compute(batch.lead_ids)
    return batch.memo[key]


def pipeline_hooks() -> tuple[PostScoreHook, ...]:
    """The post-score hooks named in ``LEADCRM_PIPELINE_HOOKS`` (dotted paths), in order.

    Each is called as ``hook(lead=lead, result=score_result, previous_score=int, previous_stage=str)``
    inside the batch transaction, under a savepoint: a hook that raises fails only its lead. A hook
    may also have ``wants_batch(lead_ids) -> bool``, asked once per batch (False: skip the batch), and
    share per-batch answers through ``hook_batch_memo``.
    """
    return _hooks(tuple(getattr(settings, "LEADCRM_PIPELINE_HOOKS", ()) or ()))


def _candidates(limit: int) -> list[Lead]:
    """Up to ``limit`` dirty leads, oldest first, that no other worker is processing.

    No row lock is held while the batch computes: a long lock would make every API request that
    touches one of these leads wait for the whole batch. On PostgreSQL a session advisory lock per
    lead keeps two workers off the same leads; it dies with the worker's connection (SIGKILL-safe).
    """
    leads = list(Lead.objects.filter(dirty_since__isnull=False).order_by("dirty_since", "pk")[: limit * 2])
    if connection.vendor != "postgresql" or not leads:
        return leads[:limit]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id FROM unnest(%s::bigint[]) AS id WHERE pg_try_advisory_lock(%s, (id %% 2147483647)::int)",
            [[lead.pk for lead in leads], ADVISORY_NAMESPACE],
        )
        got = {row[0] for row in cursor.fetchall()}
    mine = [lead for lead in leads if lead.pk in got][:limit]
    _release([pk for pk in got if pk not in {lead.pk for lead in mine}])
    return mine


def _release(pks: Sequence[int]) -> None:
    if pks and connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(pg_advisory_unlock(%s, (id %% 2147483647)::int)) FROM unnest(%s::bigint[]) AS id",
                [ADVISORY_NAMESPACE, list(pks)],
            )


def _target_stage(lead: Lead, score: int, thresholds: scoring.Thresholds) -> str | None:
    return stage_target(lead.stage, score, thresholds)


def stage_target(stage: str, score: int, thresholds: scoring.Thresholds) -> str | None:
    """The stage the score moves a lead in ``stage`` to, or None: forward only, never out of
    converted/lost/SQL. The thresholds are the rule set's (data a manager edits); the bulk rescore
    (``scoring.rescore``) moves stages with the same rule.
    """
    rank = _AUTO_STAGES.get(stage)  # a plain dict: the bulk rescore asks a million times
    if rank is None:
        return None
    if score >= thresholds.sql and rank < STAGE_RANK_TARGET[Stage.SQL]:
        return Stage.SQL
    if score >= thresholds.mql and rank < STAGE_RANK_TARGET[Stage.MQL]:
        return Stage.MQL
    return None


def pipeline_process_dirty(*, limit: int | None = None) -> PipelineRun:
    """Process one batch of dirty leads and record it as a PipelineRun.

    1. Pick the oldest dirty leads no other worker holds; read their facts set-based and compute
       every score (never an increment, so redelivered or out-of-order events give the same result).
    2. In one short transaction, lock those leads (``FOR NO KEY UPDATE``: an API request marking one
       of them dirty waits only for this write, not for the batch) and keep only the leads whose
       ``dirty_since`` and interaction count are what step 1 saw — a lead that got an event in
       between stays dirty for the next batch. Write score/grade, move the stage forward on the
       MQL/SQL thresholds (with a LeadStageChange row), run the post-score hooks, clear the flag.
    A lead that fails stays dirty, moved to the back of the queue.
    """
    limit = limit or settings.LEADCRM_PIPELINE_BATCH_SIZE
    run = PipelineRun(started_at=timezone.now())
    leads = _candidates(limit)
    if not leads:
        return run  # unsaved: an idle poll is not a run worth a row
    try:
        _process(leads, run)
    finally:
        _release([lead.pk for lead in leads])
    return run


@dataclass
class _Computed:
    results: dict[int, scoring.ScoreResult]
    seen_events: dict[int, int]  # interactions the facts counted, per lead
    new_events: dict[int, int]  # of which arrived since the lead was last scored
    rule_set: scoring.RuleSet  # loaded once per batch: its rules, grades and stage thresholds


def _compute(leads: list[Lead], now: datetime, errors: list[str]) -> _Computed:
    rule_set = scoring.rule_set_active()
    facts_by_lead, new_events = scoring.lead_facts_for_batch(leads=leads, now=now, rule_set=rule_set)
    slowdown = float(getattr(settings, "LEADCRM_PIPELINE_SLOWDOWN_S", 0) or 0)
    computed = _Computed({}, {}, new_events, rule_set)
    for lead in leads:
        if slowdown:
            time.sleep(slowdown)  # test-only: widens the window in which a worker can be killed mid-batch
        facts = facts_by_lead[lead.pk]
        try:
            computed.results[lead.pk] = scoring.score_compute(facts=facts, rule_set=rule_set)
        except Exception as exc:  # one bad lead must not fail the batch
            errors.append(f"lead {lead.pk}: {exc!r}")
            logger.exception("pipeline: scoring lead %s failed", lead.pk)
            continue
        computed.seen_events[lead.pk] = sum(bucket.count for bucket in facts.events)
    return computed


def _process(candidates: list[Lead], run: PipelineRun) -> None:
    now = timezone.now()
    errors: list[str] = []
    read = {lead.pk: lead for lead in candidates}
    computed = _compute(candidates, now, errors)
    results = computed.results
    failed = set(read) - set(results)
    hooks = pipeline_hooks()
    with transaction.atomic():
        locked = (
            Lead.objects.filter(pk__in=list(results), dirty_since__isnull=False)
            .select_related("scorecard")
            .order_by("pk")
        )
        if connection.features.has_select_for_update_skip_locked:
            # The lead row only: its score card is on the nullable side of the join.
            locked = locked.select_for_update(no_key=connection.vendor == "postgresql", skip_locked=True, of=("self",))
        leads = list(locked)
        counts = scoring.interaction_counts(lead_ids=[lead.pk for lead in leads])
        # Unchanged since the facts were read: same dirty flag, same number of interactions.
        current = [
            lead
            for lead in leads
            if lead.dirty_since == read[lead.pk].dirty_since and counts.get(lead.pk, 0) == computed.seen_events[lead.pk]
        ]
        scored: list[tuple[Lead, scoring.ScoreResult, int, str]] = []
        stage_changes: list[LeadStageChange] = []
        history: list[tuple[int, scoring.ScoreResult]] = []  # leads whose score or grade changed
        thresholds = computed.rule_set.thresholds
        for lead in current:
            result = results[lead.pk]
            previous_score, previous_stage = lead.score, lead.stage
            if (result.score, result.grade) != (lead.score, lead.grade):
                history.append((lead.pk, result))
            card = lead.scorecard
            card.score, card.grade, card.score_updated_at, lead.updated_at = result.score, result.grade, now, now
            target = _target_stage(lead, result.score, thresholds)
            if target is not None:
                lead.stage = target
                # Passing straight to SQL also passes MQL: both stamps, first time only.
                if lead.mql_at is None:
                    lead.mql_at = now
                if target == Stage.SQL and lead.sql_at is None:
                    lead.sql_at = now
                threshold = thresholds.sql if target == Stage.SQL else thresholds.mql
                stage_changes.append(
                    LeadStageChange(
                        lead=lead,
                        from_stage=previous_stage,
                        to_stage=target,
                        changed_at=now,
                        reason=f"score {result.score} ≥ {threshold}",
                    )
                )
            scored.append((lead, result, previous_score, previous_stage))
        if scored:
            # Scores written and flags cleared in one statement; a hook failure below re-marks its lead.
            _write_scores([lead for lead, *_ in scored], now)
            LeadStageChange.objects.bulk_create(stage_changes)
            if history:
                scoring.score_history_record(changes=history, at=now, version=computed.rule_set.version)
        batch_ids = frozenset(lead.pk for lead, *_ in scored)
        token = _batch.set(HookBatch(lead_ids=batch_ids))
        try:
            # A hook with nothing to do for this batch (say, no assignment rule enabled) is skipped for
            # all of it: no savepoint and no query per lead.
            hooks = tuple(h for h in hooks if not hasattr(h, "wants_batch") or h.wants_batch(batch_ids))
            for lead, result, previous_score, previous_stage in scored if hooks else ():
                try:
                    with transaction.atomic():
                        for hook in hooks:
                            hook(lead=lead, result=result, previous_score=previous_score, previous_stage=previous_stage)
                except Exception as exc:  # a hook failure fails its lead only
                    failed.add(lead.pk)
                    errors.append(f"lead {lead.pk}: hook: {exc!r}")
                    logger.exception("pipeline: hook failed for lead %s", lead.pk)
        finally:
            _batch.reset(token)
        done = [lead.pk for lead, *_ in scored if lead.pk not in failed]
        hook_failed = [lead.pk for lead, *_ in scored if lead.pk in failed]
        if hook_failed:
            # Still dirty, but behind everyone else, so one poisoned lead cannot starve the queue.
            Lead.objects.filter(pk__in=hook_failed).update(dirty_since=now)
        run.leads = len(done)
        run.failed = len(failed)
        run.events = sum(computed.new_events.get(pk, 0) for pk in done)
        run.finished_at = timezone.now()
        run.error = "\n".join(errors)[:10_000]
        run.save()
    try:
        # The batch's conversion probabilities: one prediction for all its leads (nothing without a model).
        predictive.lead_probabilities_update(leads=[lead for lead, *_ in scored])
    except Exception:  # the score is written; a stale probability is refreshed by the next batch or model
        logger.exception("pipeline: predicting the batch's conversion probabilities failed")
    score_failed = set(read) - set(results)
    if score_failed:
        # After the commit: this transaction must not wait for locks while it holds others.
        Lead.objects.filter(pk__in=score_failed, dirty_since__isnull=False).update(dirty_since=now)


def _write_scores(leads: list[Lead], now: datetime) -> None:
    """Write score and grade (the score card), stage stamps, and clear the dirty flag of ``leads``.

    PostgreSQL gets the values as arrays (``UPDATE … FROM unnest(…)``): Django's bulk_update builds
    a CASE per field and row, which costs more to compile than to run for a 500-lead batch.
    """
    if connection.vendor != "postgresql":
        for lead in leads:
            lead.dirty_since = None
        LeadScore.objects.bulk_update(
            [lead.scorecard for lead in leads], ["score", "grade", "score_updated_at"], batch_size=500
        )
        fields = ["updated_at", "stage", "mql_at", "sql_at", "dirty_since"]
        Lead.objects.bulk_update(leads, fields, batch_size=500)
        return
    ids = [lead.pk for lead in leads]
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {connection.ops.quote_name(LeadScore._meta.db_table)} AS s SET score = v.score,"
            " grade = v.grade, score_updated_at = %s"
            " FROM unnest(%s::bigint[], %s::int[], %s::text[]) AS v(id, score, grade) WHERE s.lead_id = v.id",
            [
                now,
                pg_array(ids),
                pg_array([lead.scorecard.score for lead in leads]),
                pg_array([lead.scorecard.grade for lead in leads]),
            ],
        )
        cursor.execute(
            f"UPDATE {connection.ops.quote_name(Lead._meta.db_table)} AS l SET stage = v.stage, mql_at = v.mql_at,"
            " sql_at = v.sql_at, updated_at = %s, dirty_since = NULL"
            " FROM unnest(%s::bigint[], %s::text[], %s::timestamptz[], %s::timestamptz[])"
            " AS v(id, stage, mql_at, sql_at) WHERE l.id = v.id",
            [
                now,
                pg_array(ids),
                pg_array([lead.stage for lead in leads]),
                pg_array([lead.mql_at for lead in leads]),
                pg_array([lead.sql_at for lead in leads]),
            ],
        )


def pipeline_process_until_done(*, time_budget: float | None = None, limit: int | None = None) -> dict[str, Any]:
    """Run batches until no claimable dirty lead is left or ``time_budget`` seconds are used."""
    budget = settings.LEADCRM_PIPELINE_TIME_BUDGET if time_budget is None else time_budget
    deadline = time.monotonic() + budget
    totals = {"batches": 0, "leads": 0, "events": 0, "failed": 0, "more": False}
    while True:
        run = pipeline_process_dirty(limit=limit)
        totals["batches"] += 1
        totals["leads"] += run.leads
        totals["events"] += run.events
        totals["failed"] += run.failed
        # Stop when nothing was claimable, or when a batch made no progress but failures; a batch whose
        # leads all got new events meanwhile (none failed, none done) is simply run again.
        if run.pk is None or (run.leads == 0 and run.failed > 0):
            break
        if time.monotonic() >= deadline:
            totals["more"] = True
            break
    return totals
