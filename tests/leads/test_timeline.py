"""A lead's timeline: interactions, stage changes and completed tasks merged newest first, keyset-paginated."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from rest_framework.test import APIClient

from leads import selectors
from leads.models import Lead, LeadStageChange, Stage, Task
from tests.conftest import Org
from tests.factories import InteractionFactory, LeadFactory
from users.models import User

ClientFor = Callable[[User], APIClient]
T0 = datetime.fromisoformat("2026-03-01T09:00:00+00:00")


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def timeline_url(lead: Lead, query: str = "") -> str:
    return f"/api/v1/leads/{lead.pk}/timeline/{query}"


def history_lead(org: Org) -> Lead:
    """A lead with a known history: created, viewed pricing, called, moved to contacted, a task done, one open."""
    lead = LeadFactory.create(owner=org.rep, team=org.north, created_at=at(0))
    LeadStageChange.objects.create(lead=lead, from_stage="", to_stage=Stage.NEW, changed_at=at(0))
    InteractionFactory.create(lead=lead, type="pricing_page_view", occurred_at=at(10), properties={"url": "/pricing"})
    InteractionFactory.create(lead=lead, type="call", occurred_at=at(20), created_by=org.rep, properties={"note": "hi"})
    LeadStageChange.objects.create(
        lead=lead, from_stage=Stage.NEW, to_stage=Stage.CONTACTED, changed_at=at(20), changed_by=org.rep
    )
    Task.objects.create(lead=lead, assignee=org.rep, title="Send deck", due_at=at(25), done_at=at(30))
    Task.objects.create(lead=lead, assignee=org.rep, title="Still open", due_at=at(40))
    return lead


def test_timeline_merges_everything_newest_first(org: Org, client_for: ClientFor) -> None:
    # given a lead with interactions, stage changes and tasks (one done, one open)
    lead = history_lead(org)

    # when the owner reads its timeline
    response = client_for(org.rep).get(timeline_url(lead))

    # then everything that happened is there, newest first; the open task has not happened yet
    assert response.status_code == 200
    entries = response.json()["results"]
    assert [(e["kind"], e["label"]) for e in entries] == [
        ("task", "Task done"),
        ("interaction", "Call"),  # same minute as the stage move it caused: the call reads first
        ("stage", "Stage changed"),
        ("interaction", "Pricing page view"),
        ("stage", "Lead created"),
    ]
    assert entries[0]["title"] == "Send deck"
    assert entries[1]["properties"] == {"note": "hi"}
    assert entries[1]["actor"]["username"] == "rep"
    assert (entries[2]["from_stage"], entries[2]["to_stage"]) == (Stage.NEW, Stage.CONTACTED)
    assert response.json()["next"] is None


@pytest.mark.parametrize("page_size", [1, 2, 3, 4])
def test_timeline_pages_cover_every_entry_once(org: Org, client_for: ClientFor, page_size: int) -> None:
    # given a lead with ties on the same timestamp across kinds and within one kind
    lead = history_lead(org)
    InteractionFactory.create(lead=lead, type="email_open", occurred_at=at(20))
    InteractionFactory.create(lead=lead, type="email_click", occurred_at=at(20))
    Task.objects.create(lead=lead, assignee=org.rep, title="Tied", due_at=at(1), done_at=at(20))
    client = client_for(org.rep)
    everything = client.get(timeline_url(lead, "?page_size=100")).json()["results"]

    # when it is read page by page
    walked: list[dict[str, Any]] = []
    url: str | None = timeline_url(lead, f"?page_size={page_size}")
    while url:
        body = client.get(url).json()
        assert len(body["results"]) <= page_size
        walked += body["results"]
        url = body["next"]

    # then the pages add up to the whole timeline, same order, nothing twice
    assert [(e["kind"], e["id"]) for e in walked] == [(e["kind"], e["id"]) for e in everything]
    assert len(everything) == 8


def test_timeline_labels_follow_the_language(org: Org, client_for: ClientFor) -> None:
    # given a lead with a call and an event type nobody catalogued
    lead = LeadFactory.create(owner=org.rep, team=org.north)
    InteractionFactory.create(lead=lead, type="call", occurred_at=at(1))
    InteractionFactory.create(lead=lead, type="legacy_crm_ping", occurred_at=at(2))

    # when it is read in Chinese
    body = client_for(org.rep).get(timeline_url(lead), HTTP_ACCEPT_LANGUAGE="zh-hans").json()

    # then catalogued types are in Chinese and the unknown one shows its key
    assert [e["label"] for e in body["results"]] == ["legacy_crm_ping", "电话"]


@pytest.mark.parametrize("who", ["rep_south", "rep2"])
def test_timeline_of_an_invisible_lead_is_404(org: Org, client_for: ClientFor, who: str) -> None:
    lead = history_lead(org)  # org.rep's lead: neither South nor a North teammate sees it
    assert client_for(getattr(org, who)).get(timeline_url(lead)).status_code == 404


def test_timeline_bad_cursor_is_a_field_error(org: Org, client_for: ClientFor) -> None:
    lead = history_lead(org)
    client = client_for(org.rep)
    for cursor in ("garbage", "eyJ0IjoieCJ9", "eyJ0IjoiMjAyNi0wMS0wMVQwMDowMDowMFoiLCJrIjoiZmF4IiwiaWQiOjF9"):
        response = client.get(timeline_url(lead, f"?cursor={cursor}"))
        assert response.status_code == 400
        assert "cursor" in response.json()


def test_timeline_query_count_does_not_grow(
    org: Org, client_for: ClientFor, django_assert_max_num_queries: Callable[..., Any]
) -> None:
    # given a lead with 60 interactions by different people, 20 stage changes and 20 done tasks
    lead = LeadFactory.create(owner=org.rep, team=org.north)
    people = [org.rep, org.rep2, org.manager]
    for i in range(60):
        InteractionFactory.create(lead=lead, type="call", occurred_at=at(i), created_by=people[i % 3])
    for i in range(20):
        LeadStageChange.objects.create(lead=lead, to_stage=Stage.NURTURING, changed_at=at(i), changed_by=people[i % 3])
        Task.objects.create(lead=lead, assignee=people[i % 3], title=f"t{i}", due_at=at(i), done_at=at(i))
    client = client_for(org.manager)

    # when a full page is read: lead lookup, catalogue, three sources (+ auth/role lookups), no N+1
    with django_assert_max_num_queries(9):
        body = client.get(timeline_url(lead, "?page_size=100")).json()
    assert len(body["results"]) == 100


def test_selector_page_is_independent_of_depth(org: Org) -> None:
    # given a long timeline, the selector reads at most one page (+1) from each source per call
    lead = LeadFactory.create(owner=org.rep, team=org.north)
    for i in range(30):
        InteractionFactory.create(lead=lead, type="page_view", occurred_at=at(i))
    labels = selectors.EventTypeLabels()
    first = selectors.lead_timeline(lead=lead, labels=labels, page_size=10)
    second = selectors.lead_timeline(lead=lead, labels=labels, cursor=first.next_cursor, page_size=10)
    assert [e.occurred_at for e in first.entries] == [at(i) for i in range(29, 19, -1)]
    assert [e.occurred_at for e in second.entries] == [at(i) for i in range(19, 9, -1)]
