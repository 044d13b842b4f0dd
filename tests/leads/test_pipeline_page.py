"""The staff pipeline page: figures for staff, 403 for everyone else, a nav link only for staff."""

from __future__ import annotations

from datetime import timedelta

from django.test import Client
from django.utils import timezone

from leads.models import PipelineRun
from tests.conftest import Org
from tests.factories import LeadFactory
from users.models import User

URL = "/pipeline/"


def _client(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_staff_see_the_pipeline_figures_in_english_and_chinese(org: Org) -> None:
    LeadFactory.create_batch(2, dirty_since=timezone.now() - timedelta(seconds=40))
    PipelineRun.objects.create(leads=5, events=17, failed=2, finished_at=timezone.now())
    client = _client(org.admin)

    page = client.get(URL).content.decode()
    zh = client.get(URL, headers={"accept-language": "zh-hans"})

    assert 'data-testid="dirty-leads">2<' in page
    assert 'data-testid="events-last-minute">17<' in page
    assert 'data-testid="failures">2<' in page
    assert 'data-testid="nav-pipeline"' in page
    assert zh.status_code == 200


def test_non_staff_get_403_and_no_nav_link(org: Org) -> None:
    for user in (org.rep, org.manager, org.marketing):
        client = _client(user)
        assert client.get(URL).status_code == 403
        assert 'data-testid="nav-pipeline"' not in client.get("/leads/").content.decode()


def test_anonymous_is_sent_to_login(db: None) -> None:
    response = Client().get(URL)
    assert response.status_code == 302
    assert "/login" in response["Location"]
