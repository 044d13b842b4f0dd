"""A rep tracks a lead in a real browser: logs a call in two clicks, adds a follow-up, finds it in My tasks."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest
from django.urls import reverse

from leads.models import Interaction, Lead, Stage, Task
from tests.browser.test_journey import sign_in
from tests.conftest import Org
from tests.factories import LeadFactory

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.browser


@pytest.fixture
def lead(org: Org) -> Lead:
    return LeadFactory.create(name="Aster Zhou", company="Lotus Robotics", owner=org.rep, team=org.north)


def test_rep_logs_a_call_in_two_clicks(page: Page, org: Org, lead: Lead) -> None:
    from playwright.sync_api import expect

    # given the rep on their new lead's page
    sign_in(page, org.rep)
    page.goto(reverse("leads:detail", kwargs={"lead_id": lead.pk}))
    expect(page.locator(".lead-badges .badge").first).to_have_text("New")

    # when they click "Log call" and then "Save" (the note is optional)
    page.get_by_text("Log call", exact=True).click()
    call_form = page.get_by_test_id("log-call")
    call_form.get_by_role("button", name="Save").click()

    # then the call is at the top of the timeline and the lead has moved to contacted
    expect(page.get_by_role("listitem").filter(has_text="Call logged.")).to_be_visible()
    first_entry = page.get_by_test_id("timeline-entry").first
    expect(first_entry).to_contain_text("Call")
    expect(first_entry).to_contain_text(org.rep.username)
    expect(page.locator(".lead-badges .badge").first).to_have_text("Contacted")
    lead.refresh_from_db()
    assert lead.stage == Stage.CONTACTED
    assert Interaction.objects.filter(lead=lead, type="call").count() == 1


def test_rep_adds_a_follow_up_and_finds_it_in_my_tasks(page: Page, org: Org, lead: Lead) -> None:
    from playwright.sync_api import expect

    # given the rep on the lead's page
    sign_in(page, org.rep)
    page.goto(reverse("leads:detail", kwargs={"lead_id": lead.pk}))

    # when they open "Add follow-up", fill it in and submit
    page.get_by_text("Add follow-up", exact=True).first.click()
    form = page.get_by_test_id("task-add")
    form.get_by_label("Follow-up").fill("Send the quote to 王总")
    form.get_by_label("Kind").select_option("email")
    form.get_by_label("Due").fill("2030-05-01T10:30")
    form.get_by_role("button", name="Add follow-up").click()

    # then it is listed on the lead, and in My tasks (linked from the nav) with the lead's name
    expect(page.get_by_test_id("lead-tasks")).to_contain_text("Send the quote to 王总")
    page.get_by_test_id("nav-tasks").click()
    expect(page).to_have_url(re.compile(r"/tasks/$"))
    row = page.get_by_test_id("task-row").filter(has_text="Send the quote to 王总")
    expect(row).to_contain_text("Aster Zhou")

    # when they mark it done there, then it leaves the list
    row.get_by_role("button", name="Mark done").click()
    expect(page.get_by_test_id("task-row")).to_have_count(0)
    assert Task.objects.get().done_at is not None
