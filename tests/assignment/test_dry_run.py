"""Dry run: a draft rule set replayed over recent leads, and it agrees with live routing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from assignment import services
from assignment.models import AssignmentDecision, RepProfile, Trigger
from tests.assignment.conftest import make_rule
from tests.factories import LeadFactory

pytestmark = pytest.mark.django_db


def test_dry_run_equals_what_live_assignment_then_does(org, reps):
    cap = RepProfile.objects.get(user=org.rep2)
    cap.daily_capacity = 2
    services.profile_save(profile=cap)
    make_rule(
        "East",
        strategy="load_balanced",
        conditions=[{"field": "region", "operator": "equals", "value": "East"}],
        reps=[org.rep, org.rep2],
    )
    make_rule("Everyone else", strategy="round_robin", reps=[org.rep, org.rep2, org.rep_south])
    start = timezone.now() - timedelta(minutes=30)
    leads = [
        LeadFactory.create(region="East" if i % 3 == 0 else "West", created_at=start + timedelta(minutes=i))
        for i in range(12)
    ]

    preview = services.assignment_dry_run(leads=leads)

    for lead in leads:  # live, in the same order, each at its own arrival time
        services.lead_route(lead=lead, trigger=Trigger.NEW, now=lead.created_at)
    live = {lead.pk: lead.owner_id for lead in type(leads[0]).objects.filter(pk__in=[lead.pk for lead in leads])}
    assert {row.lead_id: row.decision.winner_id for row in preview.rows} == live
    assert len(set(live.values())) == 3  # the rotation and the capacity both mattered


def test_dry_run_writes_nothing(org, reps):
    make_rule(reps=[org.rep])
    lead = LeadFactory.create()
    services.assignment_dry_run(leads=[lead])
    lead.refresh_from_db()
    assert lead.owner is None
    assert not AssignmentDecision.objects.exists()


def test_dry_run_api_replays_a_draft_rule_set(org, reps, client_for):
    LeadFactory.create_batch(4, team=org.north, score=40)
    draft = [
        {"name": "North in turn", "strategy": "round_robin", "pool": "reps", "pool_reps": [org.rep.pk, org.rep2.pk]}
    ]
    response = client_for(org.manager).post(
        "/api/v1/assignment/rules/dry-run/", {"days": 7, "rules": draft}, format="json"
    )
    assert response.status_code == 200, response.json()
    data = response.json()
    assert (data["leads"], data["assigned"]) == (4, 4)
    assert sorted((rep["user"], rep["leads"], rep["score_sum"]) for rep in data["per_rep"]) == [
        (org.rep.pk, 2, 80),
        (org.rep2.pk, 2, 80),
    ]
    bad = client_for(org.manager).post(
        "/api/v1/assignment/rules/dry-run/", {"rules": [{"strategy": "psychic"}]}, format="json"
    )
    assert bad.status_code == 400
    assert "rules" in bad.json()
