"""``GET /api/v1/leads/<id>/score/``: score, grade, breakdown and history, with the lead's visibility."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from rest_framework.test import APIClient

from leads import services as lead_services
from leads.models import Lead
from tests.conftest import Org
from tests.factories import InteractionFactory, LeadFactory
from users.models import User

ClientFor = Callable[[User], APIClient]


def score_url(lead: Lead) -> str:
    return f"/api/v1/leads/{lead.pk}/score/"


def scored_lead(org: Org) -> Lead:
    lead = LeadFactory.create(owner=org.rep, team=org.north, job_title="Sales Director")
    InteractionFactory.create(lead=lead, type="form_submit")
    lead_services.leads_mark_dirty(lead_ids=[lead.pk])
    lead_services.pipeline_process_dirty()
    InteractionFactory.create(lead=lead, type="demo_request")
    lead_services.leads_mark_dirty(lead_ids=[lead.pk])
    lead_services.pipeline_process_dirty()
    lead.refresh_from_db()
    return lead


def test_the_owner_sees_score_breakdown_and_history(org: Org, client_for: ClientFor) -> None:
    lead = scored_lead(org)

    body = client_for(org.rep).get(score_url(lead)).json()

    assert (body["score"], body["grade"]) == (50, "warm")
    assert [item["reason"] for item in body["breakdown"]] == [
        "+10 senior title",
        "+30 demo_request ×1",
        "+10 form_submit ×1",
    ]
    assert sum(item["points"] for item in body["breakdown"]) == 50
    assert {item["kind"] for item in body["breakdown"]} == {"fit", "behaviour"}
    assert [(h["score"], h["grade"]) for h in body["history"]] == [(50, "warm"), (20, "cold")]
    assert body["rule_set_version"] == 1


def test_a_lead_never_scored_has_an_empty_breakdown(org: Org, client_for: ClientFor) -> None:
    lead = LeadFactory.create(owner=org.rep)
    body = client_for(org.rep).get(score_url(lead)).json()
    assert (body["score"], body["breakdown"], body["history"]) == (0, [], [])


@pytest.mark.parametrize("who", ["rep_south", "rep2"])
def test_another_reps_lead_is_404(org: Org, client_for: ClientFor, who: str) -> None:
    lead = scored_lead(org)
    assert client_for(getattr(org, who)).get(score_url(lead)).status_code == 404


def test_a_manager_of_the_team_sees_it_and_anonymous_is_refused(org: Org, client_for: ClientFor) -> None:
    lead = scored_lead(org)
    assert client_for(org.manager).get(score_url(lead)).status_code == 200
    assert APIClient().get(score_url(lead)).status_code in (401, 403)


def test_missing_lead_is_404(org: Org, client_for: ClientFor) -> None:
    assert client_for(org.admin).get("/api/v1/leads/999999/score/").status_code == 404
