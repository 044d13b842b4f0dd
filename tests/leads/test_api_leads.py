"""Creating, changing and deleting leads through /api/v1/leads/, and the API's published schema."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.utils import timezone
from rest_framework.test import APIClient

from leads.models import Lead, LeadStageChange, Stage, Tag
from tests.conftest import Org
from tests.factories import LeadFactory
from users.models import User

LIST_URL = "/api/v1/leads/"


def detail_url(lead_id: int) -> str:
    return f"{LIST_URL}{lead_id}/"


def history_url(lead_id: int) -> str:
    return f"{LIST_URL}{lead_id}/stage-history/"


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


# --- create --------------------------------------------------------------------------------


def test_create_normalizes_contact_fields(org: Org, client_for: Callable[[User], APIClient]) -> None:
    response = client_for(org.marketing).post(
        LIST_URL,
        {
            "name": "  Zhang   Wei 😀 ",
            "email": "  Zhang.Wei@Example.COM ",
            "phone": "138 0013 8000",
            "company": "ＡＣＭＥ　Robotics",
            "country": "cn",
        },
    )

    assert response.status_code == 201, response.json()
    expected = {
        "name": "Zhang Wei 😀",
        "email": "zhang.wei@example.com",
        "phone": "+8613800138000",
        "company": "ACME Robotics",
        "country": "CN",
    }
    assert {field: response.json()[field] for field in expected} == expected
    lead = Lead.objects.get(pk=response.json()["id"])
    assert {field: getattr(lead, field) for field in expected} == expected


def test_create_writes_the_first_stage_history_row(org: Org, client_for: Callable[[User], APIClient]) -> None:
    before = timezone.now()

    response = client_for(org.marketing).post(LIST_URL, {"name": "Li Na"})

    assert response.status_code == 201
    assert response.json()["stage"] == Stage.NEW
    change = LeadStageChange.objects.get(lead_id=response.json()["id"])
    assert (change.from_stage, change.to_stage) == ("", Stage.NEW)
    assert change.changed_by == org.marketing
    assert before <= change.changed_at <= timezone.now()
    assert Lead.objects.get(pk=response.json()["id"]).created_by == org.marketing


def test_create_in_a_later_stage_records_both_moves_and_stamps_it(
    org: Org, client_for: Callable[[User], APIClient]
) -> None:
    client = client_for(org.marketing)

    response = client.post(LIST_URL, {"name": "Hot Lead", "stage": Stage.MQL})

    assert response.status_code == 201
    assert response.json()["stage"] == Stage.MQL
    assert response.json()["mql_at"] is not None
    history = client.get(history_url(response.json()["id"])).json()
    assert [(row["from_stage"], row["to_stage"]) for row in history] == [(Stage.NEW, Stage.MQL), ("", Stage.NEW)]


@pytest.mark.parametrize("role", ["rep", "manager"])
def test_a_lead_created_without_an_owner_stays_visible_to_its_creator(
    org: Org, client_for: Callable[[User], APIClient], role: str
) -> None:
    user = getattr(org, role)
    client = client_for(user)

    created = client.post(LIST_URL, {"name": "My New Lead"})

    assert created.status_code == 201
    assert created.json()["owner"] == user.pk
    assert client.get(detail_url(created.json()["id"])).status_code == 200


def test_create_by_marketing_without_an_owner_goes_to_the_pool(
    org: Org, client_for: Callable[[User], APIClient]
) -> None:
    response = client_for(org.marketing).post(LIST_URL, {"name": "Campaign Lead", "team": org.north.pk})

    assert response.status_code == 201
    assert response.json()["owner"] is None
    # Unassigned in North: every North rep sees it in the pool.
    assert client_for(org.rep2).get(detail_url(response.json()["id"])).status_code == 200


def test_tags_are_created_on_demand_and_reused(org: Org, client_for: Callable[[User], APIClient]) -> None:
    Tag.objects.create(name="vip")
    client = client_for(org.marketing)

    created = client.post(LIST_URL, {"name": "Tagged", "tags": ["vip", "Ｅｘｐｏ 2024", "vip"]})

    assert created.status_code == 201
    assert created.json()["tags"] == ["Expo 2024", "vip"]
    assert sorted(Tag.objects.values_list("name", flat=True)) == ["Expo 2024", "vip"]

    updated = client.patch(detail_url(created.json()["id"]), {"tags": ["webinar"]})

    assert updated.json()["tags"] == ["webinar"]
    assert client.get(detail_url(created.json()["id"])).json()["tags"] == ["webinar"]
    assert set(Tag.objects.values_list("name", flat=True)) == {"Expo 2024", "vip", "webinar"}


INVALID_CREATES = [
    pytest.param({"name": "Bad Mail", "email": "not-an-address"}, "email", id="bad-email"),
    pytest.param({"name": "Bad Phone", "phone": "12"}, "phone", id="bad-phone"),
    pytest.param({"name": "Letters Phone", "phone": "call me maybe"}, "phone", id="letters-phone"),
    pytest.param({"email": "nameless@example.com"}, "name", id="missing-name"),
    pytest.param({"name": "   "}, "name", id="blank-name"),
    pytest.param({"name": "Odd Stage", "stage": "won"}, "stage", id="bad-stage"),
    pytest.param({"name": "Lost Cause", "stage": Stage.LOST}, "lost_reason", id="lost-without-reason"),
    pytest.param(
        {"name": "Nested", "attributes": {"address": {"city": "Shanghai"}}}, "attributes", id="nested-attributes"
    ),
    pytest.param({"name": "Listy", "attributes": {"sizes": [1, 2]}}, "attributes", id="list-attribute"),
    pytest.param({"name": "Not An Object", "attributes": "plan=pro"}, "attributes", id="attributes-not-object"),
    pytest.param({"name": "Huge", "attributes": {"notes": "x" * (65 * 1024)}}, "attributes", id="oversized-attributes"),
    pytest.param({"name": "N" * 201}, "name", id="name-too-long"),
    pytest.param({"name": "Bad Size", "company_size": "huge"}, "company_size", id="bad-company-size"),
    pytest.param({"name": "Ghost Owner", "owner": 999999}, "owner", id="unknown-owner"),
    pytest.param({"name": "Bad Site", "website": "not a url"}, "website", id="bad-website"),
]


@pytest.mark.parametrize(("payload", "field"), INVALID_CREATES)
def test_invalid_create_is_a_field_error_and_writes_nothing(
    org: Org, client_for: Callable[[User], APIClient], payload: dict[str, Any], field: str
) -> None:
    response = client_for(org.marketing).post(LIST_URL, {**payload, "tags": ["should-not-exist"]})

    assert response.status_code == 400
    assert response["Content-Type"].startswith("application/json")
    assert field in response.json()
    assert all(isinstance(message, str) for message in response.json()[field])
    assert Lead.objects.count() == 0
    assert LeadStageChange.objects.count() == 0
    assert not Tag.objects.exists()


def test_several_bad_fields_are_reported_together(org: Org, client_for: Callable[[User], APIClient]) -> None:
    response = client_for(org.marketing).post(LIST_URL, {"name": "Two Problems", "phone": "12", "country": "cn"})
    both = client_for(org.marketing).post(LIST_URL, {"email": "nope", "stage": "won"})

    assert response.status_code == 400
    assert set(response.json()) == {"phone"}
    assert both.status_code == 400
    assert {"email", "stage", "name"} <= set(both.json())
    assert Lead.objects.count() == 0


def test_attributes_within_limits_are_kept(org: Org, client_for: Callable[[User], APIClient]) -> None:
    attributes = {"plan": "enterprise", "seats": 50, "trial": True, "备注": "重要客户"}

    response = client_for(org.marketing).post(LIST_URL, {"name": "Custom", "attributes": attributes})

    assert response.status_code == 201
    assert response.json()["attributes"] == attributes
    assert Lead.objects.get(pk=response.json()["id"]).attributes == attributes


def test_invalid_update_changes_nothing(org: Org, client_for: Callable[[User], APIClient]) -> None:
    lead = LeadFactory.create(name="Steady", email="steady@example.com", phone="+8613800138000", team=org.north)

    response = client_for(org.manager).patch(
        detail_url(lead.pk), {"email": "steady-new@example.com", "phone": "12", "stage": Stage.CONTACTED}
    )

    assert response.status_code == 400
    assert "phone" in response.json()
    lead.refresh_from_db()
    assert (lead.email, lead.phone, lead.stage) == ("steady@example.com", "+8613800138000", Stage.NEW)
    assert not LeadStageChange.objects.filter(lead=lead).exists()


# --- stage changes -------------------------------------------------------------------------


def test_stage_changes_are_recorded_and_lifecycle_times_stamped_once(
    org: Org, client_for: Callable[[User], APIClient]
) -> None:
    client = client_for(org.manager)
    lead_id = client.post(LIST_URL, {"name": "Journey", "team": org.north.pk}).json()["id"]

    to_mql = client.patch(detail_url(lead_id), {"stage": Stage.MQL}).json()
    client.patch(detail_url(lead_id), {"stage": Stage.NURTURING})
    back_to_mql = client.patch(detail_url(lead_id), {"stage": Stage.MQL}).json()
    to_sql = client.patch(detail_url(lead_id), {"stage": Stage.SQL}).json()
    converted = client.patch(detail_url(lead_id), {"stage": Stage.CONVERTED}).json()

    assert to_mql["mql_at"] is not None
    assert back_to_mql["mql_at"] == to_mql["mql_at"]
    assert to_sql["sql_at"] is not None
    assert converted["converted_at"] is not None
    assert converted["mql_at"] == to_mql["mql_at"]
    assert converted["sql_at"] == to_sql["sql_at"]
    assert converted["lost_at"] is None
    assert parse_time(to_mql["mql_at"]) <= parse_time(to_sql["sql_at"]) <= parse_time(converted["converted_at"])

    history = client.get(history_url(lead_id))
    assert history.status_code == 200
    moves = [(row["from_stage"], row["to_stage"]) for row in history.json()]
    assert moves == [
        (Stage.SQL, Stage.CONVERTED),
        (Stage.MQL, Stage.SQL),
        (Stage.NURTURING, Stage.MQL),
        (Stage.MQL, Stage.NURTURING),
        (Stage.NEW, Stage.MQL),
        ("", Stage.NEW),
    ]
    assert all(row["changed_by"]["username"] == org.manager.username for row in history.json())
    times = [parse_time(row["changed_at"]) for row in history.json()]
    assert times == sorted(times, reverse=True)


def test_stage_change_records_who_and_when(org: Org, client_for: Callable[[User], APIClient]) -> None:
    lead = LeadFactory.create(owner=org.rep, team=org.north)
    before = timezone.now()

    response = client_for(org.rep).patch(detail_url(lead.pk), {"stage": Stage.CONTACTED})

    assert response.status_code == 200
    assert response.json()["first_contacted_at"] is not None
    change = LeadStageChange.objects.get(lead=lead)
    assert (change.from_stage, change.to_stage, change.changed_by) == (Stage.NEW, Stage.CONTACTED, org.rep)
    assert before <= change.changed_at <= timezone.now()


def test_patch_with_the_current_stage_adds_no_history(org: Org, client_for: Callable[[User], APIClient]) -> None:
    lead = LeadFactory.create(owner=org.rep, team=org.north, stage=Stage.CONTACTED)

    response = client_for(org.rep).patch(detail_url(lead.pk), {"stage": Stage.CONTACTED, "job_title": "CTO"})

    assert response.status_code == 200
    assert response.json()["job_title"] == "CTO"
    assert not LeadStageChange.objects.filter(lead=lead).exists()


def test_losing_a_lead_needs_and_keeps_a_reason(org: Org, client_for: Callable[[User], APIClient]) -> None:
    lead = LeadFactory.create(owner=org.rep, team=org.north)
    client = client_for(org.rep)

    refused = client.patch(detail_url(lead.pk), {"stage": Stage.LOST})
    lost = client.patch(detail_url(lead.pk), {"stage": Stage.LOST, "lost_reason": "No budget"})

    assert refused.status_code == 400
    assert "lost_reason" in refused.json()
    assert lost.status_code == 200
    assert lost.json()["lost_reason"] == "No budget"
    assert lost.json()["lost_at"] is not None
    assert client.get(history_url(lead.pk)).json()[0]["reason"] == "No budget"

    client.patch(detail_url(lead.pk), {"stage": Stage.RECYCLED})
    lost_again = client.patch(detail_url(lead.pk), {"stage": Stage.LOST, "lost_reason": "Chose a competitor"})

    assert lost_again.status_code == 200
    assert lost_again.json()["lost_at"] == lost.json()["lost_at"]
    assert lost_again.json()["lost_reason"] == "Chose a competitor"


def test_stage_history_of_an_invisible_lead_is_404(org: Org, client_for: Callable[[User], APIClient]) -> None:
    lead = LeadFactory.create(name="Hidden History", owner=org.rep_south, team=org.south)

    response = client_for(org.rep).get(history_url(lead.pk))

    assert response.status_code == 404
    assert "Hidden History" not in response.content.decode()


def test_score_and_lifecycle_times_cannot_be_written(org: Org, client_for: Callable[[User], APIClient]) -> None:
    lead = LeadFactory.create(owner=org.rep, team=org.north, score=12)

    response = client_for(org.rep).patch(
        detail_url(lead.pk), {"score": 99, "grade": "A", "mql_at": "2020-01-01T00:00:00Z", "company": "Real Change"}
    )

    assert response.status_code == 200
    lead.refresh_from_db()
    assert (lead.score, lead.grade, lead.mql_at, lead.company) == (12, "", None, "Real Change")


# --- update and delete ----------------------------------------------------------------------


def test_update_normalizes_like_create(org: Org, client_for: Callable[[User], APIClient]) -> None:
    lead = LeadFactory.create(owner=org.rep, team=org.north)

    response = client_for(org.rep).patch(
        detail_url(lead.pk), {"email": " NEW@Example.com", "phone": "+86 139-1111-2222", "company": "Ｂｅｔａ"}
    )

    assert response.status_code == 200
    lead.refresh_from_db()
    assert (lead.email, lead.phone, lead.company) == ("new@example.com", "+8613911112222", "Beta")


def test_full_update_with_put(org: Org, client_for: Callable[[User], APIClient]) -> None:
    lead = LeadFactory.create(owner=org.rep, team=org.north, company="Old Co")

    response = client_for(org.rep).put(
        detail_url(lead.pk), {"name": "Renamed", "company": "New Co", "owner": org.rep.pk}
    )

    assert response.status_code == 200
    lead.refresh_from_db()
    assert (lead.name, lead.company, lead.owner) == ("Renamed", "New Co", org.rep)


def test_delete_removes_the_lead_and_its_history(org: Org, client_for: Callable[[User], APIClient]) -> None:
    client = client_for(org.marketing)
    lead_id = client.post(LIST_URL, {"name": "Short Lived", "stage": Stage.MQL}).json()["id"]

    response = client.delete(detail_url(lead_id))

    assert response.status_code == 204
    assert client.get(detail_url(lead_id)).status_code == 404
    assert not Lead.objects.filter(pk=lead_id).exists()
    assert not LeadStageChange.objects.filter(lead_id=lead_id).exists()


# --- schema ------------------------------------------------------------------------------------


def test_openapi_schema_is_served(api_client: APIClient) -> None:
    response = api_client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")

    assert response.status_code == 200
    schema = response.json()
    assert "/api/v1/leads/" in schema["paths"]
    assert "/api/v1/leads/{id}/stage-history/" in schema["paths"]
    assert "ApiKeyAuth" in schema["components"]["securitySchemes"]
    list_params = {p["name"] for p in schema["paths"]["/api/v1/leads/"]["get"]["parameters"]}
    assert {"cursor", "ordering", "page_size", "q", "stage", "attr.<key>"} <= list_params


def test_swagger_ui_is_served(api_client: APIClient) -> None:
    response = api_client.get("/api/docs/")

    assert response.status_code == 200
    assert b"swagger" in response.content.lower()


def test_schema_validates_without_warnings(tmp_path: Path) -> None:
    target = tmp_path / "schema.yaml"

    # Raises SchemaGenerationError on any warning, and on an invalid OpenAPI document.
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target), stderr=StringIO())

    assert "/api/v1/leads/{id}/stage-history/" in target.read_text()
