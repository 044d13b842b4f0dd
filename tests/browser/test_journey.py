"""A sales rep's first minutes in a real browser: sign in, search, open a lead, switch to Chinese."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest
from django.urls import reverse

from tests.conftest import Org
from tests.factories import LeadFactory
from users.models import User

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.browser

PASSWORD = "pw-for-tests-1"  # the password tests.factories.make_user gives everyone


def sign_in(page: Page, user: User) -> None:
    """Open the list, get sent to the login form, fill it in, and land back on the list."""
    from playwright.sync_api import expect

    page.goto(reverse("leads:list"))
    expect(page).to_have_url(re.compile(r"/login/\?next="))
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page).to_have_url(re.compile(r"/leads/$"))


@pytest.fixture
def leads(org: Org) -> dict[str, object]:
    return {
        "own": LeadFactory.create(name="Aster Zhou", company="Lotus Robotics", owner=org.rep, team=org.north),
        "own_other": LeadFactory.create(name="Birch Wu", company="Maple Foods", owner=org.rep, team=org.north),
        "pool": LeadFactory.create(name="Cedar Lin", company="Pine Labs", owner=None, team=org.north),
        "south": LeadFactory.create(name="Dahlia Sun", company="Southern Star", owner=org.rep_south, team=org.south),
    }


def test_rep_signs_in_searches_and_opens_a_lead(page: Page, org: Org, leads: dict[str, object]) -> None:
    from playwright.sync_api import expect

    # given a rep who signs in through the login form
    sign_in(page, org.rep)
    rows = page.get_by_test_id("lead-row")
    expect(rows).to_have_count(3)  # own two + the team pool

    # when they search for one lead by part of its name
    page.get_by_role("searchbox", name="Search").fill("aster")
    page.get_by_role("button", name="Filter", exact=True).click()

    # then exactly that lead is listed
    expect(page).to_have_url(re.compile(r"q=aster"))
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Aster Zhou")
    expect(rows.first).to_contain_text("Lotus Robotics")

    # when they open it
    rows.first.get_by_role("link", name="Aster Zhou").click()

    # then they see its detail page
    expect(page.get_by_role("heading", level=1)).to_have_text("Aster Zhou")
    detail = page.get_by_test_id("lead-detail")
    expect(detail).to_contain_text("Lotus Robotics")
    expect(detail).to_contain_text("New")
    expect(page.get_by_role("region", name="Ownership")).to_contain_text(str(org.rep))


def test_rep_switches_the_interface_to_chinese(page: Page, org: Org, leads: dict[str, object]) -> None:
    from playwright.sync_api import expect

    # given a signed-in rep reading English
    sign_in(page, org.rep)
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="New lead")).to_be_visible()

    # when they choose 简体中文 in the language switcher
    page.get_by_label("Language").select_option("zh-hans")
    page.get_by_role("button", name="Switch").click()

    # then the page comes back in Chinese, and stays so on the next page
    expect(page.locator("html")).to_have_attribute("lang", "zh-hans")
    expect(page.get_by_role("link", name="新建线索").first).to_be_visible()
    expect(page.get_by_role("heading", level=1)).to_have_text("线索")
    page.get_by_role("link", name="Aster Zhou").click()
    expect(page.get_by_role("heading", name="联系方式")).to_be_visible()


def test_rep_cannot_find_another_teams_lead(page: Page, org: Org, leads: dict[str, object]) -> None:
    from playwright.sync_api import expect

    # given a signed-in rep of the North team
    sign_in(page, org.rep)

    # when they search for a lead that belongs to the South team
    page.get_by_role("searchbox", name="Search").fill("Dahlia")
    page.get_by_role("button", name="Filter", exact=True).click()

    # then nothing is listed and the page says so
    expect(page.get_by_test_id("lead-row")).to_have_count(0)
    expect(page.get_by_test_id("lead-empty")).to_contain_text("No leads match these filters.")
    expect(page.get_by_text("Dahlia Sun")).to_have_count(0)
