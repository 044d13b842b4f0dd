"""The pipeline service: mark dirty, process dirty leads in batches (score from facts, stage, hooks, flag)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from leads import services
from leads.models import Interaction, Lead, LeadStageChange, PipelineRun, Stage
from leads.services.pipeline import pipeline_process_until_done
from scoring.services import lead_score_recompute
from tests.factories import InteractionFactory, LeadFactory

pytestmark = pytest.mark.django_db

HOOK_CALLS: list[dict[str, Any]] = []


def recording_hook(**kwargs: Any) -> None:
    HOOK_CALLS.append(kwargs)


def failing_hook(*, lead: Lead, **kwargs: Any) -> None:
    if lead.name == "Poison":
        raise RuntimeError("hook exploded")


def test_mark_dirty_counts_only_leads_that_became_dirty_and_keeps_the_first_time(
    django_capture_on_commit_callbacks: Any,
) -> None:
    clean, already = LeadFactory.create_batch(2)
    first = timezone.now() - timedelta(minutes=5)
    Lead.objects.filter(pk=already.pk).update(dirty_since=first)

    with django_capture_on_commit_callbacks() as callbacks:
        became = services.leads_mark_dirty(lead_ids=[clean.pk, already.pk, clean.pk])

    assert became == 1
    clean.refresh_from_db()
    already.refresh_from_db()
    assert clean.dirty_since is not None
    assert already.dirty_since == first
    assert len(callbacks) == 1  # one enqueue for the whole call, sent on commit


def test_mark_dirty_with_nothing_enqueues_nothing(django_capture_on_commit_callbacks: Any) -> None:
    with django_capture_on_commit_callbacks() as callbacks:
        assert services.leads_mark_dirty(lead_ids=[]) == 0
    assert callbacks == []


def test_interaction_record_marks_dirty_and_processing_on_commit_scores_the_lead(
    django_capture_on_commit_callbacks: Any,
) -> None:
    lead = LeadFactory.create(job_title="Sales Director")

    with django_capture_on_commit_callbacks(execute=True):
        services.interaction_record(lead=lead, type="demo_request")
        lead.refresh_from_db()
        assert lead.dirty_since is not None  # inside the transaction: dirty, not yet processed
        assert lead.score == 0

    lead.refresh_from_db()
    assert lead.dirty_since is None
    assert (lead.score, lead.grade) == (40, "cold")  # 10 senior title + 30 demo request
    assert lead.score_updated_at is not None


def test_processing_recomputes_from_facts_so_running_twice_changes_nothing() -> None:
    lead = LeadFactory.create()
    InteractionFactory.create_batch(2, lead=lead, type="form_submit")
    InteractionFactory.create(lead=lead, type="content_download", occurred_at=timezone.now() - timedelta(days=30))
    services.leads_mark_dirty(lead_ids=[lead.pk])

    services.pipeline_process_dirty()
    lead.refresh_from_db()
    first = lead.score
    services.leads_mark_dirty(lead_ids=[lead.pk])
    services.pipeline_process_dirty()
    lead.refresh_from_db()

    assert first == lead.score == 24  # 2 × 10 + 8 × ½
    assert lead.score == lead_score_recompute(lead=lead, now=timezone.now()).score


def test_stage_moves_forward_on_thresholds_with_history_and_never_back() -> None:
    lead = LeadFactory.create(stage=Stage.NEW)
    InteractionFactory.create(lead=lead, type="demo_request")
    InteractionFactory.create(lead=lead, type="form_submit", occurred_at=timezone.now() - timedelta(hours=1))
    InteractionFactory.create(lead=lead, type="form_submit", occurred_at=timezone.now() - timedelta(hours=2))
    services.leads_mark_dirty(lead_ids=[lead.pk])

    services.pipeline_process_dirty()
    lead.refresh_from_db()
    assert (lead.score, lead.stage) == (50, Stage.MQL)
    assert lead.mql_at is not None
    assert lead.sql_at is None
    change = LeadStageChange.objects.get(lead=lead, to_stage=Stage.MQL)
    assert change.from_stage == Stage.NEW
    assert "50" in change.reason

    # An unsubscribe drops the score under MQL; the stage stays.
    InteractionFactory.create(lead=lead, type="unsubscribe")
    services.leads_mark_dirty(lead_ids=[lead.pk])
    services.pipeline_process_dirty()
    lead.refresh_from_db()
    assert lead.score == 30
    assert lead.stage == Stage.MQL
    assert LeadStageChange.objects.filter(lead=lead).count() == 1


def test_straight_to_sql_stamps_both_times_and_converted_leads_stay_converted() -> None:
    hot = LeadFactory.create(job_title="VP Sales", company_size="5000+")
    done = LeadFactory.create(job_title="VP Sales", company_size="5000+", stage=Stage.CONVERTED)
    for lead in (hot, done):
        InteractionFactory.create_batch(2, lead=lead, type="demo_request")
    services.leads_mark_dirty(lead_ids=[hot.pk, done.pk])

    services.pipeline_process_dirty()

    hot.refresh_from_db()
    done.refresh_from_db()
    assert hot.stage == Stage.SQL
    assert hot.mql_at is not None
    assert hot.sql_at is not None
    assert done.stage == Stage.CONVERTED
    assert done.sql_at is None
    assert done.score == hot.score == 80


@pytest.mark.parametrize("how", ["new_interaction", "flag_reset"])
def test_an_event_arriving_mid_batch_leaves_the_lead_dirty_for_the_next_batch(
    monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    lead = LeadFactory.create()
    InteractionFactory.create(lead=lead, type="page_view")
    services.leads_mark_dirty(lead_ids=[lead.pk])
    from scoring import services as scoring

    real = scoring.lead_facts_for_batch

    def facts_then_new_event(**kwargs: Any) -> Any:
        facts = real(**kwargs)
        # After the batch read its facts: an event lands on the (still dirty) lead, or the flag is reset.
        if how == "new_interaction":
            InteractionFactory.create(lead=lead, type="page_view")
        else:
            Lead.objects.filter(pk=lead.pk).update(dirty_since=timezone.now() + timedelta(seconds=1))
        return facts

    monkeypatch.setattr(scoring, "lead_facts_for_batch", facts_then_new_event)
    stale = services.pipeline_process_dirty()
    lead.refresh_from_db()
    assert lead.dirty_since is not None
    assert stale.leads == 0

    monkeypatch.setattr(scoring, "lead_facts_for_batch", real)
    services.pipeline_process_dirty()
    lead.refresh_from_db()
    assert lead.dirty_since is None
    assert lead.score == lead.interactions.count()  # one point per page view, every one counted


def test_hooks_run_per_lead_and_a_failing_lead_stays_dirty_without_failing_the_batch(settings: Any) -> None:
    from leads.services import pipeline

    settings.LEADCRM_PIPELINE_HOOKS = [f"{__name__}.recording_hook", f"{__name__}.failing_hook"]
    pipeline._hooks.cache_clear()
    HOOK_CALLS.clear()
    good, poison = LeadFactory.create(name="Good"), LeadFactory.create(name="Poison")
    for lead in (good, poison):
        InteractionFactory.create(lead=lead, type="form_submit")
    services.leads_mark_dirty(lead_ids=[good.pk, poison.pk])

    run = services.pipeline_process_dirty()

    good.refresh_from_db()
    poison.refresh_from_db()
    assert (run.leads, run.failed) == (1, 1)
    assert "hook exploded" in run.error
    assert good.dirty_since is None
    assert good.score == 10
    assert poison.dirty_since is not None  # retried later
    assert {call["lead"].pk for call in HOOK_CALLS} == {good.pk, poison.pk}
    assert HOOK_CALLS[0]["previous_score"] == 0
    pipeline._hooks.cache_clear()


def test_batch_costs_a_constant_number_of_queries() -> None:
    # With the default hooks: assignment, with no rule enabled, asks once per batch and then steps aside.

    def run_with(n: int) -> int:
        leads = LeadFactory.create_batch(n)
        for lead in leads:
            InteractionFactory.create_batch(3, lead=lead, type="email_click")
        services.leads_mark_dirty(lead_ids=[lead.pk for lead in leads])
        with CaptureQueriesContext(connection) as queries:
            services.pipeline_process_dirty()
        return len(queries)

    assert run_with(3) == run_with(30)


def test_pipeline_run_records_leads_and_new_events() -> None:
    lead = LeadFactory.create()
    InteractionFactory.create_batch(4, lead=lead, type="page_view")
    services.leads_mark_dirty(lead_ids=[lead.pk])

    run = services.pipeline_process_dirty()
    idle = services.pipeline_process_dirty()

    assert (run.leads, run.events, run.failed) == (1, 4, 0)
    assert idle.pk is None  # an idle poll writes no row
    assert PipelineRun.objects.count() == 1


def test_process_until_done_drains_in_batches() -> None:
    leads = LeadFactory.create_batch(7)
    for lead in leads:
        InteractionFactory.create(lead=lead, type="call")
    services.leads_mark_dirty(lead_ids=[lead.pk for lead in leads])

    totals = pipeline_process_until_done(limit=3)

    assert totals["leads"] == 7
    assert totals["more"] is False
    assert not Lead.objects.filter(dirty_since__isnull=False).exists()
    assert set(Lead.objects.values_list("scorecard__score", flat=True)) == {5}
    assert Interaction.objects.count() == 7


def test_enqueue_survives_a_dead_broker(caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    from kombu.exceptions import OperationalError

    from leads.tasks.pipeline import process_dirty_leads_task

    def broker_down(*args: Any, **kwargs: Any) -> None:
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(process_dirty_leads_task, "apply_async", broker_down)

    assert services.pipeline_enqueue() is False
    assert "sweeper will retry" in caplog.text


def test_sweeper_reenqueues_only_when_leads_stayed_dirty_too_long(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from leads.services import pipeline
    from leads.tasks.pipeline import sweep_dirty_leads_task

    sent: list[int] = []

    def fake_enqueue(*, force: bool = False) -> bool:
        sent.append(1)
        assert force  # the sweeper does not trust the pending flag
        return True

    monkeypatch.setattr(pipeline, "pipeline_enqueue", fake_enqueue)
    settings.LEADCRM_DIRTY_SWEEP_AFTER = 30
    lead = LeadFactory.create()
    Lead.objects.filter(pk=lead.pk).update(dirty_since=timezone.now() - timedelta(seconds=5))

    sweep_dirty_leads_task.apply()
    assert sent == []

    Lead.objects.filter(pk=lead.pk).update(dirty_since=timezone.now() - timedelta(seconds=31))
    sweep_dirty_leads_task.apply()
    assert sent == [1]
