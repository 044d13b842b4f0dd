"""The assignment API: who may edit rules and profiles, availability, tests without saving, history, re-run, bulk."""

from __future__ import annotations

import pytest

from assignment import services
from assignment.models import AssignmentDecision, AssignmentRule, RepProfile, Trigger
from tests.assignment.conftest import make_rule
from tests.factories import LeadFactory

pytestmark = pytest.mark.django_db

RULES = "/api/v1/assignment/rules/"


def test_managers_create_rules_and_reps_cannot(org, client_for):
    body = {
        "name": "East",
        "strategy": "territory",
        "conditions": [{"field": "country", "operator": "equals", "value": "CN"}],
    }
    assert client_for(org.rep).post(RULES, body, format="json").status_code == 403
    response = client_for(org.manager).post(RULES, body, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["triggers"] == ["new", "manual", "bulk"]
    assert AssignmentRule.objects.get().cursor is not None


def test_rule_errors_name_the_field(org, client_for):
    body = {
        "name": "Bad",
        "strategy": "performance",
        "conditions": [{"field": "shoe_size", "operator": "equals", "value": 42}],
        "options": {"prior_rate": 3},
        "triggers": ["sometimes"],
    }
    response = client_for(org.admin).post(RULES, body, format="json")
    assert response.status_code == 400
    assert set(response.json()) == {"conditions", "options", "triggers"}
    assert "shoe_size" in response.json()["conditions"][0]


def test_reorder_enable_and_disable(org, client_for):
    first, second = make_rule("A"), make_rule("B")
    client = client_for(org.manager)
    response = client.post(f"{RULES}reorder/", {"rule_ids": [second.pk, first.pk]}, format="json")
    assert [rule["name"] for rule in response.json()] == ["B", "A"]
    assert client.post(f"{RULES}{first.pk}/disable/").json()["is_enabled"] is False
    first.refresh_from_db()
    assert not first.is_enabled
    assert client.post(f"{RULES}{first.pk}/enable/").json()["is_enabled"] is True


def test_testing_a_rule_against_a_sample_lead_saves_nothing(org, reps, client_for):
    rule = make_rule("East", strategy="territory", reps=[org.rep, org.rep2])
    east = RepProfile.objects.get(user=org.rep2)
    east.territories = ["East"]
    services.profile_save(profile=east)
    sample = {"fields": {"region": "East", "score": 70}, "trigger": "new"}
    response = client_for(org.manager).post(f"{RULES}{rule.pk}/test/", sample, format="json")
    assert response.status_code == 200, response.json()
    data = response.json()
    assert (data["outcome"], data["winner"]) == ("assigned", org.rep2.pk)
    assert "covers no territory" in data["candidates"][0]["excluded"]
    assert not AssignmentDecision.objects.exists()


def test_rep_toggles_own_availability(org, reps, client_for):
    response = client_for(org.rep).post("/api/v1/assignment/availability/", {"available": False}, format="json")
    assert response.status_code == 200
    assert RepProfile.objects.get(user=org.rep).is_available is False


def test_reps_cannot_edit_profiles_and_managers_see_only_their_teams(org, reps, client_for):
    assert client_for(org.rep).get("/api/v1/assignment/profiles/").status_code == 403
    seen = {p["user"] for p in client_for(org.manager).get("/api/v1/assignment/profiles/").json()}
    assert seen == {org.rep.pk, org.rep2.pk}
    south = RepProfile.objects.get(user=org.rep_south)
    assert (
        client_for(org.manager)
        .patch(f"/api/v1/assignment/profiles/{south.pk}/", {"daily_capacity": 1}, format="json")
        .status_code
        == 404
    )
    north = RepProfile.objects.get(user=org.rep)
    response = client_for(org.manager).patch(
        f"/api/v1/assignment/profiles/{north.pk}/", {"working_hours": {"mon": [["9", "18"]]}}, format="json"
    )
    assert response.status_code == 400
    assert "working_hours" in response.json()


def test_decision_history_follows_lead_visibility(org, reps, client_for):
    make_rule(reps=[org.rep])
    lead = LeadFactory.create()
    services.lead_route(lead=lead, trigger=Trigger.NEW)
    url = f"/api/v1/leads/{lead.pk}/assignments/"

    mine = client_for(org.rep).get(url)
    assert mine.status_code == 200
    [decision] = mine.json()
    assert decision["winner"]["id"] == org.rep.pk
    assert decision["outcome"] == "assigned"
    assert decision["candidates"][0]["excluded"] == ""
    assert client_for(org.rep_south).get(url).status_code == 404


def test_manual_rerun_by_a_manager(org, reps, client_for):
    make_rule(reps=[org.rep2])
    lead = LeadFactory.create(owner=org.rep, team=org.north)
    url = f"/api/v1/leads/{lead.pk}/assignments/rerun/"
    assert client_for(org.rep).post(url).status_code == 403
    response = client_for(org.manager).post(url)
    assert response.status_code == 200
    assert response.json()["trigger"] == "manual"
    lead.refresh_from_db()
    assert lead.owner == org.rep2


def test_bulk_reassign_skips_leads_the_manager_cannot_see(org, reps, client_for):
    north = LeadFactory.create(owner=org.rep, team=org.north)
    south = LeadFactory.create(owner=org.rep_south, team=org.south)
    body = {"lead_ids": [north.pk, south.pk], "owner": org.rep2.pk}
    response = client_for(org.manager).post("/api/v1/assignment/bulk-reassign/", body, format="json")
    assert response.status_code == 200
    assert response.json() == {"assigned": 1, "kept": 0, "queued": 0, "unchanged": 0, "not_found": [south.pk]}
    south.refresh_from_db()
    assert south.owner == org.rep_south
    # Someone outside the manager's teams cannot be given leads.
    body = {"lead_ids": [north.pk], "owner": org.rep_south.pk}
    assert client_for(org.manager).post("/api/v1/assignment/bulk-reassign/", body, format="json").status_code == 400
