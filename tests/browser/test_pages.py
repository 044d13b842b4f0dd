"""Page defects found in the browser review: field errors next to their field, help text shown as typed."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest
from django.urls import reverse

from leads.models import Stage
from tests.conftest import Org
from tests.factories import LeadFactory
from users.models import User

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.browser

PASSWORD = "pw-for-tests-1"  # the password tests.factories.make_user gives everyone


def sign_in(page: Page, user: User, next_url: str) -> None:
    from playwright.sync_api import expect

    page.goto(f"{reverse('login')}?next={next_url}")
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page).to_have_url(re.compile(re.escape(next_url) + "$"))


def test_losing_a_lead_without_a_reason_shows_the_error_under_the_reason_field(page: Page, org: Org) -> None:
    from playwright.sync_api import expect

    # given a rep on their lead's page, with the "Other stage…" form open
    lead = LeadFactory.create(name="Aster Zhou", owner=org.rep, team=org.north)
    sign_in(page, org.rep, reverse("leads:detail", kwargs={"lead_id": lead.pk}))
    page.get_by_text("Other stage…").click()
    stage_form = page.get_by_test_id("stage-form")

    # when they choose "lost" and submit without a reason
    stage_form.get_by_label("Stage").select_option(Stage.LOST)
    stage_form.get_by_role("button", name="Change stage").click()

    # then the form is still open with their choice, and the error sits next to the reason field
    expect(stage_form).to_be_visible()
    expect(stage_form.get_by_label("Stage")).to_have_value(Stage.LOST)
    reason_box = stage_form.locator(".field", has=page.get_by_label("Reason"))
    expect(reason_box).to_contain_text("Say why the lead is lost.")
    lead.refresh_from_db()
    assert lead.stage != Stage.LOST


def test_web_form_help_text_shows_angle_brackets_as_typed(page: Page, org: Org) -> None:
    from playwright.sync_api import expect

    # given marketing on the new web form page
    sign_in(page, org.marketing, reverse("leads:webform_create"))

    # then the field-mapping help names the "attr:<key>" target literally instead of swallowing it as a tag
    expect(page.locator("#id_field_mapping_helptext")).to_contain_text("attr:<key>")
