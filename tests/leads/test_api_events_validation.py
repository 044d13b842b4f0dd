"""The events API's fast validation path must agree with EventSerializer wherever it answers."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.exceptions import ValidationError

from leads.api.events import EventSerializer, fast_validated_event

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
CONTEXT = {"event_types": {"page_view", "email_opened"}, "now": NOW}

LEADS: list[dict[str, Any]] = [
    {"lead_id": 7},
    {"lead_id": "7"},
    {"lead_id": 0},
    {"lead_id": True},
    {"lead_id": 2**63},
    {"email": " Zhang@Example.CN "},
    {"email": "not-an-address"},
    {"email": ""},
    {"visitor_id": " v-1 "},
    {"visitor_id": "x" * 101},
    {"lead_id": 7, "email": ""},
    {},
]
TYPES: list[dict[str, Any]] = [
    {"type": "page_view"},
    {"type": " email_opened "},
    {"type": "unknown"},
    {"type": ""},
    {"type": 5},
    {},
]
TIMES: list[dict[str, Any]] = [
    {"occurred_at": "2026-11-20T10:00:00Z"},
    {"occurred_at": "2026-11-20T18:00:00.123456+08:00"},
    {"occurred_at": "2026-11-20T10:00:00"},  # naive: the serializer applies the current time zone
    {"occurred_at": "2026-12-20T10:00:00Z"},  # a month ahead
    {"occurred_at": "yesterday"},
    {"occurred_at": 1700000000},
    {},
]
EXTRAS: list[dict[str, Any]] = [
    {},
    {"properties": {"url": "https://x.example/pricing", "n": 1}},
    {"properties": []},
    {"properties": None},
    {"properties": {"big": "x" * 20000}},
    {"external_id": " ev-1 "},
    {"external_id": None},
    {"external_id": "a\x00b"},
    {"external_id": "\ud800"},
    {"unknown_key": 1},
]


def _serializer(item: dict[str, Any]) -> dict[str, Any] | None:
    try:
        return dict(EventSerializer(context=CONTEXT).run_validation(item))
    except ValidationError:
        return None


def test_fast_path_agrees_with_the_serializer_on_every_combination() -> None:
    answered = 0
    for parts in itertools.product(LEADS, TYPES, TIMES, EXTRAS):
        item = {k: v for part in parts for k, v in part.items()}
        fast = fast_validated_event(item, CONTEXT)
        if fast is None:
            continue  # the serializer decides, as the view does
        answered += 1
        assert fast == _serializer(item), item
    # It serves every well-formed combination: 4 ways to name the lead × 2 types × 2 aware times × 5 extras.
    assert answered == 4 * 2 * 2 * 5


@pytest.mark.parametrize(
    "item",
    [
        {"lead_id": 7, "type": "page_view", "occurred_at": "2026-11-20T10:00:00Z"},
        {"email": "a@b.example", "type": "page_view", "occurred_at": "2026-11-20T10:00:00+08:00", "properties": {}},
        {"visitor_id": "v1", "type": "email_opened", "occurred_at": "2026-11-20T10:00:00Z", "external_id": "e1"},
    ],
)
def test_well_formed_events_take_the_fast_path(item: dict[str, Any]) -> None:
    assert fast_validated_event(item, CONTEXT) is not None


def test_every_error_is_left_to_the_serializer() -> None:
    bad = {"lead_id": 7, "type": "nope", "occurred_at": (NOW + timedelta(days=3)).isoformat()}
    assert fast_validated_event(bad, CONTEXT) is None
    with pytest.raises(ValidationError) as raised:
        EventSerializer(context=CONTEXT).run_validation(bad)
    assert set(raised.value.detail) == {"type", "occurred_at"}


def test_times_come_back_in_the_current_time_zone() -> None:
    item = {"lead_id": 7, "type": "page_view", "occurred_at": "2026-11-20T10:00:00Z"}
    with timezone.override("Asia/Shanghai"):
        fast = fast_validated_event(item, CONTEXT)
        assert fast is not None
        assert fast == _serializer(item)
        assert fast["occurred_at"].utcoffset() == timedelta(hours=8)
