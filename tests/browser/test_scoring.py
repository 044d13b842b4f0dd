"""A marketer changes the scoring rules in a real browser: copy, add a rule, preview the effect, apply it."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest

from leads import services as lead_services
from leads.models import Lead
from scoring.models import ScoringRuleSet
from tests.browser.test_journey import sign_in
from tests.conftest import Org
from tests.factories import InteractionFactory, LeadFactory

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.browser


def test_marketer_previews_then_applies_a_new_rule(page: Page, org: Org) -> None:
    from playwright.sync_api import expect

    # given two leads scored by the active rules, one on an enterprise plan
    enterprise = LeadFactory.create(owner=org.rep, team=org.north, attributes={"plan": "enterprise"})
    other = LeadFactory.create(owner=org.rep, team=org.north, attributes={"plan": "free"})
    for lead in (enterprise, other):
        InteractionFactory.create(lead=lead, type="form_submit")
    lead_services.leads_mark_dirty(lead_ids=[enterprise.pk, other.pk])
    lead_services.pipeline_process_dirty()
    active_version = ScoringRuleSet.objects.get(is_active=True).version

    # when a marketer copies the active version and adds "+15 enterprise plan"
    sign_in(page, org.marketing)
    page.get_by_test_id("nav-scoring").click()
    page.get_by_role("button", name="Copy as a draft").first.click()
    expect(page.get_by_test_id("rule-set-status")).to_contain_text("Draft")
    page.get_by_test_id("add-rule").click()
    form = page.get_by_test_id("rule-form")
    form.get_by_label("Kind").select_option("fit")
    form.get_by_label("Reason shown").fill("Enterprise plan")
    form.get_by_label("Points").fill("15")
    form.get_by_label("Field").fill("attr.plan")
    form.get_by_label("Operator").select_option("equals")
    form.get_by_label("Value").fill('"enterprise"')
    form.get_by_role("button", name="Save rule").click()
    expect(page.get_by_test_id("rules")).to_contain_text("Enterprise plan")

    # and previews it: one lead would change, nothing is written yet
    page.get_by_test_id("preview-button").click()
    expect(page).to_have_url(re.compile(r"/scoring/jobs/\d+/$"))
    expect(page.get_by_test_id("rescore-status")).to_have_text("Done")
    expect(page.get_by_test_id("changed-scores")).to_have_text("1")
    assert Lead.objects.get(pk=enterprise.pk).score == 10

    # then applying it makes the version active and rescores the lead
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_test_id("apply-button").click()
    expect(page.get_by_test_id("rescore-status")).to_have_text("Done")
    assert ScoringRuleSet.objects.get(is_active=True).version == active_version + 1
    assert Lead.objects.get(pk=enterprise.pk).score == 25
    assert Lead.objects.get(pk=other.pk).score == 10
