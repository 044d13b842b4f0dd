"""The server-rendered lead pages: sign-in, list with filters, detail, create/edit, stage change, language."""

from __future__ import annotations

import gettext
import re
import shutil
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from pytest_django import DjangoAssertNumQueries

from leads.models import Lead, LeadStageChange, SourceChannel, Stage, Tag
from tests.conftest import Org
from tests.factories import CampaignFactory, InteractionFactory, LeadFactory
from tests.leads.conftest import KINDS, OTHER_POOL, OTHER_TEAM, OWN, POOL, TEAMMATE, LeadSet
from users.models import User

ROW = 'data-testid="lead-row"'


def signed_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def row_count(html: str) -> int:
    return html.count(ROW)


def valid_lead_post(**overrides: str) -> dict[str, str]:
    data = {"name": "Ada Lovelace", "source": SourceChannel.WEB_FORM, "email": "", "phone": "", "tags": ""}
    data.update(overrides)
    return data


# --- sign-in ----------------------------------------------------------------------------------


@pytest.mark.parametrize("url_name", ["leads:list", "leads:create"])
def test_pages_redirect_anonymous_visitors_to_login(db: None, url_name: str) -> None:
    # given an anonymous visitor
    client = Client()

    # when they open a page
    url = reverse(url_name)
    response = client.get(url)

    # then they are sent to the login page, which will bring them back
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next={url}"


def test_login_form_shows_error_and_keeps_next_then_signs_in(org: Org) -> None:
    # given the login page reached from a deep link
    client = Client()
    login_url = f"{reverse('login')}?next=/leads/?stage=new"

    # when the rep types a wrong password
    response = client.post(login_url, {"username": "rep", "password": "wrong", "next": "/leads/?stage=new"})

    # then the form says so and still remembers where to go
    html = response.content.decode()
    assert response.status_code == 200
    assert "Please enter a correct username and password" in html
    assert 'name="next" value="/leads/?stage=new"' in html

    # when they type the right one
    response = client.post(login_url, {"username": "rep", "password": "pw-for-tests-1", "next": "/leads/?stage=new"})

    # then they land where they were going
    assert response.status_code == 302
    assert response["Location"] == "/leads/?stage=new"


def test_logout_is_a_post_form_that_signs_out(org: Org) -> None:
    # given a signed-in rep
    client = signed_in(org.rep)
    assert f'action="{reverse("logout")}"' in client.get(reverse("leads:list")).content.decode()

    # when they press "Log out"
    response = client.post(reverse("logout"))

    # then they are signed out and pages require login again
    assert response.status_code == 302
    assert client.get(reverse("leads:list")).status_code == 302


# --- list -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "visible"),
    [
        ("rep", {OWN, POOL}),
        ("manager", {OWN, TEAMMATE, POOL}),
        ("admin", set(KINDS)),
        ("marketing", set(KINDS)),
    ],
)
def test_list_shows_only_leads_the_user_may_see(
    org: Org, leads_for: Callable[[User], LeadSet], who: str, visible: set[str]
) -> None:
    # given one lead of every ownership kind around the user
    user = getattr(org, who)
    leads = leads_for(user)

    # when the user opens the list
    html = signed_in(user).get(reverse("leads:list")).content.decode()

    # then exactly the visible ones are listed
    for kind in KINDS:
        assert (leads[kind].name in html) == (kind in visible), kind
    assert row_count(html) == len(visible)


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"q": "  ZHANG  "}, {"Zhang Wei"}),
        ({"q": "li.na@"}, {"Li Na"}),
        ({"stage": [Stage.MQL]}, {"Li Na"}),
        ({"stage": [Stage.MQL, Stage.SQL]}, {"Li Na", "Wang Fang"}),
        ({"source": [SourceChannel.EVENT]}, {"Wang Fang"}),
        ({"q": "zhang", "stage": [Stage.SQL]}, set()),
        ({"score_min": "50"}, {"Li Na", "Wang Fang"}),
        ({"score_min": "50", "score_max": "80"}, {"Li Na"}),
        ({"tag": "vip"}, {"Li Na"}),
        ({"created_after": "2024-02-01"}, {"Li Na", "Wang Fang"}),
        ({"created_before": "2024-02-01"}, {"Zhang Wei"}),
        ({"owner": "null"}, {"Wang Fang"}),
    ],
)
def test_list_filters_narrow_the_results(org: Org, params: dict[str, str | list[str]], expected: set[str]) -> None:
    # given three leads the admin can see
    january, march = datetime(2024, 1, 15, tzinfo=UTC), datetime(2024, 3, 1, tzinfo=UTC)
    LeadFactory.create(
        name="Zhang Wei", email="zw@example.com", stage=Stage.NEW, score=10, created_at=january, owner=org.rep
    )
    li_na = LeadFactory.create(
        name="Li Na",
        email="li.na@example.com",
        stage=Stage.MQL,
        source=SourceChannel.REFERRAL,
        score=60,
        created_at=march,
        owner=org.rep,
    )
    li_na.tags.set([Tag.objects.create(name="vip")])
    LeadFactory.create(
        name="Wang Fang",
        email="wf@example.com",
        stage=Stage.SQL,
        source=SourceChannel.EVENT,
        score=90,
        created_at=march,
    )

    # when the admin filters the list
    html = signed_in(org.admin).get(reverse("leads:list"), params).content.decode()

    # then only the matching leads are listed
    for name in ("Zhang Wei", "Li Na", "Wang Fang"):
        assert (name in html) == (name in expected), name
    assert row_count(html) == len(expected)
    if not expected:
        assert "No leads match these filters." in html


def test_list_filter_form_keeps_the_chosen_values(org: Org) -> None:
    # given a filtered list
    html = (
        signed_in(org.admin)
        .get(reverse("leads:list"), {"q": "acme", "stage": ["mql"], "ordering": "-score"})
        .content.decode()
    )

    # then the form shows what was asked for, so the user can refine it
    assert 'name="q" id="id_q" value="acme"' in html
    assert 'name="stage" value="mql" checked' in html
    assert 'name="stage" value="sql" checked' not in html
    assert '<option value="-score" selected>' in html
    assert '<details class="filters-more">' in html  # only main filters used: the rest stay folded

    # when a filter from under "More filters" is used, that panel is open
    html = signed_in(org.admin).get(reverse("leads:list"), {"score_min": "50"}).content.decode()
    assert '<details class="filters-more" open>' in html
    assert 'name="score_min" value="50"' in html


def test_list_reports_a_bad_filter_value_on_the_form(org: Org) -> None:
    # given two leads
    LeadFactory.create(name="Low Score", score=5)
    LeadFactory.create(name="High Score", score=95)

    # when the admin types a score that is not a number
    html = signed_in(org.admin).get(reverse("leads:list"), {"score_min": "lots"}).content.decode()

    # then the field says what is wrong, its panel is open, and the unfiltered list is shown
    assert re.search(r'id="id_score_min_error"><li>Enter a number\.</li>', html)
    assert '<details class="filters-more" open>' in html
    assert row_count(html) == 2


def test_list_pages_with_keyset_links_that_keep_the_filters(org: Org) -> None:
    # given 55 web-form leads and one from an event
    start = timezone.now() - timedelta(days=1)
    for i in range(55):
        LeadFactory.create(
            name=f"Web lead {i:02d}", source=SourceChannel.WEB_FORM, created_at=start + timedelta(minutes=i)
        )
    LeadFactory.create(name="Event lead", source=SourceChannel.EVENT)
    client = signed_in(org.admin)

    # when the admin lists web-form leads
    first = client.get(reverse("leads:list"), {"source": "web_form"}).content.decode()

    # then the first page holds the 50 newest and links to the next page with the filter kept
    assert row_count(first) == 50
    assert "Web lead 54" in first
    assert "Web lead 04" not in first
    next_href = re.search(r'<a class="btn" rel="next" href="\?([^"]+)"', first)
    assert next_href is not None
    query = next_href.group(1).replace("&amp;", "&")
    assert "source=web_form" in query
    assert 'rel="prev"' not in first

    # when they follow it
    second = client.get(f"{reverse('leads:list')}?{query}").content.decode()

    # then they see the remaining five, no event lead, and a way back
    assert row_count(second) == 5
    assert all(f"Web lead {i:02d}" in second for i in range(5))
    assert "Event lead" not in second
    assert 'rel="prev"' in second
    assert 'rel="next"' not in second


def test_list_query_count_does_not_grow_with_leads(
    org: Org, django_assert_max_num_queries: DjangoAssertNumQueries
) -> None:
    # given 60 leads with owners, teams, campaigns and tags
    campaign = CampaignFactory.create()
    tags = [Tag.objects.create(name=name) for name in ("vip", "expo", "trial")]
    for i in range(60):
        lead = LeadFactory.create(owner=org.rep if i % 2 else org.rep2, team=org.north, campaign=campaign)
        lead.tags.set(tags[: i % 4])
    client = signed_in(org.manager)
    client.get(reverse("leads:list"))  # warm the session and permission caches like a real browsing session

    # when their manager opens the list: a fixed number of queries however many rows (no N+1)
    with django_assert_max_num_queries(12):
        response = client.get(reverse("leads:list"))

    # then a full page is shown
    assert row_count(response.content.decode()) == 50


def test_empty_list_invites_the_first_lead(org: Org) -> None:
    # given no leads
    # when a rep opens the list
    html = signed_in(org.rep).get(reverse("leads:list")).content.decode()

    # then they are told so and offered the form
    assert "No leads yet." in html
    assert reverse("leads:create") in html


# --- detail -----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [OTHER_TEAM, OTHER_POOL, TEAMMATE])
def test_rep_cannot_open_or_change_a_lead_they_may_not_see(
    org: Org, leads_for: Callable[[User], LeadSet], kind: str
) -> None:
    # given a lead the rep may not see
    lead = leads_for(org.rep)[kind]
    client = signed_in(org.rep)

    # when the rep opens it, opens its edit form, or posts a stage change
    detail = client.get(reverse("leads:detail", kwargs={"lead_id": lead.pk}))
    edit = client.get(reverse("leads:edit", kwargs={"lead_id": lead.pk}))
    stage = client.post(reverse("leads:stage", kwargs={"lead_id": lead.pk}), {"stage": Stage.CONTACTED})

    # then every answer is "not found", and nothing changed
    assert (detail.status_code, edit.status_code, stage.status_code) == (404, 404, 404)
    lead.refresh_from_db()
    assert lead.stage == Stage.NEW


def test_detail_shows_fields_attributes_and_timeline_newest_first(org: Org) -> None:
    # given a lead with tags, custom attributes (one awkwardly named "items") and two events
    campaign = CampaignFactory.create(name="Spring Expo")
    lead = LeadFactory.create(
        name="Chen Jing",
        company="Huaxia Tech",
        owner=org.rep,
        team=org.north,
        campaign=campaign,
        utm_source="newsletter",
        attributes={"items": "rack servers", "budget": 50000},
    )
    lead.tags.set([Tag.objects.create(name="vip")])
    now = timezone.now()
    InteractionFactory.create(
        lead=lead, type="page_view", occurred_at=now - timedelta(days=2), properties={"url": "/pricing-old"}
    )
    InteractionFactory.create(
        lead=lead, type="download", occurred_at=now - timedelta(hours=1), properties={"asset": "whitepaper.pdf"}
    )

    # when the owner opens the lead
    html = signed_in(org.rep).get(reverse("leads:detail", kwargs={"lead_id": lead.pk})).content.decode()

    # then every group is there, attributes as a key/value table, newest event first
    assert "Huaxia Tech" in html
    assert "Spring Expo" in html
    assert "newsletter" in html
    assert '<span class="tag">vip</span>' in html
    assert '<th scope="row">items</th><td>rack servers</td>' in html
    assert '<th scope="row">budget</th><td>50000</td>' in html
    assert html.index("whitepaper.pdf") < html.index("/pricing-old")
    assert reverse("leads:edit", kwargs={"lead_id": lead.pk}) in html


def test_name_with_script_is_escaped_on_list_and_detail(org: Org) -> None:
    # given a lead whose name is an XSS attempt
    lead = LeadFactory.create(
        name="<script>alert(1)</script>", company="<b>Evil</b> & Co", owner=org.rep, team=org.north
    )
    client = signed_in(org.rep)

    # when the list and the detail page are rendered
    pages = [
        client.get(reverse("leads:list")).content.decode(),
        client.get(reverse("leads:detail", kwargs={"lead_id": lead.pk})).content.decode(),
    ]

    # then the name is shown as text, never as markup
    for html in pages:
        assert "<script>alert(1)</script>" not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
        assert "<b>Evil</b>" not in html
        assert "&lt;b&gt;Evil&lt;/b&gt; &amp; Co" in html


# --- create / edit ------------------------------------------------------------------------------


def test_create_form_normalizes_email_and_phone(org: Org) -> None:
    # given a rep on the new-lead form
    client = signed_in(org.rep)

    # when they submit messy contact details
    response = client.post(
        reverse("leads:create"),
        valid_lead_post(email="  Ada@Example.COM ", phone="138 0013 8000", tags="vip, expo ,", owner=str(org.rep.pk)),
    )

    # then the lead is stored normalized, owned by the rep's team, and the detail page confirms it
    lead = Lead.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("leads:detail", kwargs={"lead_id": lead.pk})
    assert (lead.email, lead.phone) == ("ada@example.com", "+8613800138000")
    assert (lead.owner, lead.team, lead.created_by) == (org.rep, org.north, org.rep)
    assert sorted(t.name for t in lead.tags.all()) == ["expo", "vip"]
    html = client.get(response["Location"]).content.decode()
    assert "Lead created." in html
    assert "+8613800138000" in html


@pytest.mark.parametrize(("who", "team"), [("rep", "North"), ("manager", "North"), ("marketing", None)])
def test_lead_created_without_owner_goes_to_the_creators_team_pool(org: Org, who: str, team: str | None) -> None:
    # given a user on the new-lead form
    client = signed_in(getattr(org, who))

    # when they leave the owner empty
    response = client.post(reverse("leads:create"), valid_lead_post(owner=""))

    # then the lead waits in their team's pool, and they can open it
    lead = Lead.objects.get()
    assert lead.owner is None
    assert (lead.team.name if lead.team else None) == team
    assert client.get(response["Location"]).status_code == 200


def test_create_form_shows_field_errors_and_creates_nothing(org: Org) -> None:
    # given a rep on the new-lead form
    client = signed_in(org.rep)

    # when they submit a bad phone and a bad e-mail
    response = client.post(reverse("leads:create"), valid_lead_post(email="ada@", phone="12ab"))

    # then the form comes back with an error under each of those fields, keeping what they typed
    html = response.content.decode()
    assert response.status_code == 200
    assert Lead.objects.count() == 0
    assert re.search(r'id="id_phone_error"><li>Enter a valid phone number\.</li>', html)
    assert re.search(r'id="id_email_error"><li>Enter a valid email address\.</li>', html)
    assert 'value="12ab"' in html
    assert 'value="Ada Lovelace"' in html
    assert "Please correct the errors below." in html


def test_create_form_requires_a_name(org: Org) -> None:
    # when a rep submits the form without a name
    response = signed_in(org.rep).post(reverse("leads:create"), valid_lead_post(name="   "))

    # then the name field says it is required and nothing is created
    assert re.search(r'id="id_name_error"><li>This field is required\.</li>', response.content.decode())
    assert Lead.objects.count() == 0


def test_edit_form_saves_changes(org: Org) -> None:
    # given a lead the rep owns
    lead = LeadFactory.create(name="Old Name", company="Old Co", owner=org.rep, team=org.north, phone="")
    client = signed_in(org.rep)
    form = client.get(reverse("leads:edit", kwargs={"lead_id": lead.pk})).content.decode()
    assert 'value="Old Co"' in form

    # when they change the company and add a phone number
    response = client.post(
        reverse("leads:edit", kwargs={"lead_id": lead.pk}),
        valid_lead_post(
            name="New Name", company="New Co", phone="+86 139-0000-0000", email=lead.email, owner=str(org.rep.pk)
        ),
    )

    # then the lead is saved and the detail page shows the change
    lead.refresh_from_db()
    assert response.status_code == 302
    assert (lead.name, lead.company, lead.phone) == ("New Name", "New Co", "+8613900000000")
    html = client.get(response["Location"]).content.decode()
    assert "Lead saved." in html
    assert "New Co" in html


def test_edit_form_with_bad_phone_keeps_the_lead_unchanged(org: Org) -> None:
    # given a lead the rep owns
    lead = LeadFactory.create(name="Keep Me", owner=org.rep, team=org.north)

    # when they save a bad phone number along with a new name
    response = signed_in(org.rep).post(
        reverse("leads:edit", kwargs={"lead_id": lead.pk}), valid_lead_post(name="Changed", phone="not a phone")
    )

    # then the error is shown and nothing was saved
    assert re.search(r'id="id_phone_error"><li>Enter a valid phone number\.</li>', response.content.decode())
    lead.refresh_from_db()
    assert lead.name == "Keep Me"


# --- stage ------------------------------------------------------------------------------------


def test_stage_change_records_history_and_stamps_lifecycle_times(org: Org) -> None:
    # given a new lead owned by the rep
    lead = LeadFactory.create(owner=org.rep, team=org.north)
    client = signed_in(org.rep)
    url = reverse("leads:stage", kwargs={"lead_id": lead.pk})

    # when the rep marks it contacted, then MQL
    client.post(url, {"stage": Stage.CONTACTED, "reason": "Called, interested"})
    response = client.post(url, {"stage": Stage.MQL})

    # then each move is in the history with who made it, and the first time of each stage is stamped
    lead.refresh_from_db()
    assert lead.stage == Stage.MQL
    assert lead.first_contacted_at is not None
    assert lead.mql_at is not None
    assert lead.first_contacted_at <= lead.mql_at
    history = list(
        LeadStageChange.objects.filter(lead=lead)
        .order_by("changed_at", "id")
        .values_list("from_stage", "to_stage", "changed_by")
    )
    assert history == [(Stage.NEW, Stage.CONTACTED, org.rep.pk), (Stage.CONTACTED, Stage.MQL, org.rep.pk)]
    html = client.get(response["Location"]).content.decode()
    assert "Stage changed." in html
    assert "Contacted → Marketing qualified" in html
    assert "Called, interested" in html


def test_stage_change_to_lost_needs_a_reason(org: Org) -> None:
    # given a lead owned by the rep
    lead = LeadFactory.create(owner=org.rep, team=org.north)
    client = signed_in(org.rep)

    # when they mark it lost without saying why
    response = client.post(reverse("leads:stage", kwargs={"lead_id": lead.pk}), {"stage": Stage.LOST}, follow=True)

    # then they are told to give a reason and the lead is unchanged
    assert "Say why the lead is lost." in response.content.decode()
    lead.refresh_from_db()
    assert lead.stage == Stage.NEW
    assert lead.lost_at is None


def test_stage_change_error_keeps_the_form_open_with_the_error_under_the_reason(org: Org) -> None:
    # given a lead owned by the rep
    lead = LeadFactory.create(owner=org.rep, team=org.north)

    # when they mark it lost with only blanks as the reason
    response = signed_in(org.rep).post(
        reverse("leads:stage", kwargs={"lead_id": lead.pk}), {"stage": Stage.LOST, "reason": "   "}
    )

    # then the lead page comes back with the stage form open, "lost" still chosen and the error by the reason
    assert response.status_code == 400
    html = response.content.decode()
    assert '<details class="stage-other" open>' in html
    assert '<option value="lost" selected>' in html
    assert re.search(
        r'<label for="id_reason">[^<]*</label>\s*<ul class="errorlist"[^>]*><li>Say why the lead is lost.', html
    )


@pytest.mark.parametrize("url_name", ["leads:import_list", "leads:webform_list", "leads:pipeline_status"])
def test_a_page_the_role_may_not_open_says_so_inside_the_layout(org: Org, url_name: str) -> None:
    # when a rep opens a page their role does not give them
    response = signed_in(org.rep).get(reverse(url_name))

    # then they get a 403 in the site's layout, with a way back, not a bare English error
    assert response.status_code == 403
    html = response.content.decode()
    assert 'data-testid="error-page"' in html
    assert f'href="{reverse("leads:list")}"' in html


# --- language ---------------------------------------------------------------------------------


def test_language_switch_is_saved_on_the_user_and_renders_chinese(org: Org) -> None:
    # given a rep reading the English list
    client = signed_in(org.rep)
    assert "New lead" in client.get(reverse("leads:list")).content.decode()

    # when they switch to Simplified Chinese
    response = client.post(reverse("language_set"), {"language": "zh-hans", "next": "/leads/?stage=new"})

    # then the choice is stored on their account and they return to the page they were on, in Chinese
    org.rep.refresh_from_db()
    assert org.rep.language == "zh-hans"
    assert response["Location"] == "/leads/?stage=new"
    html = client.get(response["Location"]).content.decode()
    assert '<html lang="zh-hans">' in html
    assert "新建线索" in html
    assert "New lead" not in html

    # and it follows them to a fresh browser session
    html = signed_in(org.rep).get(reverse("leads:list")).content.decode()
    assert "新建线索" in html


# --- translations -----------------------------------------------------------------------------

CATALOG = Path(settings.BASE_DIR) / "locale" / "zh_Hans" / "LC_MESSAGES"


@pytest.mark.skipif(shutil.which("msgfmt") is None or shutil.which("msgattrib") is None, reason="needs GNU gettext")
def test_chinese_catalog_is_fully_translated_and_compiled(tmp_path: Path) -> None:
    # given the shipped Simplified Chinese catalog
    po = CATALOG / "django.po"

    # then no message is left untranslated or fuzzy (a fuzzy one would silently show English)
    for selection in ("--untranslated", "--only-fuzzy"):
        leftovers = subprocess.run(
            ["msgattrib", selection, "--no-obsolete", str(po)], capture_output=True, text=True, check=True
        ).stdout
        assert "msgid" not in leftovers, leftovers

    # and the committed .mo is what compiling the .po gives (nobody forgot compilemessages)
    fresh = tmp_path / "django.mo"
    subprocess.run(["msgfmt", "--check", "-o", str(fresh), str(po)], check=True)
    with fresh.open("rb") as compiled, (CATALOG / "django.mo").open("rb") as shipped:
        assert gettext.GNUTranslations(shipped)._catalog == gettext.GNUTranslations(compiled)._catalog  # type: ignore[attr-defined]


def test_owner_and_team_filters_offer_only_what_a_rep_may_see(org: Org) -> None:
    html = signed_in(org.rep).get(reverse("leads:list")).content.decode()

    owner_select = re.search(r'<select name="owner".*?</select>', html, re.S)
    team_select = re.search(r'<select name="team".*?</select>', html, re.S)
    assert owner_select is not None
    assert team_select is not None
    assert "rep2" in owner_select.group(0)  # a teammate
    assert "rep_south" not in owner_select.group(0)
    assert "marketing" not in owner_select.group(0)
    assert "North" in team_select.group(0)
    assert "South" not in team_select.group(0)


def test_merge_page_says_what_moved_and_what_was_filled_in_words(org: Org) -> None:
    # given two leads of the manager's team, the duplicate with a call and a phone the kept lead lacks
    from leads.services import lead_merge

    kept = LeadFactory.create(name="Li Na", phone="", owner=org.rep, team=org.north)
    duplicate = LeadFactory.create(name="Li Na", phone="+8613800138000", owner=org.rep, team=org.north)
    InteractionFactory.create(lead=duplicate)
    merge = lead_merge(primary=kept, duplicate=duplicate, by=org.manager)

    # when the manager opens the merge record
    html = signed_in(org.manager).get(reverse("leads:merge_detail", kwargs={"merge_id": merge.pk})).content.decode()

    # then moved records and filled fields are named in words, not by their internal keys
    assert "Activities: 1" in html
    assert "Phone = +8613800138000" in html
    assert "interactions:" not in html
    assert "form_submissions" not in html


def test_detail_explains_the_score_and_charts_its_history(org: Org) -> None:
    from leads import services as lead_services

    # given a lead with a senior title that requested a demo and viewed pricing, scored twice
    lead = LeadFactory.create(owner=org.rep, team=org.north, job_title="Sales Director")
    now = timezone.now()
    InteractionFactory.create(lead=lead, type="pricing_page_view", occurred_at=now - timedelta(days=1))
    lead_services.leads_mark_dirty(lead_ids=[lead.pk])
    lead_services.pipeline_process_dirty()
    InteractionFactory.create(lead=lead, type="demo_request", occurred_at=now)
    lead_services.leads_mark_dirty(lead_ids=[lead.pk])
    lead_services.pipeline_process_dirty()
    lead.refresh_from_db()

    html = signed_in(org.rep).get(reverse("leads:detail", args=[lead.pk])).content.decode()

    # then the page lists why (one line per rule that fired) and draws the two scores
    assert "Why this score" in html
    breakdown = re.search(r'<ul class="score-breakdown">(.*?)</ul>', html, re.S)
    assert breakdown is not None
    assert "Director" in breakdown.group(1) or "title" in breakdown.group(1)
    assert breakdown.group(1).count("<li") >= 3  # title, pricing page, demo request
    chart = re.search(r'<polyline [^>]*points="([^"]+)"', html)
    assert chart is not None
    assert len(chart.group(1).split()) == 2
    assert f"to {lead.score} over 2 changes" in html


def test_detail_of_an_unscored_lead_has_no_breakdown(org: Org) -> None:
    lead = LeadFactory.create(owner=org.rep, team=org.north)
    html = signed_in(org.rep).get(reverse("leads:detail", args=[lead.pk])).content.decode()
    assert "Why this score" not in html
    assert "<polyline" not in html
