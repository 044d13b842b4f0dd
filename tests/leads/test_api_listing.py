"""The lead list renders plain rows (leads.api.listing); it must say exactly what LeadSerializer says."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework import serializers
from rest_framework.test import APIRequestFactory

from leads.api import listing
from leads.api.serializers import LeadSerializer
from leads.models import Lead, Stage, Tag
from tests.conftest import Org
from tests.factories import CampaignFactory, LeadFactory, make_user
from users.models import Role

LIST_URL = "/api/v1/leads/"


@pytest.fixture
def varied_leads(org: Org) -> list[Lead]:
    """Leads that between them exercise every kind of value the list shows."""
    named = make_user(Role.REP, username="named", team=org.north)
    named.first_name, named.last_name = "Ada", "Lovelace"
    named.save(update_fields=["first_name", "last_name"])
    displayed = make_user(Role.REP, username="displayed", team=org.north, display_name="王小明")
    campaign = CampaignFactory.create(name="Expo")
    full = LeadFactory.create(
        name="张伟 <script>alert(1)</script>",
        email="zhang@example.cn",
        phone="+8613800138000",
        company="ＡＣＭＥ",
        website="https://acme.example",
        interests=["crm", "报表"],
        attributes={"plan": "enterprise", "seats": 50, "trial": True, "ratio": 0.5, "note": None},
        campaign=campaign,
        owner=named,
        team=org.north,
        stage=Stage.LOST,
        lost_reason="budget",
        mql_at=datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC),
        lost_at=datetime(2026, 2, 1, tzinfo=UTC),
        score=87,
        grade="A",
        score_updated_at=datetime(2026, 2, 1, 12, tzinfo=UTC),
        do_not_contact=True,
    )
    full.tags.set([Tag.objects.create(name=n) for n in ("vip", "expo", "展会")])
    bare = LeadFactory.create(name="Bare", email="", phone="", owner=None, team=None, campaign=None)
    by_display = LeadFactory.create(name="Shown", owner=displayed, team=org.north)
    by_username = LeadFactory.create(name="Plain", owner=org.rep, team=org.north)
    return [full, bare, by_display, by_username]


def _serializer_rows(leads: list[Lead], org: Org) -> dict[int, dict[str, Any]]:
    request = APIRequestFactory().get(LIST_URL)
    request.user = org.admin
    fresh = (
        Lead.objects.select_related("owner", "team", "campaign")
        .prefetch_related("tags")
        .filter(pk__in=[lead.pk for lead in leads])
    )
    data = LeadSerializer(fresh, many=True, context={"request": request}).data
    return {row["id"]: dict(row) for row in data}


@pytest.mark.parametrize("zone", ["UTC", "Asia/Shanghai"])
def test_list_rows_equal_the_serializer_lead_by_lead(org: Org, client_for, varied_leads, zone) -> None:
    with timezone.override(zone):
        expected = _serializer_rows(varied_leads, org)
        rows = listing.lead_list_representation(list(listing.lead_list_values(Lead.objects.all())))
    got = {row["id"]: row for row in rows}
    assert got.keys() == expected.keys()
    for lead_id, row in expected.items():
        assert got[lead_id] == row, lead_id
        assert list(got[lead_id]) == list(row)  # same keys in the same order


def test_list_endpoint_serves_the_same_json_as_retrieve(org: Org, client_for, varied_leads) -> None:
    client = client_for(org.admin)
    listed = {row["id"]: row for row in client.get(LIST_URL).json()["results"]}
    for lead in varied_leads:
        assert listed[lead.pk] == client.get(f"{LIST_URL}{lead.pk}/").json()
    full = listed[varied_leads[0].pk]
    assert full["tags"] == ["expo", "vip", "展会"]
    assert full["owner_detail"]["name"] == "Ada Lovelace"
    assert full["mql_at"] == "2026-01-02T03:04:05.123456Z"
    assert listed[varied_leads[2].pk]["owner_detail"]["name"] == "王小明"
    assert listed[varied_leads[1].pk]["owner_detail"] is None


def test_list_reads_three_queries_whatever_the_page_holds(org: Org, client_for) -> None:
    """Rows, tag names and score cards: no per-row query, no per-row prefetch queryset."""
    for i in range(30):
        lead = LeadFactory.create(name=f"L{i}", owner=org.rep, team=org.north)
        lead.tags.set([Tag.objects.get_or_create(name=f"t{i % 4}")[0]])
    client = client_for(org.admin)
    client.get(LIST_URL)  # warm the key's last-used stamp
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(LIST_URL + "?page_size=30")
    assert len(response.json()["results"]) == 30
    lead_queries = [q["sql"] for q in ctx.captured_queries if '"leads_lead' in q["sql"]]
    assert len(lead_queries) == 3, lead_queries


def test_an_unknown_serializer_field_kind_fails_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    class Extra(LeadSerializer):
        extra = serializers.DecimalField(max_digits=5, decimal_places=2, read_only=True)

        class Meta(LeadSerializer.Meta):
            fields = [*LeadSerializer.Meta.fields, "extra"]

    monkeypatch.setattr(listing, "LeadSerializer", Extra)
    listing._plan.cache_clear()
    try:
        with pytest.raises(ImproperlyConfigured, match="extra"):
            listing._plan()
    finally:
        listing._plan.cache_clear()


def test_the_api_filterset_builds_only_the_filters_a_request_names(org: Org) -> None:
    from django.http import QueryDict

    from leads.filters import LeadApiFilter

    request = APIRequestFactory().get(LIST_URL)
    request.user = org.admin
    named = LeadApiFilter(data=QueryDict("stage=new&score_min=5&attr.plan=x"), queryset=Lead.objects.all())
    assert set(named.filters) == {"stage", "score_min"}
    assert set(LeadApiFilter(data=QueryDict(""), queryset=Lead.objects.all()).filters) == set()
    bad = LeadApiFilter(data=QueryDict("score_min=lots"), queryset=Lead.objects.all(), request=request)
    assert not bad.is_valid()
    assert "score_min" in bad.errors


def test_the_schema_still_documents_every_lead_filter(org: Org, client_for) -> None:
    from leads.filters import LeadFilter

    schema = client_for(org.admin).get("/api/schema/?format=json").json()
    params = {p["name"] for p in schema["paths"]["/api/v1/leads/"]["get"]["parameters"]}
    assert set(LeadFilter.base_filters) <= params


def test_the_row_query_joins_the_score_cards_only_when_it_sorts_on_them(org: Org, client_for) -> None:
    """Joined, the card table changes PostgreSQL's plan for ?q= (an index walk over a million leads)."""
    LeadFactory.create_batch(3, owner=org.rep, team=org.north, score=30)
    client = client_for(org.admin)
    client.get(LIST_URL)  # warm the key's last-used stamp

    def row_query(query: str) -> str:
        with CaptureQueriesContext(connection) as ctx:
            response = client.get(LIST_URL + query)
        assert response.status_code == 200
        assert [row["score"] for row in response.json()["results"]] == [30, 30, 30]
        return next(q["sql"] for q in ctx.captured_queries if 'FROM "leads_lead"' in q["sql"])

    assert "leads_leadscore" not in row_query("?q=lead&ordering=-created_at")
    assert "leads_leadscore" in row_query("?q=lead&ordering=-score")
