"""Assignment pages: managers order, switch and test rules; reps switch availability; the lead page shows decisions."""

from __future__ import annotations

import pytest
from django.test import Client

from assignment import services
from assignment.models import AssignmentDecision, AssignmentRule, RepProfile, Trigger
from tests.assignment.conftest import make_rule
from tests.factories import LeadFactory

pytestmark = pytest.mark.django_db


def _browser(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_manager_reorders_and_switches_rules(org, reps):
    first, second = make_rule("First"), make_rule("Second")
    browser = _browser(org.manager)
    response = browser.get("/assignment/")
    assert response.status_code == 200
    page = response.content.decode()
    assert page.index("First") < page.index("Second")

    browser.post(f"/assignment/rules/{second.pk}/move/up/")
    page = browser.get("/assignment/").content.decode()
    assert page.index("Second") < page.index("First")

    browser.post(f"/assignment/rules/{first.pk}/toggle/")
    first.refresh_from_db()
    assert not first.is_enabled


def test_manager_tests_the_rules_on_a_made_up_lead(org, reps):
    east = RepProfile.objects.get(user=org.rep2)
    east.territories = ["East"]
    services.profile_save(profile=east)
    make_rule("By region", strategy="territory", reps=[org.rep, org.rep2])
    page = _browser(org.manager).get("/assignment/", {"region": "East", "score": "70"}).content.decode()
    assert 'data-testid="rule-test-result"' in page
    assert "By region → rep2" in page
    assert "covers no territory" in page


def test_reps_cannot_open_the_rules_page_but_switch_their_availability(org, reps):
    browser = _browser(org.rep)
    assert browser.get("/assignment/").status_code == 403
    assert browser.post(f"/assignment/rules/{make_rule().pk}/toggle/").status_code == 403
    assert AssignmentRule.objects.get().is_enabled
    assert "You are receiving new leads." in browser.get("/assignment/me/").content.decode()
    browser.post("/assignment/me/", {"available": "0"})
    assert RepProfile.objects.get(user=org.rep).is_available is False
    assert "You are not receiving new leads." in browser.get("/assignment/me/").content.decode()


def test_lead_page_shows_the_decision_with_its_candidates(org, reps):
    make_rule("North in turn", reps=[org.rep, org.rep2])
    lead = LeadFactory.create()
    services.lead_route(lead=lead, trigger=Trigger.NEW)
    page = _browser(org.rep).get(f"/leads/{lead.pk}/").content.decode()
    assert 'data-testid="lead-assignments"' in page
    assert "North in turn → rep" in page
    assert 'data-testid="winner-row"' in page


def test_manager_creates_a_rule_in_the_browser_with_field_errors_first(org, reps):
    browser = _browser(org.manager)
    assert browser.get("/assignment/rules/new/").status_code == 200

    bad = browser.post(
        "/assignment/rules/new/",
        {"name": "Shanghai", "position": "1", "is_enabled": "on", "conditions": '[{"field": "nope"}]',
         "triggers": ["new"], "pool": "reps", "pool_reps": [org.rep.pk], "strategy": "round_robin",
         "options": '{"typo": 1}', "save": "1"},
    )  # fmt: skip
    assert bad.status_code == 200
    page = bad.content.decode()
    assert "Unknown option" in page
    assert not AssignmentRule.objects.exists()

    good = browser.post(
        "/assignment/rules/new/",
        {"name": "Shanghai", "position": "1", "is_enabled": "on",
         "conditions": '[{"field": "region", "operator": "equals", "value": "Shanghai"}]',
         "triggers": ["new", "manual"], "pool": "reps", "pool_reps": [org.rep.pk, org.rep2.pk],
         "strategy": "round_robin", "options": "{}", "save": "1"},
    )  # fmt: skip
    assert good.status_code == 302
    rule = AssignmentRule.objects.get()
    assert (rule.triggers, set(rule.pool_reps.values_list("pk", flat=True))) == (
        ["new", "manual"],
        {org.rep.pk, org.rep2.pk},
    )
    assert rule.conditions[0]["value"] == "Shanghai"


def test_a_dry_run_shows_who_would_receive_what_and_saves_nothing(org, reps):
    for _ in range(4):
        LeadFactory.create(team=org.north, region="Shanghai")
    browser = _browser(org.manager)
    response = browser.post(
        "/assignment/rules/new/",
        {"name": "Draft", "position": "1", "is_enabled": "on", "conditions": "[]", "triggers": ["new"],
         "pool": "reps", "pool_reps": [org.rep.pk, org.rep2.pk], "strategy": "round_robin", "options": "{}",
         "days": "7", "dry_run": "1"},
    )  # fmt: skip
    page = response.content.decode()
    assert 'data-testid="dry-run-result"' in page
    # Round-robin over two reps: two leads each, and nothing saved.
    assert f'<th scope="row">{org.rep.username}</th><td class="num">2</td>' in page
    assert f'<th scope="row">{org.rep2.username}</th><td class="num">2</td>' in page
    assert not AssignmentRule.objects.exists()


def test_reps_cannot_open_the_rule_form(org, reps):
    assert _browser(org.rep).get("/assignment/rules/new/").status_code == 403


def test_a_manager_reruns_the_rules_for_one_lead_from_its_page(org, reps):
    make_rule("North", reps=[org.rep2])
    lead = LeadFactory.create(team=org.north, owner=org.rep)
    manager = _browser(org.manager)
    assert 'data-testid="rerun-rules"' in manager.get(f"/leads/{lead.pk}/").content.decode()
    assert 'data-testid="rerun-rules"' not in _browser(org.rep).get(f"/leads/{lead.pk}/").content.decode()

    response = manager.post(f"/assignment/leads/{lead.pk}/rerun/")

    assert response.status_code == 302
    lead.refresh_from_db()
    assert lead.owner == org.rep2
    decision = AssignmentDecision.objects.get(lead=lead)
    assert (decision.trigger, decision.decided_by) == (Trigger.MANUAL, org.manager)
    assert _browser(org.rep).post(f"/assignment/leads/{lead.pk}/rerun/").status_code == 403


def test_a_manager_moves_a_leaving_reps_open_leads(org, reps):
    open_leads = [LeadFactory.create(team=org.north, owner=org.rep) for _ in range(3)]
    won = LeadFactory.create(team=org.north, owner=org.rep, stage="converted")
    manager = _browser(org.manager)
    assert manager.get("/assignment/reassign/").status_code == 200

    same = manager.post("/assignment/reassign/", {"from_owner": org.rep.pk, "to_owner": org.rep.pk})
    assert "Choose someone else" in same.content.decode()

    response = manager.post("/assignment/reassign/", {"from_owner": org.rep.pk, "to_owner": org.rep2.pk})

    assert response.status_code == 302
    for lead in open_leads:
        lead.refresh_from_db()
        assert lead.owner == org.rep2
    won.refresh_from_db()
    assert won.owner == org.rep  # closed leads stay with whoever won or lost them
    assert _browser(org.rep).get("/assignment/reassign/").status_code == 403
