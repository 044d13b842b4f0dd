"""A rule set applied by real Celery workers through Redis: parts shared out, figures added up, scores right."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

import pytest
from django.db import transaction
from django.utils import timezone

from leads.models import Lead
from scoring import rescore
from scoring import services as scoring
from scoring.models import RescoreJob, RescoreMode, RescorePartStatus, RescoreStatus, ScoreHistory, ScoringRuleSet
from tests.conftest import Org
from tests.factories import InteractionFactory, LeadFactory
from tests.pipeline.conftest import wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.usefixtures("transactional_db")]


def _leads() -> list[Lead]:
    rng = random.Random(11)
    now = timezone.now()
    made = []
    for _ in range(48):
        lead = LeadFactory.create(job_title=rng.choice(["Sales Director", "销售总监", "Engineer"]))
        for _ in range(rng.randint(0, 4)):
            InteractionFactory.create(
                lead=lead,
                type=rng.choice(["page_view", "demo_request", "email_open"]),
                occurred_at=now - timedelta(days=rng.randint(0, 90)),
            )
        made.append(lead)
    Lead.objects.update(dirty_since=None)  # the pipeline is not what is measured here
    return made


def _request(rule_set: ScoringRuleSet, mode: str) -> RescoreJob:
    with transaction.atomic():
        job = rescore.rescore_job_create(rule_set=rule_set, mode=mode)
    finished = wait_until(
        lambda: RescoreJob.objects.filter(pk=job.pk, status__in=[RescoreStatus.DONE, RescoreStatus.FAILED]).first(),
        timeout=120,
    )
    assert finished is not None, f"the workers never finished the {mode}"
    assert finished.status == RescoreStatus.DONE, finished.error
    return finished


def test_two_workers_share_an_apply_in_parts_and_write_what_the_preview_showed(
    org: Org, workers_on: Any, redis_urls: dict[str, str]
) -> None:
    leads = _leads()
    rule_set = scoring.rule_set_copy(rule_set=ScoringRuleSet.objects.get(is_active=True), name="Sharper")
    rule_set.rules.filter(event_type="demo_request").update(points=45)
    rule_set.mql_threshold = 25
    rule_set.save()
    workers = workers_on(redis_urls["broker"])
    for _ in range(2):
        workers.start(LEADCRM_RESCORE_BATCH_SIZE="5", LEADCRM_RESCORE_PARALLEL="2")
    before = dict(Lead.objects.values_list("pk", "scorecard__score"))

    preview = _request(rule_set, RescoreMode.PREVIEW)
    applied = _request(rule_set, RescoreMode.APPLY)

    for job in (preview, applied):
        assert job.parts.count() >= len(leads) // 5
        assert set(job.parts.values_list("status", flat=True)) == {RescorePartStatus.DONE}
        assert job.processed == job.total == len(leads)
    figures = ("changed_scores", "changed_grades", "stage_moves")
    assert [getattr(applied, f) for f in figures] == [getattr(preview, f) for f in figures]
    assert applied.changed_scores > 0
    assert applied.skipped == 0
    assert ScoringRuleSet.objects.get(pk=rule_set.pk).is_active
    now = timezone.now()
    for lead in Lead.objects.select_related("scorecard"):
        expected = scoring.lead_score_recompute(lead=lead, now=now)
        assert (lead.score, lead.grade) == (expected.score, expected.grade), lead.pk
    changed = {pk for pk, score in Lead.objects.values_list("pk", "scorecard__score") if score != before[pk]}
    assert len(changed) == applied.changed_scores
    assert changed <= set(
        ScoreHistory.objects.filter(rule_set_version=rule_set.version).values_list("lead_id", flat=True)
    )
