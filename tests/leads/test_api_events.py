"""POST /api/v1/events/ and GET /api/v1/pipeline/status/: ingestion, idempotency, visibility, bad input."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from leads import services
from leads.models import AnonymousEvent, Interaction, Lead, PipelineRun, Visitor
from tests.conftest import Org
from tests.factories import LeadFactory
from users.services import api_key_create

URL = "/api/v1/events/"
STATUS_URL = "/api/v1/pipeline/status/"


def _event(**overrides: Any) -> dict[str, Any]:
    return {"type": "page_view", "occurred_at": timezone.now().isoformat(), "properties": {"url": "/"}, **overrides}


def test_one_event_by_api_key_is_stored_marked_dirty_and_processed_on_commit(
    org: Org, django_capture_on_commit_callbacks: Any
) -> None:
    lead = LeadFactory.create(owner=org.rep, team=org.north)
    _, key = api_key_create(user=org.rep, name="tracker")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = client.post(URL, _event(lead_id=lead.pk, type="demo_request"), format="json")

    assert response.status_code == 202, response.content
    assert response.json() == {"accepted": 1, "duplicate": 0, "rejected": 0, "errors": []}
    assert len(callbacks) == 1
    lead.refresh_from_db()
    assert lead.interactions.get().type == "demo_request"
    assert (lead.score, lead.dirty_since) == (30, None)


def test_batch_by_id_and_email_with_duplicates_counted_exactly(org: Org, client_for: Any) -> None:
    lead = LeadFactory.create(owner=org.rep, team=org.north, email="wang@example.cn")
    batch = [
        _event(lead_id=lead.pk, external_id="ev-1"),
        _event(email="  WANG@Example.CN ", external_id="ev-2", type="email_click"),
        _event(lead_id=lead.pk, external_id="ev-1"),  # repeated in the batch
    ]
    client = client_for(org.rep)

    first = client.post(URL, batch, format="json").json()
    again = client.post(URL, batch, format="json").json()  # the whole batch retried

    assert (first["accepted"], first["duplicate"], first["rejected"]) == (2, 1, 0)
    assert (again["accepted"], again["duplicate"], again["rejected"]) == (0, 3, 0)
    assert Interaction.objects.filter(lead=lead).count() == 2


def test_malformed_events_are_rejected_with_reasons_and_good_ones_are_stored(org: Org, client_for: Any) -> None:
    lead = LeadFactory.create(owner=org.rep, team=org.north)
    future = (timezone.now() + timedelta(days=2)).isoformat()
    batch = [
        _event(lead_id=lead.pk, external_id="good-1"),
        _event(lead_id=lead.pk, type="teleport"),
        _event(lead_id=lead.pk, occurred_at="yesterday-ish"),
        _event(lead_id=lead.pk, occurred_at=future),
        _event(lead_id=lead.pk, properties={"blob": "x" * 17_000}),
        _event(lead_id=lead.pk, properties=["not", "an", "object"]),
        _event(lead_id=999_999),
        _event(lead_id=2**63),  # past bigint: a field error, not a database error
        _event(email="nobody@example.com"),
        _event(email="not an email"),
        _event(),  # no lead at all
        "just a string",
        _event(lead_id=lead.pk, type="pricing_page_view", occurred_at="2020-01-01T08:00:00+08:00"),  # late is fine
    ]

    body = client_for(org.rep).post(URL, batch, format="json").json()

    assert (body["accepted"], body["rejected"]) == (2, 11)
    reasons = {e["index"]: e["errors"] for e in body["errors"]}
    assert set(reasons) == set(range(1, 12))
    assert "type" in reasons[1]
    assert "occurred_at" in reasons[2]
    assert "occurred_at" in reasons[3]
    assert "properties" in reasons[4]
    assert "properties" in reasons[5]
    assert "lead_id" in reasons[6]
    assert "lead_id" in reasons[7]
    assert "email" in reasons[8]
    assert "email" in reasons[9]
    assert "lead" in reasons[10]
    assert "non_field_errors" in reasons[11]
    assert sorted(Interaction.objects.filter(lead=lead).values_list("type", flat=True)) == [
        "page_view",
        "pricing_page_view",
    ]


def test_a_rep_cannot_post_events_to_another_teams_lead(org: Org, client_for: Any) -> None:
    south = LeadFactory.create(owner=org.rep_south, team=org.south, email="south@example.com")

    body = (
        client_for(org.rep)
        .post(URL, [_event(lead_id=south.pk), _event(email="south@example.com")], format="json")
        .json()
    )

    assert body["rejected"] == 2
    assert body["accepted"] == 0
    # The same answer as for a lead that does not exist: nothing leaks.
    assert body["errors"][0]["errors"] == {"lead_id": ["Unknown lead."]}
    assert not Interaction.objects.filter(lead=south).exists()


def test_events_need_the_add_interaction_permission_and_a_login(org: Org, api_client: APIClient) -> None:
    lead = LeadFactory.create()
    assert api_client.post(URL, _event(lead_id=lead.pk), format="json").status_code in (401, 403)
    org.rep.groups.clear()
    client = APIClient()
    client.force_authenticate(org.rep)
    assert client.post(URL, _event(lead_id=lead.pk), format="json").status_code == 403


def test_too_many_events_or_none_is_a_400(org: Org, client_for: Any, settings: Any) -> None:
    settings.LEADCRM_EVENTS_MAX_BATCH = 3
    client = client_for(org.marketing)
    assert client.post(URL, [_event(lead_id=1)] * 4, format="json").status_code == 400
    assert client.post(URL, [], format="json").status_code == 400


def test_anonymous_visitor_events_become_the_leads_once_linked(org: Org, client_for: Any) -> None:
    client = client_for(org.marketing)
    early = [
        _event(visitor_id="v-42", type="pricing_page_view", external_id="a-1"),
        _event(visitor_id="v-42", type="content_download", external_id="a-2"),
    ]
    assert client.post(URL, early, format="json").json()["accepted"] == 2
    assert AnonymousEvent.objects.filter(visitor_id="v-42").count() == 2
    assert client.post(URL, early[:1], format="json").json()["duplicate"] == 1
    lead = LeadFactory.create(email="anon@example.com")

    moved = services.visitor_link(visitor_id="v-42", lead=lead)
    later = client.post(URL, [_event(visitor_id="v-42", type="demo_request")], format="json").json()

    assert moved == 2
    assert later["accepted"] == 1
    assert not AnonymousEvent.objects.exists()
    assert Visitor.objects.get(visitor_id="v-42").lead == lead
    assert sorted(lead.interactions.values_list("type", flat=True)) == [
        "content_download",
        "demo_request",
        "pricing_page_view",
    ]
    assert services.visitor_link(visitor_id="v-42", lead=lead) == 0  # twice: nothing more moves
    lead.refresh_from_db()
    assert lead.dirty_since is not None


def test_last_activity_moves_forward_only(org: Org, client_for: Any) -> None:
    lead = LeadFactory.create(owner=org.rep, team=org.north)
    before = Lead.objects.get(pk=lead.pk).last_activity_at
    client = client_for(org.rep)

    client.post(URL, _event(lead_id=lead.pk, occurred_at="2020-01-01T00:00:00Z"), format="json")
    assert Lead.objects.get(pk=lead.pk).last_activity_at == before
    soon = timezone.now() + timedelta(hours=1)
    client.post(URL, _event(lead_id=lead.pk, occurred_at=soon.isoformat()), format="json")
    assert Lead.objects.get(pk=lead.pk).last_activity_at <= timezone.now()
    assert Lead.objects.get(pk=lead.pk).last_activity_at > before


def test_pipeline_status_is_for_admins_and_shows_dirty_and_throughput(org: Org, client_for: Any) -> None:
    LeadFactory.create(dirty_since=timezone.now() - timedelta(seconds=90))
    PipelineRun.objects.create(leads=3, events=12, failed=1, finished_at=timezone.now())

    assert client_for(org.rep).get(STATUS_URL).status_code == 403
    assert client_for(org.manager).get(STATUS_URL).status_code == 403
    body = client_for(org.admin).get(STATUS_URL).json()

    assert body["dirty_leads"] == 1
    assert 89 <= body["oldest_dirty_age_s"] < 200
    assert (body["events_last_minute"], body["failures_last_hour"]) == (12, 1)
    assert body["queue_depth"] is None  # eager: no broker queue


@pytest.mark.parametrize("payload", [{"properties": {"名字": "王小明", "emoji": "🎉"}}, {"external_id": "外部-1"}])
def test_chinese_and_emoji_data_round_trip(org: Org, client_for: Any, payload: dict[str, Any]) -> None:
    lead = LeadFactory.create(owner=org.rep, team=org.north)
    body = client_for(org.rep).post(URL, _event(lead_id=lead.pk, **payload), format="json").json()
    assert body["accepted"] == 1
    stored = Interaction.objects.get(lead=lead)
    for key, value in payload.items():
        assert getattr(stored, key) == value


def test_a_linked_visitor_cannot_be_pulled_to_another_lead(org: Org) -> None:
    from leads.models import Visitor
    from leads.services.events import visitor_link

    first = LeadFactory.create(owner=org.rep, team=org.north)
    other = LeadFactory.create(owner=org.rep, team=org.north)
    visitor_link(visitor_id="v-123", lead=first)

    moved = visitor_link(visitor_id="v-123", lead=other)

    assert moved == 0
    assert Visitor.objects.get(visitor_id="v-123").lead_id == first.pk
