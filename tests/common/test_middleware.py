"""The public web-form endpoint's short middleware chain, and the full chain everywhere else."""

from __future__ import annotations

import pytest
from django.test import Client

from leads.models import WebForm
from leads.services import webform_create
from tests.conftest import Org

SUBMIT = "/api/v1/forms/contact/submit/"


pytestmark = pytest.mark.usefixtures("fresh_throttles")


@pytest.fixture
def form(org: Org) -> WebForm:
    return webform_create(
        created_by=org.marketing,
        name="Contact us",
        slug="contact",
        field_mapping={"mail": "email"},
        allowed_origins=["https://www.example.com"],
        rate_limit_per_minute=100,
    )


def test_the_submit_endpoint_reads_no_session_even_from_a_signed_in_browser(form: WebForm, org: Org) -> None:
    browser = Client()
    browser.force_login(org.marketing)

    response = browser.post(SUBMIT, {"mail": "ada@example.com"}, content_type="application/json")

    assert response.status_code == 201
    assert not hasattr(response.wsgi_request, "session")
    assert response.wsgi_request.user.is_anonymous  # DRF's own (no authentication classes), not the session's
    # while the rest of the site still has the browser's session and user
    page = browser.get("/api/v1/forms/")
    assert page.status_code == 200
    assert page.wsgi_request.user == org.marketing


def test_the_submit_endpoint_answers_in_the_visitors_language(form: WebForm) -> None:
    response = Client().post(
        SUBMIT, {"name": "No contact"}, content_type="application/json", headers={"accept-language": "zh-hans"}
    )

    assert response.status_code == 400
    assert response.json() == {"mail": ["请提供邮箱地址或电话号码。"]}
    assert response.headers["Content-Language"] == "zh-hans"


def test_the_submit_endpoint_keeps_its_cors_and_frame_headers(form: WebForm) -> None:
    allowed = Client().post(
        SUBMIT,
        {"mail": "bo@example.com"},
        content_type="application/json",
        headers={"origin": "https://www.example.com"},
    )
    other = Client().post(
        SUBMIT, {"mail": "cy@example.com"}, content_type="application/json", headers={"origin": "https://evil.example"}
    )

    assert allowed.headers["Access-Control-Allow-Origin"] == "https://www.example.com"
    assert "Access-Control-Allow-Origin" not in other.headers
    assert allowed.headers["X-Frame-Options"] == "DENY"


def test_other_api_posts_from_a_browser_session_still_need_the_csrf_token(form: WebForm, org: Org) -> None:
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(org.marketing)

    response = browser.post("/api/v1/forms/", {"name": "X", "slug": "x"}, content_type="application/json")

    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]
