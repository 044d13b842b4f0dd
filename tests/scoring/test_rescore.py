"""Preview and apply a rule set over every lead: figures, equality with a per-lead recompute, guarded writes."""

from __future__ import annotations

import itertools
import json
import random
from datetime import timedelta
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import OperationalError, transaction
from django.utils import timezone

from leads.models import Lead, LeadScore, LeadStageChange, Stage
from scoring import rescore
from scoring import rules as r
from scoring import services as scoring
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
from tests.factories import InteractionFactory, LeadFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def leads() -> list[Lead]:
    """60 leads with varied titles, industries and events over the last 200 days, scored by the pipeline rules."""
    rng = random.Random(7)
    now = timezone.now()
    made = []
    for i in range(60):
        lead = LeadFactory.create(
            job_title=rng.choice(["Sales Director", "销售总监", "Engineer", "Student"]),
            industry=rng.choice(["manufacturing", "software", ""]),
            company_size=rng.choice(["1-10", "501-1000", ""]),
            attributes={"plan": rng.choice(["enterprise", "free"])} if i % 3 else {},
            stage=rng.choice([Stage.NEW, Stage.CONTACTED, Stage.CONVERTED]),
        )
        for _ in range(rng.randint(0, 6)):
            InteractionFactory.create(
                lead=lead,
                type=rng.choice(["page_view", "content_download", "demo_request", "email_open"]),
                occurred_at=now - timedelta(days=rng.randint(0, 200), hours=rng.randint(0, 23)),
                properties={"url": rng.choice(["/pricing", "/blog"])},
            )
        made.append(lead)
    Lead.objects.update(dirty_since=None)
    return made


def draft() -> ScoringRuleSet:
    """A copy of the active rule set: bigger demo requests, a pricing rule, a plan rule, a dormancy penalty."""
    copy = scoring.rule_set_copy(rule_set=ScoringRuleSet.objects.get(is_active=True), name="Sharper")
    copy.rules.filter(event_type="demo_request").update(points=45)
    ScoringRule.objects.create(
        rule_set=copy,
        kind=r.BEHAVIOUR,
        points=6,
        cap=18,
        event_type="page_view",
        event_filters=[{"path": "url", "operator": r.CONTAINS, "value": "/pricing"}],
    )
    ScoringRule.objects.create(
        rule_set=copy, kind=r.FIT, points=12, field="attr.plan", operator=r.EQUALS, value="enterprise"
    )
    ScoringRule.objects.create(
        rule_set=copy, kind=r.NEGATIVE, points=-7, field=r.DAYS_INACTIVE, operator=r.RANGE, value={"min": 30}
    )
    copy.mql_threshold = 30
    copy.save()
    return copy


def run(rule_set: ScoringRuleSet, mode: str) -> RescoreJob:
    if mode == RescoreMode.APPLY and rescore.preview_for_apply(rule_set) is None:
        run(rule_set, RescoreMode.PREVIEW)  # an apply needs one (tested below)
    job = rescore.rescore_job_create(rule_set=rule_set, mode=mode)
    # Inside a test transaction the task waits for a commit that never comes: run it here. Outside one
    # (the transactional test) the eager task has already run it on commit.
    result = rescore.rescore_run(job_id=job.pk) or RescoreJob.objects.get(pk=job.pk)
    assert result.status == RescoreStatus.DONE
    return result


def figures_of(job: RescoreJob) -> dict[str, Any]:
    """The job's summary without its timings (how long each phase took: the only figures allowed to differ)."""
    return {k: v for k, v in job.summary.items() if k not in ("phases_s", "elapsed_s")}


def snapshot() -> dict[int, tuple[int, str, str]]:
    return {
        pk: (score, grade, stage)
        for pk, score, grade, stage in Lead.objects.values_list("pk", "scorecard__score", "scorecard__grade", "stage")
    }


def test_preview_writes_nothing_and_apply_writes_exactly_what_it_showed(leads: list[Lead], settings: Any) -> None:
    settings.LEADCRM_RESCORE_BATCH_SIZE = 7  # several batches, one of them partial
    before = snapshot()
    rule_set = draft()

    preview = run(rule_set, RescoreMode.PREVIEW)

    assert preview.status == RescoreStatus.DONE
    assert snapshot() == before
    assert not ScoringRuleSet.objects.get(pk=rule_set.pk).is_active
    assert preview.total == preview.processed == len(leads)
    assert sum(preview.summary["histogram_before"]) == sum(preview.summary["histogram_after"]) == len(leads)
    assert preview.changed_scores > 0
    assert preview.changed_grades > 0
    assert preview.stage_moves > 0

    applied = run(rule_set, RescoreMode.APPLY)

    assert ScoringRuleSet.objects.get(pk=rule_set.pk).is_active
    figures = ("total", "changed_scores", "changed_grades", "stage_moves")
    assert [getattr(applied, f) for f in figures] == [getattr(preview, f) for f in figures]
    assert figures_of(applied) == figures_of(preview)
    assert applied.skipped == 0
    after = snapshot()
    assert sum(1 for pk in before if before[pk][0] != after[pk][0]) == preview.changed_scores
    assert sum(1 for pk in before if before[pk][2] != after[pk][2]) == preview.stage_moves
    # One history row per changed score or grade, at the new rule set's version.
    changed = {pk for pk in before if before[pk][:2] != after[pk][:2]}
    assert (
        set(ScoreHistory.objects.filter(rule_set_version=rule_set.version).values_list("lead_id", flat=True)) == changed
    )


def test_applied_scores_equal_a_per_lead_recompute(leads: list[Lead]) -> None:
    rule_set = draft()
    run(rule_set, RescoreMode.APPLY)
    now = timezone.now()
    for lead in random.Random(3).sample(leads, 30):
        lead.refresh_from_db()
        expected = scoring.lead_score_recompute(lead=lead, now=now)
        assert (lead.score, lead.grade) == (expected.score, expected.grade), lead.pk


def test_stages_only_move_forward_with_a_stamp_and_a_history_row(leads: list[Lead]) -> None:
    rule_set = draft()
    converted = {lead.pk for lead in leads if lead.stage == Stage.CONVERTED}
    run(rule_set, RescoreMode.APPLY)
    moved = LeadStageChange.objects.filter(reason__startswith="score")
    assert moved.exists()
    assert not moved.filter(lead_id__in=converted).exists()
    for change in moved.select_related("lead"):
        assert change.to_stage in (Stage.MQL, Stage.SQL)
        assert change.lead.stage == change.to_stage
        assert change.lead.mql_at is not None
        assert change.lead.score >= rule_set.mql_threshold


def test_a_lead_changed_while_the_batch_computed_is_left_to_the_pipeline(leads: list[Lead]) -> None:
    rule_set = draft()
    ruleset = rescore.rule_set_load(rule_set)
    compiled = rescore.CompiledRuleSet(ruleset)
    now = timezone.now()
    batch = [row for row in rescore._score_batch(compiled, 0, 10**9, now, True) if row.changes]
    victim = batch[0]
    # Meanwhile the pipeline wrote a fresher score for the victim.
    LeadScore.objects.filter(lead_id=victim.pk).update(score=victim.score + 1, score_updated_at=timezone.now())

    stale = rescore._write(batch, ruleset, now)

    assert stale == [victim.pk]
    written = set(LeadScore.objects.filter(score_updated_at=now).values_list("lead_id", flat=True))
    assert written == {row.pk for row in batch} - {victim.pk}
    lead = Lead.objects.get(pk=victim.pk)
    assert lead.score == victim.score + 1  # not overwritten with the stale computation
    assert lead.dirty_since is not None  # and queued for the pipeline, which scores it on the new rules


def test_a_lead_waiting_for_the_pipeline_when_read_is_left_to_it(leads: list[Lead]) -> None:
    rule_set = draft()
    ruleset = rescore.rule_set_load(rule_set)
    compiled = rescore.CompiledRuleSet(ruleset)
    now = timezone.now()
    waiting = Lead.objects.filter(pk__in=[lead.pk for lead in leads[:3]])
    waiting.update(dirty_since=now)
    before = dict(LeadScore.objects.filter(lead__in=waiting).values_list("lead_id", "score_updated_at"))
    batch = [row for row in rescore._score_batch(compiled, 0, 10**9, now, True) if row.changes]
    assert set(before) <= {row.pk for row in batch}  # the rules would change them

    stale = rescore._write(batch, ruleset, now)

    assert set(stale) == set(before)
    assert dict(LeadScore.objects.filter(lead__in=waiting).values_list("lead_id", "score_updated_at")) == before
    written = set(LeadScore.objects.filter(score_updated_at=now).values_list("lead_id", flat=True))
    assert written == {row.pk for row in batch} - set(before)


def test_apply_needs_a_preview_of_the_version_as_it_is_now(leads: list[Lead]) -> None:
    rule_set = draft()
    with pytest.raises(ValidationError) as caught:
        rescore.rescore_job_create(rule_set=rule_set, mode=RescoreMode.APPLY)
    assert "Preview this version first" in caught.value.message_dict["rule_set"][0]

    run(rule_set, RescoreMode.PREVIEW)
    rule = rule_set.rules.first()
    assert rule is not None
    scoring.rule_update(rule=rule, data={"points": 3})  # an edit after the preview
    with pytest.raises(ValidationError):
        rescore.rescore_job_create(rule_set=ScoringRuleSet.objects.get(pk=rule_set.pk), mode=RescoreMode.APPLY)

    run(rule_set, RescoreMode.PREVIEW)
    assert rescore.rescore_job_create(rule_set=ScoringRuleSet.objects.get(pk=rule_set.pk), mode=RescoreMode.APPLY)


def test_only_one_apply_at_a_time(leads: list[Lead]) -> None:
    rule_set = draft()
    run(rule_set, RescoreMode.PREVIEW)
    rescore.rescore_job_create(rule_set=rule_set, mode=RescoreMode.APPLY)
    with pytest.raises(ValidationError) as caught:
        rescore.rescore_job_create(rule_set=rule_set, mode=RescoreMode.APPLY)
    assert "rule_set" in caught.value.message_dict
    # A preview may run alongside.
    assert rescore.rescore_job_create(rule_set=rule_set, mode=RescoreMode.PREVIEW).pk


def test_a_finished_job_is_not_run_again(leads: list[Lead]) -> None:
    job = run(draft(), RescoreMode.PREVIEW)
    assert rescore.rescore_run(job_id=job.pk) is None


def test_a_job_in_many_parts_adds_up_to_the_same_figures_as_one_part(leads: list[Lead], settings: Any) -> None:
    rule_set = draft()
    settings.LEADCRM_RESCORE_BATCH_SIZE = 10_000
    whole = run(rule_set, RescoreMode.PREVIEW)
    settings.LEADCRM_RESCORE_BATCH_SIZE = 4

    parted = run(rule_set, RescoreMode.PREVIEW)

    assert whole.parts.count() == 1
    bounds = list(parted.parts.order_by("lo").values_list("lo", "hi"))
    assert len(bounds) >= len(leads) // 4
    assert all(hi == next_lo for (_, hi), (next_lo, _) in itertools.pairwise(bounds))  # no gap
    assert set(parted.parts.values_list("status", flat=True)) == {RescorePartStatus.DONE}
    assert figures_of(parted) == figures_of(whole)
    assert (parted.total, parted.processed, parted.changed_scores) == (
        whole.total,
        whole.processed,
        whole.changed_scores,
    )


def test_a_failing_part_fails_the_job_with_its_range_and_the_rest_is_not_run(
    leads: list[Lead], settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.LEADCRM_RESCORE_BATCH_SIZE = 10
    rule_set = draft()
    run(rule_set, RescoreMode.PREVIEW)
    before = snapshot()
    real = rescore._stages
    calls = []

    def second_part_breaks(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 2:  # after the part's cards and history were written, in its transaction
            raise ValueError("disk on fire")
        return real(*args, **kwargs)

    monkeypatch.setattr(rescore, "_stages", second_part_breaks)
    job = rescore.rescore_job_create(rule_set=rule_set, mode=RescoreMode.APPLY)

    with pytest.raises(ValueError, match="disk on fire"):
        rescore.rescore_run(job_id=job.pk)

    job.refresh_from_db()
    assert job.status == RescoreStatus.FAILED
    parts = list(job.parts.order_by("lo"))
    second = parts[1]
    assert job.error.startswith(f"[{second.lo}, {second.hi})")
    assert "disk on fire" in job.error
    statuses = [part.status for part in parts]
    assert statuses[:2] == [RescorePartStatus.DONE, RescorePartStatus.FAILED]
    assert set(statuses[2:]) == {RescorePartStatus.PENDING}
    # Each part is one transaction: the first part's leads were written, none from the failed one on.
    assert {pk: v for pk, v in snapshot().items() if pk >= second.lo} == {
        pk: v for pk, v in before.items() if pk >= second.lo
    }
    assert any(snapshot()[pk] != before[pk] for pk in before if pk < second.lo)
    # A later part's message coming anyway runs nothing: the job has failed.
    rescore.rescore_part_run(part_id=parts[2].pk)
    assert len(calls) == 2
    assert RescorePart.objects.get(pk=parts[2].pk).status == RescorePartStatus.PENDING


def test_the_sweeper_resends_parts_whose_message_was_lost(leads: list[Lead], settings: Any) -> None:
    settings.LEADCRM_RESCORE_BATCH_SIZE = 20
    job = rescore.rescore_job_create(rule_set=draft(), mode=RescoreMode.PREVIEW)
    with transaction.atomic():
        rescore._plan(RescoreJob.objects.select_for_update().get(pk=job.pk))
    # Queued an hour ago, and the messages never arrived (say Redis restarted with them).
    job.parts.update(status=RescorePartStatus.QUEUED, touched_at=timezone.now() - timedelta(hours=1))

    sent = rescore.rescore_sweep(stale_after_s=60)  # eager tasks: each part runs as it is sent

    assert sent == job.parts.count() >= 3
    job.refresh_from_db()
    assert job.status == RescoreStatus.DONE
    assert job.processed == job.total == len(leads)
    assert set(job.parts.values_list("status", flat=True)) == {RescorePartStatus.DONE}


def test_the_sweeper_leaves_parts_in_flight_alone(leads: list[Lead]) -> None:
    job = rescore.rescore_job_create(rule_set=draft(), mode=RescoreMode.PREVIEW)
    with transaction.atomic():
        rescore._plan(RescoreJob.objects.select_for_update().get(pk=job.pk))
    job.parts.update(status=RescorePartStatus.QUEUED, touched_at=timezone.now())

    assert rescore.rescore_sweep(stale_after_s=600) == 0

    assert set(job.parts.values_list("status", flat=True)) == {RescorePartStatus.QUEUED}
    assert RescoreJob.objects.get(pk=job.pk).status == RescoreStatus.RUNNING


def test_the_bulk_history_breakdown_is_the_json_of_the_rules_that_fired(leads: list[Lead]) -> None:
    ruleset = rescore.rule_set_load(draft())
    compiled = rescore.CompiledRuleSet(ruleset)
    encode = rescore._BreakdownEncoder(ruleset)
    rows = rescore._score_batch(compiled, 0, 10**9, timezone.now(), True)
    fired = [row.fired for row in rows if row.fired]
    assert len(fired) > 20
    for case in [*fired, ((0, 1 / 3, 2), (1, -0.0, 1), (2, 12.0, 1), (0, 7, 3))]:
        assert encode(case) == json.dumps(rescore._breakdown(ruleset, case), ensure_ascii=False)
        assert json.loads(encode(case)) == rescore._breakdown(ruleset, case)


def test_a_deleted_lead_takes_its_score_history_with_it(leads: list[Lead]) -> None:
    """The history has no database constraint on its lead (scoring/models.py says why): the ORM cascades."""
    run(draft(), RescoreMode.APPLY)
    doomed = ScoreHistory.objects.values_list("lead_id", flat=True).first()
    assert doomed is not None

    Lead.objects.filter(pk=doomed).delete()

    assert not ScoreHistory.objects.filter(lead_id=doomed).exists()
    assert ScoreHistory.objects.exists()


def _planned(rule_set: ScoringRuleSet, mode: str) -> RescoreJob:
    """A job claimed and split into parts, as ``rescore_run`` leaves it for the workers."""
    job = rescore.rescore_job_create(rule_set=rule_set, mode=mode)
    with transaction.atomic():
        rescore._plan(RescoreJob.objects.select_for_update().get(pk=job.pk))
    return job


def test_a_part_redelivered_after_it_committed_changes_nothing_and_the_figures_stay_true(
    leads: list[Lead], settings: Any
) -> None:
    settings.LEADCRM_RESCORE_BATCH_SIZE = 30
    rule_set = draft()
    preview = run(rule_set, RescoreMode.PREVIEW)
    job = _planned(rule_set, RescoreMode.APPLY)
    parts = list(job.parts.order_by("lo"))
    for part in parts:
        rescore.rescore_part_run(part_id=part.pk, task_id=f"t{part.pk}", queue_next=False)
    history = ScoreHistory.objects.count()

    rescore.rescore_part_run(part_id=parts[0].pk, task_id=f"t{parts[0].pk}", queue_next=False)  # the redelivery

    job.refresh_from_db()
    assert job.status == RescoreStatus.DONE
    assert figures_of(job) == figures_of(preview)
    assert job.changed_scores == preview.changed_scores > 0
    assert ScoreHistory.objects.count() == history


def test_a_part_that_failed_before_its_commit_is_computed_again_by_its_redelivery(
    leads: list[Lead], settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.LEADCRM_RESCORE_BATCH_SIZE = 10_000
    rule_set = draft()
    preview = run(rule_set, RescoreMode.PREVIEW)
    job = _planned(rule_set, RescoreMode.APPLY)
    (part,) = job.parts.all()
    real = rescore._complete

    def connection_lost(*args: Any, **kwargs: Any) -> Any:
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(rescore, "_complete", connection_lost)
    with pytest.raises(OperationalError):
        rescore.rescore_part_run(part_id=part.pk, task_id="t1", last_attempt=False)  # the task will retry
    assert not ScoreHistory.objects.filter(rule_set_version=rule_set.version).exists()  # rolled back
    monkeypatch.setattr(rescore, "_complete", real)

    rescore.rescore_part_run(part_id=part.pk, task_id="t1")  # the retry, same message

    job.refresh_from_db()
    assert job.status == RescoreStatus.DONE
    assert figures_of(job) == figures_of(preview)


def test_a_slow_run_whose_part_was_taken_over_rolls_its_write_back(
    leads: list[Lead], settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.LEADCRM_RESCORE_BATCH_SIZE = 10_000
    rule_set = draft()
    run(rule_set, RescoreMode.PREVIEW)
    job = _planned(rule_set, RescoreMode.APPLY)
    (part,) = job.parts.all()
    before = snapshot()
    real = rescore._run_part

    def taken_over_meanwhile(part: Any) -> Any:
        tally = real(part)
        RescorePart.objects.filter(pk=part.pk).update(task_id="resent-by-the-sweeper")
        return tally

    monkeypatch.setattr(rescore, "_run_part", taken_over_meanwhile)

    rescore.rescore_part_run(part_id=part.pk, task_id="slow")

    assert snapshot() == before  # nothing written twice: the new owner writes it
    assert not ScoreHistory.objects.filter(rule_set_version=rule_set.version).exists()
    assert RescorePart.objects.get(pk=part.pk).status == RescorePartStatus.RUNNING
    assert RescoreJob.objects.get(pk=job.pk).status == RescoreStatus.RUNNING


def test_a_part_that_kills_its_worker_every_time_fails_the_job(leads: list[Lead]) -> None:
    rule_set = draft()
    job = _planned(rule_set, RescoreMode.PREVIEW)
    (part,) = job.parts.all()
    job.parts.update(status=RescorePartStatus.RUNNING, task_id="t1", attempts=rescore.MAX_ATTEMPTS)

    rescore.rescore_part_run(part_id=part.pk, task_id="t1")  # redelivered once more after a crash

    job.refresh_from_db()
    assert job.status == RescoreStatus.FAILED
    assert "gave up after 5 attempts" in job.error
    assert RescorePart.objects.get(pk=part.pk).status == RescorePartStatus.FAILED


def test_a_job_that_cannot_start_is_failed_with_the_reason(leads: list[Lead], monkeypatch: pytest.MonkeyPatch) -> None:
    job = rescore.rescore_job_create(rule_set=draft(), mode=RescoreMode.PREVIEW)

    def broken(size: int) -> Any:
        raise ValueError("no ids today")

    monkeypatch.setattr(rescore, "_id_ranges", broken)
    with pytest.raises(ValueError, match="no ids today"):
        rescore.rescore_run(job_id=job.pk)

    job.refresh_from_db()
    assert job.status == RescoreStatus.FAILED
    assert "no ids today" in job.error
    assert not job.parts.exists()
