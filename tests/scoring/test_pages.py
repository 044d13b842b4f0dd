"""The scoring pages: versions, the rule editor for a draft, preview and apply; who may; escaping."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from leads import services as lead_services
from leads.models import Lead
from scoring.models import RescoreJob, ScoringRule, ScoringRuleSet
from tests.conftest import Org
from tests.factories import InteractionFactory, LeadFactory
from users.models import User

pytestmark = pytest.mark.django_db


def signed_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def active() -> ScoringRuleSet:
    return ScoringRuleSet.objects.get(is_active=True)


def test_a_rep_has_no_scoring_pages(org: Org) -> None:
    assert signed_in(org.rep).get("/scoring/").status_code == 403
    assert signed_in(org.rep).post(f"/scoring/{active().pk}/copy/").status_code == 403


def test_marketing_copies_edits_and_sees_field_errors(org: Org) -> None:
    client = signed_in(org.marketing)
    listing = client.get("/scoring/")
    assert listing.status_code == 200
    assert f"v{active().version}".encode() in listing.content

    copied = client.post(f"/scoring/{active().pk}/copy/")
    draft = ScoringRuleSet.objects.get(version=active().version + 1)
    assert copied["Location"] == f"/scoring/{draft.pk}/"

    bad = client.post(
        f"/scoring/{draft.pk}/rules/new/",
        {"kind": "fit", "name": "x", "points": "5", "position": "1", "field": "no_such_field", "operator": "regex",
         "value": '"("'},
    )  # fmt: skip
    assert bad.status_code == 200
    assert "No lead field is called" in bad.content.decode()
    assert "Not a valid regular expression." in bad.content.decode()

    good = client.post(
        f"/scoring/{draft.pk}/rules/new/",
        {"kind": "fit", "name": "<script>alert(1)</script>", "points": "12", "position": "99", "is_active": "on",
         "field": "attr.plan", "operator": "equals", "value": '"enterprise"', "event_filters": ""},
    )  # fmt: skip
    assert good.status_code == 302
    rule = draft.rules.get(position=99)
    assert (rule.field, rule.value, rule.points) == ("attr.plan", "enterprise", 12)
    page = client.get(f"/scoring/{draft.pk}/").content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script>alert(1)" not in page

    thresholds = client.post(
        f"/scoring/{draft.pk}/",
        {"name": "Sharper", "half_life_days": "30", "mql_threshold": "90", "sql_threshold": "80", "notes": ""},
    )
    assert "The SQL threshold cannot be below the MQL threshold." in thresholds.content.decode()
    assert ScoringRuleSet.objects.get(pk=draft.pk).mql_threshold == 50


def test_preview_shows_the_figures_and_apply_activates(org: Org, django_capture_on_commit_callbacks: Any) -> None:
    lead = LeadFactory.create(owner=org.rep, team=org.north, attributes={"plan": "enterprise"})
    InteractionFactory.create(lead=lead, type="form_submit")
    lead_services.leads_mark_dirty(lead_ids=[lead.pk])
    lead_services.pipeline_process_dirty()
    client = signed_in(org.manager)
    client.post(f"/scoring/{active().pk}/copy/")
    draft = ScoringRuleSet.objects.get(version=active().version + 1)
    ScoringRule.objects.create(
        rule_set=draft, kind="fit", points=15, field="attr.plan", operator="equals", value="enterprise"
    )

    with django_capture_on_commit_callbacks(execute=True):
        preview = client.post(f"/scoring/{draft.pk}/preview/")
    job = RescoreJob.objects.get()
    assert preview["Location"] == f"/scoring/jobs/{job.pk}/"
    page = client.get(preview["Location"]).content.decode()
    assert 'data-testid="changed-scores">1<' in page
    assert not ScoringRuleSet.objects.get(pk=draft.pk).is_active

    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/scoring/{draft.pk}/apply/")
    assert ScoringRuleSet.objects.get(pk=draft.pk).is_active
    assert Lead.objects.get(pk=lead.pk).score == 25  # +10 form submit, +15 enterprise plan

    # An applied version is shown read-only and refuses edits.
    detail = client.get(f"/scoring/{draft.pk}/").content.decode()
    assert 'data-testid="add-rule"' not in detail
    rule = draft.rules.first()
    assert rule is not None
    refused = client.post(f"/scoring/{draft.pk}/rules/{rule.pk}/delete/")
    assert refused.status_code == 302
    assert ScoringRule.objects.filter(pk=rule.pk).exists()
