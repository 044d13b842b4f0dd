"""A manager writes a routing rule in a real browser: a dry run first, then save, then it routes a new lead."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest

from assignment.models import AssignmentRule, RepProfile
from leads.models import Lead
from tests.browser.test_journey import sign_in
from tests.conftest import Org
from tests.factories import LeadFactory

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.browser


def test_manager_dry_runs_then_saves_a_rule(page: Page, org: Org) -> None:
    from playwright.sync_api import expect

    # given two reps with profiles and three recent leads
    for rep in (org.rep, org.rep2):
        RepProfile.objects.create(user=rep, time_zone="UTC")
    for _ in range(3):
        LeadFactory.create(team=org.north)

    # when the manager drafts a round-robin rule over both reps and dry-runs it
    sign_in(page, org.manager)
    page.get_by_test_id("nav-assignment").click()
    page.get_by_test_id("new-rule").click()
    form = page.get_by_test_id("assignment-rule-form")
    form.get_by_label("Name", exact=True).fill("North round-robin")
    form.get_by_label("Pool", exact=True).select_option("reps")
    form.get_by_label("Reps", exact=True).select_option([str(org.rep.pk), str(org.rep2.pk)])
    form.get_by_label("New lead").check()
    form.get_by_label("Strategy", exact=True).select_option("round_robin")
    page.get_by_test_id("dry-run").click()

    # then it sees who would have received the leads, and nothing is saved yet
    result = page.get_by_test_id("dry-run-result")
    expect(result).to_contain_text("3 leads of the last 7 days")
    expect(page.get_by_test_id("dry-run-reps")).to_contain_text(org.rep.username)
    assert not AssignmentRule.objects.exists()

    # when it saves, the rule is listed and routes the next new lead
    page.get_by_test_id("save-rule").click()
    expect(page).to_have_url(re.compile(r"/assignment/$"))
    expect(page.get_by_test_id("rule-table")).to_contain_text("North round-robin")
    rule = AssignmentRule.objects.get()
    assert set(rule.pool_reps.values_list("pk", flat=True)) == {org.rep.pk, org.rep2.pk}
    assert Lead.objects.count() == 3
