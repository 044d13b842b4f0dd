"""Pages for collecting leads: web forms with their snippet, the quarantine, duplicates, merge and undo."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from leads.models import FormSubmission, Lead, LeadMerge, SubmissionStatus, WebForm
from leads.services import webform_create
from tests.conftest import Org
from tests.factories import LeadFactory
from users.models import User

XSS = '<script>alert("x")</script>'


def signed_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture(autouse=True)
def _fresh_throttles() -> None:
    cache.clear()


@pytest.fixture
def webform(org: Org) -> WebForm:
    return webform_create(
        created_by=org.marketing, name="Contact", slug="contact", field_mapping={"full_name": "name", "mail": "email"}
    )


def test_marketing_creates_a_form_from_the_page_and_gets_an_escaped_snippet(org: Org) -> None:
    client = signed_in(org.marketing)

    response = client.post(
        reverse("leads:webform_create"),
        {
            "name": XSS,
            "slug": "spring",
            "field_mapping": "full_name = name\nmail = email\nsize = attr:company_size",
            "default_source": "web_form",
            "default_tags": "spring, web",
            "allowed_origins": "https://www.example.com/",
            "honeypot_field": "website_url",
            "rate_limit_per_minute": "30",
            "is_active": "on",
        },
        follow=True,
    )

    form = WebForm.objects.get(slug="spring")
    assert form.field_mapping == {"full_name": "name", "mail": "email", "size": "attr:company_size"}
    assert form.allowed_origins == ["https://www.example.com"]
    assert form.default_tags == ["spring", "web"]
    html = response.content.decode()
    assert XSS not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html
    snippet = html.split('data-testid="embed-snippet"')[1].split("</pre>")[0]
    assert (
        "&lt;form method=&quot;post&quot; action=&quot;http://testserver/api/v1/forms/spring/submit/&quot;&gt;"
        in snippet
    )
    assert "name=&quot;website_url&quot;" in snippet  # the honeypot, hidden in the snippet


def test_bad_mapping_lines_are_shown_on_the_form(org: Org) -> None:
    response = signed_in(org.marketing).post(
        reverse("leads:webform_create"),
        {"name": "F", "slug": "f", "field_mapping": "just a line\nx = salary", "default_source": "web_form",
         "honeypot_field": "website_url", "rate_limit_per_minute": "30"},
    )  # fmt: skip

    html = response.content.decode()
    assert response.status_code == 200
    assert "Line 1: write “form field = target”." in html
    assert "unknown target “salary”" in html
    assert not WebForm.objects.filter(slug="f").exists()


def test_reps_cannot_open_form_pages(org: Org, webform: WebForm) -> None:
    client = signed_in(org.rep)
    assert client.get(reverse("leads:webform_list")).status_code == 403
    assert client.get(reverse("leads:submission_list")).status_code == 403
    assert client.get(reverse("leads:duplicate_list")).status_code == 403


def test_quarantine_page_shows_payload_escaped_and_release_creates_the_lead(org: Org, webform: WebForm) -> None:
    # given a bot submission with a script in its name
    APIClient().post(
        "/api/v1/forms/contact/submit/",
        {"full_name": XSS, "mail": "bot@example.com", "website_url": "x"},
        format="json",
    )
    submission = FormSubmission.objects.get()
    client = signed_in(org.marketing)

    # when marketing opens the quarantine
    html = client.get(reverse("leads:submission_list") + "?status=quarantined").content.decode()

    # then the payload is shown as text
    assert XSS not in html
    assert "&lt;script&gt;" in html
    assert html.count('data-testid="submission-row"') == 1

    # when they release it
    response = client.post(reverse("leads:submission_release", kwargs={"submission_id": submission.pk}), follow=True)

    # then the lead exists and its page shows the name escaped
    lead = Lead.objects.get()
    assert FormSubmission.objects.get().status == SubmissionStatus.RELEASED
    assert response.status_code == 200
    detail = client.get(reverse("leads:detail", kwargs={"lead_id": lead.pk})).content.decode()
    assert XSS not in detail
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in detail


def test_reject_from_the_quarantine_page(org: Org, webform: WebForm) -> None:
    APIClient().post("/api/v1/forms/contact/submit/", {"mail": "x@mailinator.com"}, format="json")
    submission = FormSubmission.objects.get()

    signed_in(org.marketing).post(reverse("leads:submission_reject", kwargs={"submission_id": submission.pk}))

    assert FormSubmission.objects.get().status == SubmissionStatus.REJECTED
    assert Lead.objects.count() == 0


@pytest.mark.parametrize("status", [SubmissionStatus.QUARANTINED, SubmissionStatus.REJECTED])
def test_delete_from_the_quarantine_page_erases_the_submission(org: Org, webform: WebForm, status: str) -> None:
    # given a quarantined (or already rejected) submission
    APIClient().post("/api/v1/forms/contact/submit/", {"mail": "x@mailinator.com"}, format="json")
    submission = FormSubmission.objects.get()
    FormSubmission.objects.filter(pk=submission.pk).update(status=status)
    client = signed_in(org.marketing)
    delete_url = reverse("leads:submission_delete", kwargs={"submission_id": submission.pk})

    # when marketing opens its tab, the row offers a Delete button that asks first and posts with CSRF
    html = client.get(reverse("leads:submission_list") + f"?status={status}").content.decode()
    form = html.split(f'action="{delete_url}"')[1].split("</form>")[0]
    assert 'data-testid="submission-delete"' in form
    assert "window.confirm" in form
    assert "csrfmiddlewaretoken" in form

    # and presses it
    response = client.post(delete_url, follow=True)

    # then they are back on that tab, told it is gone, and it is
    assert response.redirect_chain[-1][0] == reverse("leads:submission_list") + f"?status={status}"
    page = response.content.decode()
    assert "Submission deleted, with the data it held." in page
    assert 'data-testid="submission-row"' not in page
    assert not FormSubmission.objects.exists()


def test_the_quarantine_page_offers_no_delete_to_those_who_may_not(org: Org, webform: WebForm) -> None:
    APIClient().post("/api/v1/forms/contact/submit/", {"mail": "x@example.com"}, format="json")  # accepted
    APIClient().post("/api/v1/forms/contact/submit/", {"mail": "x@mailinator.com"}, format="json")  # quarantined
    accepted = FormSubmission.objects.get(status=SubmissionStatus.ACCEPTED)
    quarantined = FormSubmission.objects.get(status=SubmissionStatus.QUARANTINED)

    # an accepted submission has no Delete button, and posting anyway keeps it
    client = signed_in(org.marketing)
    html = client.get(reverse("leads:submission_list") + "?status=accepted").content.decode()
    assert 'data-testid="submission-delete"' not in html
    client.post(reverse("leads:submission_delete", kwargs={"submission_id": accepted.pk}))
    assert FormSubmission.objects.filter(pk=accepted.pk).exists()

    # and a rep may not delete at all
    response = signed_in(org.rep).post(reverse("leads:submission_delete", kwargs={"submission_id": quarantined.pk}))
    assert response.status_code == 403
    assert FormSubmission.objects.count() == 2


def test_duplicates_page_merges_then_undo_restores(org: Org) -> None:
    a = LeadFactory.create(name=XSS, email="same@example.com", company="Acme")
    b = LeadFactory.create(name="Dup", email="same@example.com", company="")
    client = signed_in(org.marketing)

    listing = client.get(reverse("leads:duplicate_list")).content.decode()
    assert listing.count('data-testid="duplicate-pair"') == 1
    assert XSS not in listing

    merged = client.post(reverse("leads:duplicate_merge"), {"primary_id": a.pk, "duplicate_id": b.pk}, follow=True)
    merge = LeadMerge.objects.get()
    assert merged.redirect_chain[-1][0] == reverse("leads:merge_detail", kwargs={"merge_id": merge.pk})
    assert Lead.objects.get(pk=b.pk).merged_into_id == a.pk
    assert 'data-testid="undo-merge"' in merged.content.decode()
    assert client.get(reverse("leads:duplicate_list")).content.decode().count('data-testid="duplicate-pair"') == 0

    client.post(reverse("leads:merge_undo", kwargs={"merge_id": merge.pk}))

    assert Lead.objects.get(pk=b.pk).merged_into_id is None
    assert LeadMerge.objects.get().undone_at is not None


def test_manager_cannot_merge_a_lead_outside_their_teams(org: Org) -> None:
    mine = LeadFactory.create(owner=org.manager, team=org.north, email="m@example.com")
    southern = LeadFactory.create(owner=org.rep_south, team=org.south, email="m@example.com")
    client = signed_in(org.manager)

    assert client.get(reverse("leads:duplicate_list")).content.decode().count('data-testid="duplicate-pair"') == 0
    response = client.post(reverse("leads:duplicate_merge"), {"primary_id": mine.pk, "duplicate_id": southern.pk})

    assert response.status_code == 404
    assert Lead.objects.get(pk=southern.pk).merged_into_id is None


def test_duplicates_page_query_count_does_not_grow_with_pairs(org: Org, django_assert_max_num_queries) -> None:
    for n in range(15):
        LeadFactory.create_batch(2, email=f"twin{n}@example.com", owner=org.rep)
    client = signed_in(org.marketing)
    client.get(reverse("leads:duplicate_list"))  # warm the session and permission caches

    with django_assert_max_num_queries(12):
        html = client.get(reverse("leads:duplicate_list")).content.decode()

    assert html.count('data-testid="duplicate-pair"') == 15


def test_manager_without_form_permission_cannot_edit_a_form(org: Org, webform: WebForm) -> None:
    response = signed_in(org.manager).get(reverse("leads:webform_edit", kwargs={"form_id": webform.pk}))

    assert response.status_code == 403
