"""Logging a call, e-mail, meeting or note on a lead: the service and ``POST /api/v1/leads/<id>/activities/``."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.utils import timezone, translation
from pytest_django import DjangoAssertNumQueries
from rest_framework.test import APIClient

from leads import selectors, services
from leads.models import EventType, Interaction, Lead, LeadStageChange, Stage
from tests.conftest import Org
from tests.factories import LeadFactory
from users.models import User

ClientFor = Callable[[User], APIClient]


def activities_url(lead: Lead) -> str:
    return f"/api/v1/leads/{lead.pk}/activities/"


# --- the service ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["call", "email", "meeting"])
def test_owners_first_touch_moves_a_new_lead_to_contacted(org: Org, kind: str) -> None:
    # given a new lead owned by a rep
    lead = LeadFactory.create(owner=org.rep, team=org.north)

    # when the rep logs a touch with a note
    interaction = services.activity_log(lead=lead, kind=kind, note="Talked budget", by=org.rep)

    # then the activity is on the lead, the lead is contacted, stamped once, with the rep in the history
    lead.refresh_from_db()
    assert (interaction.type, interaction.properties, interaction.created_by) == (
        kind,
        {"note": "Talked budget"},
        org.rep,
    )
    assert lead.stage == Stage.CONTACTED
    assert lead.first_contacted_at is not None
    change = LeadStageChange.objects.filter(lead=lead).latest("changed_at")
    assert (change.from_stage, change.to_stage, change.changed_by) == (Stage.NEW, Stage.CONTACTED, org.rep)


@pytest.mark.parametrize(
    ("kind", "actor", "stage"),
    [
        ("note", "rep", Stage.NEW),  # a note is not a touch
        ("call", "manager", Stage.NEW),  # someone else calling is not the owner's first touch
        ("call", "rep", Stage.MQL),  # only a new lead moves; a qualified one never goes back
        ("call", "rep", Stage.LOST),
    ],
)
def test_activity_that_is_not_the_owners_first_touch_leaves_the_stage(
    org: Org, kind: str, actor: str, stage: str
) -> None:
    # given a rep's lead at some stage
    lead = LeadFactory.create(owner=org.rep, team=org.north, stage=stage)

    # when an activity is logged
    services.activity_log(lead=lead, kind=kind, note="x", by=getattr(org, actor))

    # then the stage and the first-contact stamp are untouched, and it is still on the timeline
    lead.refresh_from_db()
    assert lead.stage == stage
    assert lead.first_contacted_at is None
    assert Interaction.objects.filter(lead=lead, type=kind).count() == 1


def test_second_call_keeps_the_first_contact_time(org: Org) -> None:
    # given a lead the rep has already called once
    lead = LeadFactory.create(owner=org.rep, team=org.north)
    services.activity_log(lead=lead, kind="call", by=org.rep)
    lead.refresh_from_db()
    first = lead.first_contacted_at

    # when they call again
    services.activity_log(lead=lead, kind="call", outcome="connected", by=org.rep)

    # then nothing about the first contact moves, and one stage change was written in all
    lead.refresh_from_db()
    assert lead.first_contacted_at == first
    assert LeadStageChange.objects.filter(lead=lead, to_stage=Stage.CONTACTED).count() == 1


def test_logging_marks_the_lead_for_rescoring_and_moves_last_activity(org: Org) -> None:
    # given a lead untouched for a week
    week_ago = timezone.now() - timedelta(days=7)
    lead = LeadFactory.create(owner=org.rep, team=org.north, created_at=week_ago, last_activity_at=week_ago)

    # when a meeting is logged
    services.activity_log(lead=lead, kind="meeting", by=org.rep)

    # then the pipeline will pick it up, and the list's "last activity" is now
    lead.refresh_from_db()
    assert lead.dirty_since is not None
    assert lead.last_activity_at > week_ago


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"kind": "page_view"}, "kind"),  # a real event type, but not one a person logs
        ({"kind": "fax"}, "kind"),
        ({"kind": "note", "note": "   "}, "note"),
        ({"kind": "call", "note": "x" * 10_001}, "note"),
        ({"kind": "call", "outcome": "exploded"}, "outcome"),
        ({"kind": "call", "occurred_at": timezone.now() + timedelta(days=1)}, "occurred_at"),
    ],
)
def test_bad_activity_names_the_field_and_stores_nothing(org: Org, kwargs: dict[str, object], field: str) -> None:
    # given a new lead
    lead = LeadFactory.create(owner=org.rep, team=org.north)

    # when a bad activity is logged
    with pytest.raises(ValidationError) as raised:
        services.activity_log(lead=lead, by=org.rep, **kwargs)  # type: ignore[arg-type]

    # then the error names the field and nothing was written
    assert field in raised.value.message_dict
    lead.refresh_from_db()
    assert lead.stage == Stage.NEW
    assert not Interaction.objects.filter(lead=lead).exists()


def test_a_deactivated_event_type_cannot_be_logged(org: Org) -> None:
    # given an admin switched "meeting" off in the catalogue
    EventType.objects.filter(key="meeting").update(is_active=False)
    lead = LeadFactory.create(owner=org.rep, team=org.north)

    # when a meeting is logged, then it is refused on the kind
    with pytest.raises(ValidationError) as raised:
        services.activity_log(lead=lead, kind="meeting", by=org.rep)
    assert "kind" in raised.value.message_dict


def test_chinese_note_keeps_its_punctuation_and_line_breaks(org: Org) -> None:
    # given a lead
    lead = LeadFactory.create(owner=org.rep, team=org.north, name="王小明")

    # when a rep writes a Chinese note over two lines
    interaction = services.activity_log(
        lead=lead, kind="note", note="  客户说：下周再联系。\r\n预算约５０万！  ", by=org.rep
    )

    # then it is stored as written (full-width characters are not folded), trimmed, with a plain newline
    assert interaction.properties["note"] == "客户说：下周再联系。\n预算约５０万！"


def test_event_type_labels_follow_the_language_with_one_query(
    org: Org, django_assert_num_queries: DjangoAssertNumQueries
) -> None:
    # given the built-in catalogue and a request-scoped label cache
    labels = selectors.EventTypeLabels()

    # when many labels are looked up, in English and in Chinese
    with django_assert_num_queries(1):
        with translation.override("en"):
            english = [labels.label(key) for key in ("call", "page_view", "call", "no_such_type")]
        with translation.override("zh-hans"):
            chinese = [labels.label(key) for key in ("call", "page_view", "no_such_type")]

    # then each is in the active language, an unknown key shows as itself, and the catalogue was read once
    assert english == ["Call", "Page view", "Call", "no_such_type"]
    assert chinese == ["电话", "页面浏览", "no_such_type"]


def test_a_catalogue_type_without_chinese_name_falls_back_to_english(org: Org) -> None:
    EventType.objects.create(key="trade_show_visit", name="Trade-show booth visit")
    with translation.override("zh-hans"):
        assert selectors.EventTypeLabels().label("trade_show_visit") == "Trade-show booth visit"


# --- the API -----------------------------------------------------------------------------------


def test_api_logs_a_call_and_answers_with_the_label_and_new_stage(org: Org, client_for: ClientFor) -> None:
    # given a rep's new lead
    lead = LeadFactory.create(owner=org.rep, team=org.north)

    # when the rep posts a call with an outcome
    response = client_for(org.rep).post(
        activities_url(lead), {"kind": "call", "note": "Interested in Q3", "outcome": "connected"}, format="json"
    )

    # then it is created, labelled, and the lead is contacted
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["type"] == "call"
    assert body["label"] == "Call"
    assert body["properties"] == {"note": "Interested in Q3", "outcome": "connected"}
    assert body["created_by"]["username"] == "rep"
    assert body["lead_stage"] == Stage.CONTACTED


def test_api_backdated_activity_keeps_its_time(org: Org, client_for: ClientFor) -> None:
    # given a lead and a meeting that happened yesterday
    lead = LeadFactory.create(owner=org.rep, team=org.north)
    yesterday = (timezone.now() - timedelta(days=1)).replace(microsecond=0)

    # when it is logged afterwards
    response = client_for(org.rep).post(
        activities_url(lead), {"kind": "meeting", "occurred_at": yesterday.isoformat()}, format="json"
    )

    # then the interaction carries the time it happened
    assert response.status_code == 201, response.content
    assert Interaction.objects.get(lead=lead).occurred_at == yesterday


@pytest.mark.parametrize("owner", ["rep_south", None])
def test_api_rep_cannot_log_on_another_teams_lead(org: Org, client_for: ClientFor, owner: str | None) -> None:
    # given a lead of the South team (owned, or in South's pool)
    lead = LeadFactory.create(owner=getattr(org, owner) if owner else None, team=org.south)

    # when a North rep tries to log a call on it
    response = client_for(org.rep).post(activities_url(lead), {"kind": "call"}, format="json")

    # then it does not exist for them, and nothing is stored
    assert response.status_code == 404
    assert not Interaction.objects.filter(lead=lead).exists()


def test_api_unknown_lead_is_404_like_an_invisible_one(org: Org, client_for: ClientFor) -> None:
    response = client_for(org.rep).post("/api/v1/leads/987654/activities/", {"kind": "call"}, format="json")
    assert response.status_code == 404


def test_api_bad_input_gets_field_errors(org: Org, client_for: ClientFor) -> None:
    # given a rep's lead
    lead = LeadFactory.create(owner=org.rep, team=org.north)

    # when they post an unknown kind, a bad outcome and a bad date
    response = client_for(org.rep).post(
        activities_url(lead), {"kind": "fax", "outcome": "maybe", "occurred_at": "yesterday-ish"}, format="json"
    )

    # then each field is named and nothing is stored
    assert response.status_code == 400
    assert set(response.json()) == {"kind", "outcome", "occurred_at"}
    assert not Interaction.objects.filter(lead=lead).exists()


def test_api_service_errors_come_back_as_field_errors(org: Org, client_for: ClientFor) -> None:
    # when a note is posted without text
    lead = LeadFactory.create(owner=org.rep, team=org.north)
    response = client_for(org.rep).post(activities_url(lead), {"kind": "note", "note": ""}, format="json")

    # then the note field says so
    assert response.status_code == 400
    assert "note" in response.json()


def test_api_anonymous_cannot_log(org: Org) -> None:
    lead = LeadFactory.create(owner=org.rep, team=org.north)
    response = APIClient().post(activities_url(lead), {"kind": "call"}, format="json")
    assert response.status_code in (401, 403)
    assert not Interaction.objects.exists()


@pytest.mark.postgres
@pytest.mark.parametrize("attempt", range(3))
def test_first_call_racing_a_qualification_never_moves_the_lead_back(
    transactional_db: None, org: Org, attempt: int
) -> None:
    # given a new lead; its owner logs a call while, at the same moment, it is qualified as MQL
    lead = LeadFactory.create(owner=org.rep, team=org.north)
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def run(action: Callable[[Lead], object]) -> None:
        try:
            fresh = Lead.objects.get(pk=lead.pk)
            barrier.wait(timeout=10)
            action(fresh)
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=run, args=(lambda fresh: services.activity_log(lead=fresh, kind="call", by=org.rep),)),
        threading.Thread(
            target=run,
            args=(lambda fresh: services.lead_change_stage(lead=fresh, stage=Stage.MQL, changed_by=org.manager),),
        ),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    # then whichever came first, the lead ends qualified (never dragged back to contacted),
    # the call is stored, and the history is a consistent chain ending in MQL
    assert errors == []
    lead.refresh_from_db()
    assert lead.stage == Stage.MQL
    assert Interaction.objects.filter(lead=lead, type="call").count() == 1
    chain = list(LeadStageChange.objects.filter(lead=lead).order_by("changed_at", "id"))
    assert chain[-1].to_stage == Stage.MQL
    assert all(a.to_stage == b.from_stage for a, b in itertools.pairwise(chain) if b.from_stage)
