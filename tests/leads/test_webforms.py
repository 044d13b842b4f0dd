"""Web forms: the public submit endpoint (JSON and bare HTML forms), idempotency, spam, throttles, CORS, CRUD."""

from __future__ import annotations

import time
from collections.abc import Mapping

import pytest
from django.core.cache import cache
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from leads.models import FormSubmission, Interaction, Lead, SubmissionStatus, WebForm
from leads.services import webform_create
from tests.conftest import Org
from tests.factories import CampaignFactory, LeadFactory

URL = "/api/v1/forms/{slug}/submit/"


pytestmark = pytest.mark.usefixtures("fresh_throttles")


@pytest.fixture
def form(org: Org) -> WebForm:
    return webform_create(
        created_by=org.marketing,
        name="Contact us",
        slug="contact",
        field_mapping={"full_name": "name", "mail": "email", "mobile": "phone", "plan": "attr:plan"},
        default_tags=["website"],
        default_campaign=CampaignFactory.create(name="Spring"),
        allowed_origins=["https://www.example.com"],
        success_url="https://www.example.com/thanks",
        rate_limit_per_minute=100,
    )


def post(data: Mapping[str, object], *, slug: str = "contact", ip: str = "127.0.0.1", **headers: str):
    return APIClient().post(URL.format(slug=slug), data, format="json", headers=headers, REMOTE_ADDR=ip)


def test_json_submission_creates_a_lead_then_matches_it(form: WebForm) -> None:
    # when a visitor submits the form twice
    first = post(
        {
            "full_name": "王伟",
            "mail": "Wang@Example.com",
            "plan": "pro",
            "page_url": "https://www.example.com/p?utm_source=wx&utm_campaign=spring",
        }
    )
    second = post({"full_name": "王伟", "mobile": "13800138000", "mail": "wang@example.com"})

    # then the first makes a lead (201) and the second finds it (200)
    assert first.status_code == 201, first.content
    assert second.status_code == 200
    lead = Lead.objects.get()
    assert first.json()["lead_id"] == second.json()["lead_id"] == lead.pk
    assert (lead.email, lead.phone, lead.attributes) == ("wang@example.com", "+8613800138000", {"plan": "pro"})
    assert lead.campaign is not None
    assert lead.campaign.name == "Spring"
    assert lead.utm_source == "wx"
    assert list(lead.tags.values_list("name", flat=True)) == ["website"]
    # and each submission is on the timeline with the form, page and UTM parameters
    submits = Interaction.objects.filter(lead=lead, type="form_submit").order_by("id")
    assert submits.count() == 2
    assert submits[0].properties["form"] == "contact"
    assert submits[0].properties["utm_campaign"] == "spring"
    assert submits[0].properties["page_url"].startswith("https://www.example.com/p")


def test_html_form_post_redirects_to_the_success_url(form: WebForm) -> None:
    # a bare <form> on another site: urlencoded, no CSRF token, no login
    client = Client(enforce_csrf_checks=True)
    response = client.post(URL.format(slug="contact"), {"full_name": "Ada", "mail": "ada@example.com"})

    assert response.status_code == 303
    assert response["Location"] == "https://www.example.com/thanks"
    assert Lead.objects.filter(email="ada@example.com").exists()


def test_html_form_post_with_bad_input_gets_an_error_page_naming_the_field(form: WebForm) -> None:
    response = Client().post(
        URL.format(slug="contact"),
        {"full_name": "Ada", "mail": "not-an-address"},
        headers={"referer": "https://www.example.com/contact"},
    )

    assert response.status_code == 400
    html = response.content.decode()
    assert "mail" in html
    assert 'href="https://www.example.com/contact"' in html
    assert Lead.objects.count() == 0


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"full_name": "Ada", "mail": "bad@"}, "mail"),
        ({"full_name": "Ada", "mobile": "12345"}, "mobile"),
        ({"full_name": "Ada"}, "mail"),  # neither e-mail nor phone
        ({"full_name": "A" * 300, "mail": "a@example.com"}, "full_name"),
        ({"full_name": {"nested": 1}, "mail": "a@example.com"}, "full_name"),
        ({"full_name": "Ada", "mail": "a@example.com", "notes": "x" * 10_001}, "notes"),
    ],
)
def test_bad_input_answers_400_naming_the_form_field_and_writes_nothing(
    form: WebForm, data: dict[str, object], field: str
) -> None:
    response = post(data)

    assert response.status_code == 400
    assert field in response.json()
    assert Lead.objects.count() == 0
    assert FormSubmission.objects.count() == 0


def test_unknown_or_inactive_form_is_404(form: WebForm) -> None:
    assert post({"mail": "a@example.com"}, slug="nope").status_code == 404
    form.is_active = False
    form.save()
    assert post({"mail": "a@example.com"}).status_code == 404


def test_same_idempotency_key_replays_the_first_answer_and_creates_nothing(form: WebForm) -> None:
    first = post({"full_name": "Ada", "mail": "ada@example.com"}, **{"Idempotency-Key": "k-1"})
    again = post({"full_name": "Ada", "mail": "ada@example.com"}, **{"Idempotency-Key": "k-1"})

    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert FormSubmission.objects.count() == 1
    assert Interaction.objects.filter(type="form_submit").count() == 1


def test_honeypot_is_quarantined_then_released_into_a_lead(form: WebForm, org: Org, client_for) -> None:
    # when a bot fills the hidden field
    response = post({"full_name": "Bot", "mail": "bot@example.com", "website_url": "http://spam.example"})

    # then the answer looks like success, but no lead exists; the submission waits in the quarantine
    assert response.status_code == 201
    assert Lead.objects.count() == 0
    submission = FormSubmission.objects.get()
    assert submission.status == SubmissionStatus.QUARANTINED
    assert "honeypot" in submission.spam_reason
    quarantine = client_for(org.marketing).get("/api/v1/submissions/?status=quarantined")
    assert [s["id"] for s in quarantine.json()["results"]] == [submission.pk]

    # when marketing releases it
    released = client_for(org.marketing).post(f"/api/v1/submissions/{submission.pk}/release/")

    # then the lead is created then and the submission is marked released
    assert released.status_code == 200
    lead = Lead.objects.get()
    assert lead.email == "bot@example.com"
    assert released.json()["status"] == SubmissionStatus.RELEASED
    assert released.json()["lead"] == lead.pk


def test_rejected_submission_stays_on_record_without_a_lead(form: WebForm, org: Org, client_for) -> None:
    post({"full_name": "Bot", "mail": "bot@mailinator.com"})
    submission = FormSubmission.objects.get()
    assert submission.spam_reason == "disposable e-mail"

    response = client_for(org.marketing).post(f"/api/v1/submissions/{submission.pk}/reject/")

    assert response.status_code == 200
    assert FormSubmission.objects.get().status == SubmissionStatus.REJECTED
    assert Lead.objects.count() == 0
    # and a rep may not see or release the quarantine
    assert client_for(org.rep).get("/api/v1/submissions/").status_code == 403


@pytest.mark.parametrize("reject_first", [False, True], ids=["quarantined", "rejected"])
def test_marketing_deletes_a_quarantined_or_rejected_submission_for_good(
    form: WebForm, org: Org, client_for, reject_first: bool
) -> None:
    # given a bot's submission in the quarantine (and, in one case, rejected already)
    post({"full_name": "Bot", "mail": "bot@mailinator.com", "notes": "call me on 13800138000"})
    submission = FormSubmission.objects.get()
    marketing = client_for(org.marketing)
    if reject_first:
        assert marketing.post(f"/api/v1/submissions/{submission.pk}/reject/").status_code == 200

    # when marketing deletes it
    response = marketing.delete(f"/api/v1/submissions/{submission.pk}/")

    # then it is gone with everything it held: not listed, not found, no lead made from it
    assert response.status_code == 204
    assert not FormSubmission.objects.filter(pk=submission.pk).exists()
    assert marketing.get(f"/api/v1/submissions/{submission.pk}/").status_code == 404
    assert marketing.get("/api/v1/submissions/").json()["results"] == []
    assert Lead.objects.count() == 0


def test_an_accepted_submission_cannot_be_deleted_it_is_the_leads_record(form: WebForm, org: Org, client_for) -> None:
    post({"full_name": "Ada", "mail": "ada@example.com"})
    submission = FormSubmission.objects.get()

    response = client_for(org.marketing).delete(f"/api/v1/submissions/{submission.pk}/")

    assert response.status_code == 400
    assert "status" in response.json()
    assert FormSubmission.objects.get().lead == Lead.objects.get(email="ada@example.com")


def test_a_rep_or_manager_cannot_delete_a_submission(form: WebForm, org: Org, client_for) -> None:
    post({"full_name": "Bot", "mail": "bot@mailinator.com"})
    submission = FormSubmission.objects.get()

    for user in (org.rep, org.manager):
        assert client_for(user).delete(f"/api/v1/submissions/{submission.pk}/").status_code in (403, 404)

    assert FormSubmission.objects.get().status == SubmissionStatus.QUARANTINED


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        ({"_ts": "just rendered"}, "too fast"),
        ({"message": "http://a.example http://b.example http://c.example www.d.example"}, "too many links"),
    ],
)
def test_suspicious_submissions_are_quarantined(form: WebForm, extra: dict[str, str], reason: str) -> None:
    if extra.get("_ts") == "just rendered":
        extra = {"_ts": str(time.time() - 0.5)}  # a bot posting half a second after the page loaded
    response = post({"full_name": "Ada", "mail": "ada@example.com", **extra})

    assert response.status_code == 201
    assert Lead.objects.count() == 0
    assert reason in FormSubmission.objects.get().spam_reason


def test_a_human_speed_timestamp_is_accepted(form: WebForm) -> None:
    response = post({"full_name": "Ada", "mail": "ada@example.com", "_ts": str((time.time() - 30) * 1000)})

    assert response.status_code == 201
    assert Lead.objects.count() == 1


def test_per_form_throttle_answers_429_with_retry_after(form: WebForm) -> None:
    form.rate_limit_per_minute = 2
    form.save()

    statuses = [post({"full_name": "Ada", "mail": f"a{n}@example.com"}).status_code for n in range(3)]

    assert statuses == [201, 201, 429]
    response = post({"full_name": "Ada", "mail": "late@example.com"})
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    assert Lead.objects.count() == 2


def test_per_form_throttle_is_per_client_so_one_client_cannot_exhaust_the_form(form: WebForm) -> None:
    form.rate_limit_per_minute = 2
    form.save()

    # when one client uses up the form's limit
    first_client = [
        post({"full_name": "Ada", "mail": f"a{n}@example.com"}, ip="203.0.113.1").status_code for n in range(3)
    ]
    # then another client can still submit
    other_client = post({"full_name": "Bo", "mail": "bo@example.com"}, ip="203.0.113.2")

    assert first_client == [201, 201, 429]
    assert other_client.status_code == 201
    assert Lead.objects.count() == 3


def test_over_the_forms_overall_ceiling_submissions_are_quarantined_not_refused(
    form: WebForm, monkeypatch: pytest.MonkeyPatch
) -> None:
    import leads.api.webforms

    # given a form whose overall ceiling is its per-client limit (2 a minute)
    monkeypatch.setattr(leads.api.webforms, "FORM_CEILING_FACTOR", 1)
    form.rate_limit_per_minute = 2
    form.save()

    # when three clients submit once each
    statuses = [
        post({"full_name": "Ada", "mail": f"a{n}@example.com"}, ip=f"203.0.113.{n}").status_code for n in range(3)
    ]

    # then all three are answered as accepted, and the third waits in the quarantine for a marketer
    assert statuses == [201, 201, 201]
    assert Lead.objects.count() == 2
    held = FormSubmission.objects.get(status=SubmissionStatus.QUARANTINED)
    assert held.payload["mail"] == "a2@example.com"
    assert "form ceiling" in held.spam_reason


def test_a_submission_marks_its_lead_for_scoring(form: WebForm) -> None:
    existing = LeadFactory.create(name="Ada", email="ada@example.com")
    Lead.objects.filter(pk=existing.pk).update(dirty_since=None)

    post({"full_name": "Bo", "mail": "bo@example.com"})
    post({"full_name": "Ada", "mail": "ada@example.com", "company": "New Co"})

    for lead in Lead.objects.all():
        assert lead.dirty_since is not None
        submitted = Interaction.objects.get(lead=lead, type="form_submit").occurred_at
        assert lead.last_activity_at >= submitted


def test_a_submission_takes_a_bounded_number_of_queries(form: WebForm, django_assert_max_num_queries) -> None:
    post({"full_name": "Warm", "mail": "warm@example.com"})  # the form's tag exists from now on

    # a new lead, then a repeat with a conflict. Inside the test's transaction the form and its tags are read
    # each time (the endpoint's per-process cache is bypassed) and the service's block is a savepoint.
    with django_assert_max_num_queries(13):
        assert post({"full_name": "Ada", "mail": "ada@example.com", "mobile": "13800138000"}).status_code == 201
    with django_assert_max_num_queries(13):
        assert post({"full_name": "Ada L", "mail": "ADA@example.com", "company": "X"}).status_code == 200


@pytest.mark.django_db(transaction=True)
def test_form_changes_reach_the_public_endpoint_at_once() -> None:
    from leads.services import webform_update
    from leads.services.webforms import FORMS_VERSION_KEY

    # given a form that served a submission (and is now cached by this process)
    form = webform_create(created_by=None, name="Cached", slug="cached", rate_limit_per_minute=100)
    assert post({"name": "Ada", "email": "a1@example.com"}, slug="cached").status_code == 201

    # when marketing lowers its limit, the next submission is held to it
    webform_update(form=form, rate_limit_per_minute=1)
    assert post({"name": "Ada", "email": "a2@example.com"}, slug="cached").status_code == 429

    # and when another process deactivates it (its commit changes the shared forms version)
    WebForm.objects.filter(pk=form.pk).update(is_active=False)
    cache.set(FORMS_VERSION_KEY, "changed elsewhere", timeout=None)
    assert post({"name": "Bo", "email": "b@example.com"}, slug="cached", ip="203.0.113.9").status_code == 404


@pytest.fixture
def redis_cache(fresh_throttles: None, settings) -> None:
    """The throttles on a real Redis (its Lua script), under a key prefix of this test's own."""
    import os
    import uuid

    import redis

    url = os.environ.get("LEADCRM_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except redis.RedisError:
        if os.environ.get("LEADCRM_REQUIRE_SERVICES") == "1":
            pytest.fail(f"Redis is required but does not answer at {url}")
        pytest.skip(f"needs Redis at {url}")
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": url,
            "KEY_PREFIX": f"test-{uuid.uuid4().hex}",
        }
    }


def test_throttles_on_redis_refuse_per_client_and_quarantine_over_the_forms_ceiling(
    form: WebForm, redis_cache: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    import leads.api.webforms

    # given a limit of 2 a minute per client, and a ceiling of 2 a minute for the form as a whole
    monkeypatch.setattr(leads.api.webforms, "FORM_CEILING_FACTOR", 1)
    form.rate_limit_per_minute = 2
    form.save()

    # when one client posts three times and then another client once
    first = [post({"full_name": "Ada", "mail": f"a{n}@example.com"}, ip="198.51.100.1") for n in range(3)]
    second = post({"full_name": "Bo", "mail": "bo@example.com"}, ip="198.51.100.2")

    # then the first client's third post is refused with Retry-After, and is not counted against the form
    assert [r.status_code for r in first] == [201, 201, 429]
    assert int(first[2]["Retry-After"]) > 0
    # and the second client gets in, but over the form's ceiling: held in the quarantine
    assert second.status_code == 201
    assert Lead.objects.count() == 2
    assert FormSubmission.objects.get(payload__mail="bo@example.com").status == SubmissionStatus.QUARANTINED


def test_per_ip_throttle_spans_forms(form: WebForm, org: Org, monkeypatch: pytest.MonkeyPatch) -> None:
    from leads.api.webforms import FormSubmitThrottle

    # given a per-IP limit of two submissions a minute, and a second form
    monkeypatch.setattr(FormSubmitThrottle, "THROTTLE_RATES", {"form_submit": "2/min"})
    webform_create(created_by=org.marketing, name="Other", slug="other", rate_limit_per_minute=100)

    # when one client posts to both forms
    statuses = [
        post({"name": "Ada", "email": "a1@example.com"}).status_code,
        post({"name": "Ada", "email": "a2@example.com"}, slug="other").status_code,
        post({"name": "Ada", "email": "a3@example.com"}).status_code,
    ]

    # then the third is refused although each form is far below its own limit
    assert statuses == [201, 201, 429]


def test_cors_headers_only_for_the_forms_allowed_origins(form: WebForm) -> None:
    client = Client()
    url = URL.format(slug="contact")
    preflight = {"origin": "https://www.example.com", "access-control-request-method": "POST"}

    allowed = client.options(url, headers=preflight)
    denied = client.options(url, headers={**preflight, "origin": "https://evil.example"})
    posted = client.post(
        url,
        {"name": "Ada", "email": "ada@example.com"},
        content_type="application/json",
        headers={"origin": "https://www.example.com"},
    )
    posted_evil = client.post(
        url,
        {"name": "Bo", "email": "bo@example.com"},
        content_type="application/json",
        headers={"origin": "https://evil.example"},
    )

    assert allowed["Access-Control-Allow-Origin"] == "https://www.example.com"
    assert "idempotency-key" in allowed["Access-Control-Allow-Headers"]
    assert "Access-Control-Allow-Origin" not in denied
    assert posted["Access-Control-Allow-Origin"] == "https://www.example.com"
    assert "Access-Control-Allow-Origin" not in posted_evil
    # another API endpoint does not inherit the form's origins
    other = client.options("/api/v1/leads/", headers=preflight)
    assert "Access-Control-Allow-Origin" not in other


def test_visitor_id_links_the_visitor_to_the_lead(form: WebForm) -> None:
    from leads.models import Visitor

    post({"full_name": "Ada", "mail": "ada@example.com", "visitor_id": "v-123"})

    assert Visitor.objects.get(visitor_id="v-123").lead == Lead.objects.get()


def test_form_crud_api_validates_the_mapping_and_is_for_marketing(org: Org, client_for) -> None:
    marketing = client_for(org.marketing)
    bad = marketing.post(
        "/api/v1/forms/",
        {"name": "F", "slug": "f", "field_mapping": {"x": "salary"}, "allowed_origins": ["example.com"]},
        format="json",
    )
    good = marketing.post(
        "/api/v1/forms/", {"name": "F", "slug": "f", "field_mapping": {"x": "attr:size"}}, format="json"
    )

    assert bad.status_code == 400
    assert "field_mapping" in bad.json()
    assert good.status_code == 201, good.content
    assert good.json()["submit_url"].endswith("/api/v1/forms/f/submit/")
    assert client_for(org.rep).post("/api/v1/forms/", {"name": "G", "slug": "g"}, format="json").status_code == 403
    assert (
        marketing.patch(
            f"/api/v1/forms/{good.json()['id']}/", {"allowed_origins": ["ftp://x"]}, format="json"
        ).status_code
        == 400
    )


def test_a_honeypot_that_people_or_the_snippet_fill_is_refused(org: Org, client_for) -> None:
    """Such a honeypot would send every real submission to the quarantine."""
    marketing = client_for(org.marketing)
    reserved = marketing.post("/api/v1/forms/", {"name": "F", "slug": "f", "honeypot_field": "referrer"}, format="json")
    mapped = marketing.post(
        "/api/v1/forms/",
        {"name": "F", "slug": "f", "field_mapping": {"mail": "email"}, "honeypot_field": "mail"},
        format="json",
    )
    # No honeypot named: the default one (website_url) must not be a mapped field either.
    mapped_default = marketing.post(
        "/api/v1/forms/", {"name": "F", "slug": "f", "field_mapping": {"website_url": "website"}}, format="json"
    )
    good = marketing.post(
        "/api/v1/forms/", {"name": "F", "slug": "f", "field_mapping": {"mail": "email"}}, format="json"
    )
    # Mapping the form's current honeypot (website_url) later is refused as well.
    remapped = marketing.patch(
        f"/api/v1/forms/{good.json()['id']}/", {"field_mapping": {"website_url": "website"}}, format="json"
    )

    assert reserved.status_code == 400
    assert "honeypot_field" in reserved.json()
    assert mapped.status_code == 400
    assert "honeypot_field" in mapped.json()
    assert mapped_default.status_code == 400
    assert "honeypot_field" in mapped_default.json()
    assert good.status_code == 201, good.content
    assert remapped.status_code == 400
    assert "honeypot_field" in remapped.json()
    assert WebForm.objects.get().field_mapping == {"mail": "email"}


def test_matched_existing_lead_keeps_its_values_and_records_the_conflict(form: WebForm) -> None:
    LeadFactory.create(name="Ada", email="ada@example.com", company="Old Co")

    response = post({"full_name": "Ada", "mail": "ada@example.com", "company": "New Co"})

    assert response.status_code == 200
    assert Lead.objects.get().company == "Old Co"
    conflict = Interaction.objects.get(type="field_conflict")
    assert conflict.properties == {"field": "company", "kept": "Old Co", "received": "New Co", "source": "form:contact"}


def test_embed_snippet_on_the_form_page_is_escaped(form: WebForm, org: Org) -> None:
    form.name = '<script>alert("x")</script>'
    form.save()
    client = Client()
    client.force_login(org.marketing)

    html = client.get(reverse("leads:webform_edit", kwargs={"form_id": form.pk})).content.decode()

    assert '<script>alert("x")</script>' not in html
    assert "&lt;form" in html  # the snippet is shown as text to copy
    assert '<input type="text" name="website_url"' not in html  # shown as text, never a live input on our page


def _race(n: int, work) -> list[object]:
    """Run ``work(i)`` in ``n`` threads released together; return the results (exceptions included)."""
    import threading

    from django.db import connection

    barrier = threading.Barrier(n)
    results: list[object] = []

    def run(i: int) -> None:
        try:
            barrier.wait()
            results.append(work(i))
        except BaseException as exc:
            results.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_form_submissions_of_one_person_make_one_lead() -> None:
    from leads.services import webform_submit

    form = webform_create(created_by=None, name="Race", slug="race", rate_limit_per_minute=1000)

    outcomes = _race(
        6,
        lambda i: webform_submit(
            form=form, data={"name": f"Racer {i}", "email": "RACE@example.com", "phone": "13800138077"}
        ),
    )

    assert all(not isinstance(o, BaseException) for o in outcomes), outcomes
    assert sorted(o.status_code for o in outcomes) == [200, 200, 200, 200, 200, 201]  # type: ignore[attr-defined]
    assert Lead.objects.count() == 1
    assert Interaction.objects.filter(type="form_submit").count() == 6


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_retries_with_one_idempotency_key_make_one_submission() -> None:
    from leads.services import webform_submit

    form = webform_create(created_by=None, name="Race", slug="race", rate_limit_per_minute=1000)

    outcomes = _race(
        6,
        lambda i: webform_submit(
            form=form, data={"name": "Ada", "email": "ada@example.com"}, idempotency_key="double-click"
        ),
    )

    assert all(not isinstance(o, BaseException) for o in outcomes), outcomes
    assert {(o.status_code, tuple(sorted(o.body.items()))) for o in outcomes}.__len__() == 1  # type: ignore[attr-defined]
    assert FormSubmission.objects.count() == 1
    assert Lead.objects.count() == 1


def test_html_honeypot_post_is_redirected_like_a_person_but_quarantined(form: WebForm) -> None:
    response = Client().post(
        URL.format(slug="contact"), {"full_name": "Bot", "mail": "bot@example.com", "website_url": "x"}
    )

    assert response.status_code == 303
    assert response["Location"] == "https://www.example.com/thanks"
    assert Lead.objects.count() == 0
    assert FormSubmission.objects.get().status == SubmissionStatus.QUARANTINED


def test_html_form_post_over_the_limit_gets_a_429_page_with_retry_after(form: WebForm) -> None:
    form.rate_limit_per_minute = 1
    form.save()
    client = Client()

    client.post(URL.format(slug="contact"), {"full_name": "Ada", "mail": "a1@example.com"})
    response = client.post(URL.format(slug="contact"), {"full_name": "Ada", "mail": "a2@example.com"})

    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    assert "Too many submissions" in response.content.decode()
    assert Lead.objects.count() == 1


def test_event_external_ids_cannot_block_later_form_submissions(form: WebForm, org: Org, client_for) -> None:
    # given a rep who pre-claims every id a form submission could be given
    own = LeadFactory.create(owner=org.rep, team=org.north)
    start = (FormSubmission.objects.order_by("-pk").values_list("pk", flat=True).first() or 0) + 1
    events = [
        {"lead_id": own.pk, "type": "page_view", "external_id": f"form-submission:{n}"}
        for n in range(start, start + 20)
    ]
    assert client_for(org.rep).post("/api/v1/events/", events, format="json").status_code == 202

    # when a real visitor submits the form
    response = post({"full_name": "Real Buyer", "mail": "buyer@example.com"})

    # then the lead is created as usual
    assert response.status_code == 201
    assert Lead.objects.filter(email="buyer@example.com").exists()


def test_embed_snippet_escapes_field_names(form: WebForm, org: Org) -> None:
    from django.test import RequestFactory

    from leads.views.webforms import embed_snippet

    form.field_mapping = {'x"><script>alert(1)</script>': "name"}
    snippet = embed_snippet(RequestFactory().get("/"), form)

    assert "<script>alert(1)</script>" not in snippet
    assert "&lt;script&gt;" in snippet


def test_embed_snippet_sends_the_page_and_the_visitors_referrer(form: WebForm) -> None:
    from django.test import RequestFactory

    from leads.views.webforms import embed_snippet

    snippet = embed_snippet(RequestFactory().get("/"), form)

    assert '<input type="hidden" name="page_url" value="">' in snippet
    assert '<input type="hidden" name="referrer" value="">' in snippet
    assert 'f.elements["referrer"].value = document.referrer;' in snippet


TOUCH = {
    "full_name": "Ada",
    "mail": "ada@example.com",
    "page_url": "https://www.example.com/contact",
    "referrer": "https://www.google.com/search?q=lead+crm",
    "utm_source": "google",
    "utm_campaign": "spring",
}


@pytest.mark.parametrize("encoding", ["json", "form"])
def test_the_visitors_referrer_and_utm_fields_are_recorded_on_the_form_submit_event(
    form: WebForm, encoding: str
) -> None:
    # when the snippet posts (Referer: the form's own page) with the visitor's referrer and UTM fields
    headers = {"referer": "https://www.example.com/contact"}
    if encoding == "json":
        response = post(TOUCH, **headers)
        assert response.status_code == 201, response.content
    else:
        response = Client().post(URL.format(slug="contact"), TOUCH, headers=headers)
        assert response.status_code == 303

    # then the event says where the visitor came from, not the form's page, with the campaign
    lead = Lead.objects.get()
    event = Interaction.objects.get(lead=lead, type="form_submit")
    assert event.properties["referrer"] == "https://www.google.com/search?q=lead+crm"
    assert event.properties["page_url"] == "https://www.example.com/contact"
    assert (event.properties["utm_source"], event.properties["utm_campaign"]) == ("google", "spring")
    assert (lead.utm_source, lead.utm_campaign) == ("google", "spring")
    # and none of these reserved fields became a custom attribute
    assert lead.attributes == {}


def test_without_a_referrer_field_the_referer_header_is_recorded_and_an_empty_one_means_none(
    form: WebForm,
) -> None:
    post({"full_name": "Ada", "mail": "ada@example.com"}, referer="https://partner.example.org/links")
    post({"full_name": "Bob", "mail": "bob@example.com", "referrer": ""}, referer="https://www.example.com/contact")

    def referrer(email: str) -> str:
        return Interaction.objects.get(lead__email=email, type="form_submit").properties["referrer"]

    assert referrer("ada@example.com") == "https://partner.example.org/links"
    assert referrer("bob@example.com") == ""  # the page said: a direct visit
