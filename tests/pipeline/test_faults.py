"""Faults the pipeline must survive, each with real Celery workers, a real Redis and PostgreSQL.

Each test starts its own worker processes on a private queue; the tests that stop Redis use a
private ``redis-server`` on a port of their own, never the machine's Redis.
"""

from __future__ import annotations

import os
import random
import signal
import threading
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.db.models import Sum
from django.utils import timezone
from rest_framework.test import APIClient

from leads.models import Interaction, Lead, LeadStageChange, PipelineRun, Stage
from leads.services.pipeline import ADVISORY_NAMESPACE, leads_mark_dirty
from leads.tasks.pipeline import process_dirty_leads_task, sweep_dirty_leads_task
from scoring.services import lead_score_recompute
from tests.conftest import Org
from tests.factories import InteractionFactory, LeadFactory
from tests.pipeline.conftest import wait_until

# Every test here commits for real (threads, worker processes): transactional_db throughout.
# The event catalogue survives the flush between tests: it is re-ensured on post_migrate.
pytestmark = [pytest.mark.postgres, pytest.mark.usefixtures("transactional_db")]


URL = "/api/v1/events/"


def _client(user: Any) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def _event(lead: Lead, type_: str, **extra: Any) -> dict[str, Any]:
    return {"lead_id": lead.pk, "type": type_, "occurred_at": timezone.now().isoformat(), **extra}


def _no_dirty_leads() -> bool:
    return not Lead.objects.filter(dirty_since__isnull=False).exists()


def _processed_leads() -> int:
    return PipelineRun.objects.aggregate(n=Sum("leads"))["n"] or 0


def _assert_scores_equal_a_clean_recompute(leads: list[Lead]) -> None:
    now = timezone.now()
    for lead in Lead.objects.filter(pk__in=[lead.pk for lead in leads]):
        expected = lead_score_recompute(lead=lead, now=now)
        assert (lead.score, lead.grade) == (expected.score, expected.grade), lead.pk
        assert lead.score_updated_at is not None


def test_same_event_twice_and_same_batch_retried_give_one_interaction_and_one_score_change(
    org: Org, workers_on: Any, redis_urls: dict[str, str]
) -> None:
    workers = workers_on(redis_urls["broker"])
    workers.start()
    lead = LeadFactory.create(owner=org.rep, team=org.north)
    batch = [
        _event(lead, "demo_request", external_id="crm-1"),
        _event(lead, "form_submit", external_id="crm-2"),
        _event(lead, "form_submit", external_id="crm-3"),
    ]
    client = _client(org.rep)

    first = client.post(URL, batch, format="json").json()
    assert wait_until(lambda: _no_dirty_leads() and _processed_leads() == 1, timeout=30)
    client.post(URL, batch[0], format="json")  # the same event again
    retried = client.post(URL, batch, format="json").json()  # the whole batch retried
    process_dirty_leads_task.delay()  # and a redelivered processing task
    sweep_dirty_leads_task.delay()
    # Let the worker drain the queue: a heartbeat-like marker is the last message it handles.
    marker = InteractionFactory.create(lead=LeadFactory.create(), type="call")
    leads_mark_dirty(lead_ids=[marker.lead_id])
    assert wait_until(lambda: _no_dirty_leads() and _processed_leads() == 2, timeout=30)

    lead.refresh_from_db()
    assert first["accepted"] == 3
    assert retried == {"accepted": 0, "duplicate": 3, "rejected": 0, "errors": []}
    assert Interaction.objects.filter(lead=lead).count() == 3
    assert (lead.score, lead.stage) == (50, Stage.MQL)
    assert LeadStageChange.objects.filter(lead=lead, to_stage=Stage.MQL).count() == 1
    assert PipelineRun.objects.filter(leads__gt=0).count() == 2  # the lead once, the marker once


def test_redis_stopped_while_events_are_posted_then_every_lead_processed_once(
    org: Org, workers_on: Any, private_redis: Any
) -> None:
    workers = workers_on(private_redis.url)
    workers.start(LEADCRM_DIRTY_SWEEP_AFTER="0")
    leads = LeadFactory.create_batch(20, owner=org.rep, team=org.north)
    client = _client(org.rep)
    private_redis.stop()

    answers = [
        client.post(URL, [_event(lead, "demo_request"), _event(lead, "form_submit")], format="json") for lead in leads
    ]

    assert {a.status_code for a in answers} == {202}
    assert sum(a.json()["accepted"] for a in answers) == 40
    assert Lead.objects.filter(dirty_since__isnull=False).count() == 20  # PostgreSQL kept the work
    status = _client(org.admin).get("/api/v1/pipeline/status/").json()
    assert status["dirty_leads"] == 20
    assert status["queue_depth"] is None  # the broker does not answer; the page still does
    private_redis.start()
    # The processing messages were lost with Redis; the sweeper (beat, every 60 s) finds the leads.
    sweep_dirty_leads_task.delay()
    assert wait_until(_no_dirty_leads, timeout=60), "the worker never processed the leads after Redis returned"
    assert _processed_leads() == 20  # none processed twice
    status = _client(org.admin).get("/api/v1/pipeline/status/").json()
    assert status["dirty_leads"] == 0
    assert status["events_last_minute"] == 40
    assert isinstance(status["queue_depth"], int)
    _assert_scores_equal_a_clean_recompute(leads)
    assert set(Lead.objects.filter(pk__in=[lead.pk for lead in leads]).values_list("scorecard__score", flat=True)) == {
        40
    }


def _claimed_by_a_worker(ids: list[int]) -> bool:
    """True while a worker holds its batch claim (the pipeline's advisory locks) on all these leads."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = %s AND granted"
            " AND objid = ANY(%s::oid[])",
            [ADVISORY_NAMESPACE, ids],
        )
        return bool(cursor.fetchone()[0] == len(ids))


def test_worker_killed_mid_batch_then_a_fresh_worker_finishes_with_clean_scores(
    org: Org, workers_on: Any, redis_urls: dict[str, str]
) -> None:
    workers = workers_on(redis_urls["broker"])
    leads = LeadFactory.create_batch(40, job_title="销售经理")
    for i, lead in enumerate(leads):
        InteractionFactory.create(lead=lead, type="demo_request")
        InteractionFactory.create(lead=lead, type="form_submit")
        InteractionFactory.create_batch(i % 4, lead=lead, type="email_click")
    ids = [lead.pk for lead in leads]
    # Slow worker: 0.2 s per lead, so computing the 40-lead batch takes ~8 s.
    doomed = workers.start(LEADCRM_PIPELINE_SLOWDOWN_S="0.2")
    leads_mark_dirty(lead_ids=ids)
    assert wait_until(lambda: _claimed_by_a_worker(ids), timeout=30), "the worker never started the batch"

    os.kill(doomed.pid, signal.SIGKILL)
    doomed.wait(timeout=10)

    # Nothing of the half-done batch was committed.
    assert Lead.objects.filter(pk__in=ids, dirty_since__isnull=False).count() == 40
    assert not PipelineRun.objects.exists()
    workers.start(LEADCRM_DIRTY_SWEEP_AFTER="0", CELERY_VISIBILITY_TIMEOUT="1")
    sweep_dirty_leads_task.delay()
    assert wait_until(_no_dirty_leads, timeout=60), "the fresh worker never finished the batch"
    _assert_scores_equal_a_clean_recompute(leads)
    # 10 title + 30 demo + 10 form + up to 9 clicks: every lead is an MQL, moved there exactly once.
    assert LeadStageChange.objects.filter(lead_id__in=ids, to_stage=Stage.MQL).count() == 40


def test_two_workers_on_the_same_leads_store_the_score_of_all_events(
    org: Org, workers_on: Any, redis_urls: dict[str, str]
) -> None:
    workers = workers_on(redis_urls["broker"])
    workers.start()
    workers.start()
    leads = LeadFactory.create_batch(3, owner=org.rep, team=org.north)
    rng = random.Random(4)
    kinds = ["page_view", "email_open", "email_click", "call", "content_download"]
    batches = [
        [
            _event(
                rng.choice(leads),
                rng.choice(kinds),
                occurred_at=(timezone.now() - timedelta(days=rng.randint(0, 90))).isoformat(),
            )
            for _ in range(5)
        ]
        for _ in range(40)
    ]
    errors: list[BaseException] = []

    def post(chunk: list[list[dict[str, Any]]]) -> None:
        try:
            client = _client(org.rep)
            for batch in chunk:
                assert client.post(URL, batch, format="json").status_code == 202
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=post, args=(batches[i::4],)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert not errors, errors
    assert Interaction.objects.filter(lead__in=leads).count() == 200
    assert wait_until(_no_dirty_leads, timeout=60)
    _assert_scores_equal_a_clean_recompute(leads)
    assert PipelineRun.objects.filter(failed__gt=0).count() == 0


def test_malformed_events_rejected_with_reasons_and_good_ones_processed_by_the_worker(
    org: Org, workers_on: Any, redis_urls: dict[str, str]
) -> None:
    workers = workers_on(redis_urls["broker"])
    workers.start()
    mine = LeadFactory.create(owner=org.rep, team=org.north)
    theirs = LeadFactory.create(owner=org.rep_south, team=org.south)
    batch = [
        _event(mine, "demo_request"),
        _event(mine, "no_such_type"),
        {**_event(mine, "call"), "occurred_at": "31/12/2025"},
        _event(mine, "call", properties={"x": "y" * 20_000}),
        _event(theirs, "call"),
        {**_event(mine, "call"), "lead_id": 10**9},
        _event(mine, "trial_signup"),
    ]

    body = _client(org.rep).post(URL, batch, format="json").json()

    assert (body["accepted"], body["rejected"]) == (2, 5)
    fields = {e["index"]: set(e["errors"]) for e in body["errors"]}
    assert fields == {1: {"type"}, 2: {"occurred_at"}, 3: {"properties"}, 4: {"lead_id"}, 5: {"lead_id"}}
    assert wait_until(_no_dirty_leads, timeout=30)
    mine.refresh_from_db()
    assert mine.score == 55
    assert mine.stage == Stage.MQL
    assert not Interaction.objects.filter(lead=theirs).exists()
