"""The lead list's rows, rendered from ``values()`` instead of model instances and DRF fields.

A list page is 50 leads × 39 fields. Through ``LeadSerializer`` that is ~2,000 DRF field calls plus 50
model instances with their owner, team and campaign, and a tag prefetch that builds 50 more querysets:
about 40 ms of Python against 2–5 ms of SQL (``docs/benchmarks.md``). Here one query reads exactly the
columns the representation needs, one more reads the tag names of the page, and each row is turned
into the serializer's output by a plan derived from ``LeadSerializer`` itself, so the two cannot drift
apart: a field of a kind this module does not know makes the plan fail loudly, and a test compares the
two representations lead by lead.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, tzinfo
from functools import cache
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db.models import QuerySet
from django.utils import timezone
from rest_framework import serializers

from leads.api.serializers import LeadSerializer, UserBriefSerializer
from leads.models import SCORE_FIELDS, SCORE_PATHS, Lead, LeadScore

Row = dict[str, Any]
# Columns of the owner read with the row: what ``UserBriefSerializer`` (and ``User.__str__``) need.
OWNER_COLUMNS = ("owner__username", "owner__display_name", "owner__first_name", "owner__last_name")


def _datetime(value: datetime, tz: tzinfo) -> str:
    """What ``serializers.DateTimeField`` writes: ISO 8601 in the current time zone, UTC as ``Z``."""
    text = value.astimezone(tz).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _owner_brief(row: Row) -> dict[str, Any]:
    """``UserBriefSerializer`` of the row's owner, with ``User.__str__`` spelled out on the columns."""
    full_name = f"{row['owner__first_name']} {row['owner__last_name']}".strip()
    name = row["owner__display_name"] or full_name or row["owner__username"]
    return {"id": row["owner_id"], "username": row["owner__username"], "name": name}


# One step of the plan: (output key, column, kind).
Step = tuple[str, str, str]


@cache
def _plan() -> tuple[Step, ...]:
    """How each field of ``LeadSerializer`` is rendered from a row; unknown kinds are a programming error."""
    steps: list[Step] = []
    for name, field in LeadSerializer().fields.items():
        if field.write_only:
            continue
        if name == "owner_detail" and isinstance(field, UserBriefSerializer) and field.source == "owner":
            steps.append((name, "owner_id", "owner"))
            continue
        if field.source != name:
            raise ImproperlyConfigured(f"leads.api.listing cannot render LeadSerializer.{name} (source {field.source})")
        if name == "tags":
            steps.append((name, "id", "tags"))
        elif isinstance(field, serializers.PrimaryKeyRelatedField):
            steps.append((name, f"{name}_id", "plain"))
        elif isinstance(field, serializers.DateTimeField):
            steps.append((name, name, "datetime"))
        elif isinstance(field, serializers.ListField) and isinstance(field.child, serializers.CharField):
            steps.append((name, name, "str_list"))
        elif isinstance(field, serializers.DictField):
            steps.append((name, name, "dict"))
        elif isinstance(field, serializers.BooleanField):
            steps.append((name, name, "bool"))
        elif isinstance(field, serializers.IntegerField):
            steps.append((name, name, "int"))
        elif isinstance(field, serializers.FloatField):
            steps.append((name, name, "float"))
        elif isinstance(field, serializers.ChoiceField | serializers.CharField):
            steps.append((name, name, "str"))
        else:
            raise ImproperlyConfigured(
                f"leads.api.listing cannot render LeadSerializer.{name} ({type(field).__name__})"
            )
    return tuple(steps)


def lead_list_values(queryset: QuerySet[Lead]) -> QuerySet[Lead, Row]:
    """``queryset`` narrowed to the columns the list renders (owner columns joined, no tag prefetch)."""
    columns = dict.fromkeys(column for _, column, kind in _plan() if kind not in ("owner", "tags"))
    columns.update(dict.fromkeys(("id", "owner_id")))
    # The score card's columns come from a second query over the page's ids (``_cards``): joined here,
    # the card table would be part of every plan, and with it the planner walks the ordering index
    # instead of the trigram index for a rare ?q= term (942 ms instead of 2 ms at 1M leads).
    plain = [name for name in columns if name not in SCORE_PATHS]
    return queryset.select_related(None).prefetch_related(None).values(*plain, *OWNER_COLUMNS)


def _tag_names(lead_ids: Iterable[int]) -> dict[int, list[str]]:
    """Sorted tag names per lead, in one query."""
    names: defaultdict[int, list[str]] = defaultdict(list)
    through = Lead.tags.through.objects.filter(lead_id__in=list(lead_ids)).order_by()
    for lead_id, name in through.values_list("lead_id", "tag__name"):
        names[lead_id].append(name)
    for tag_list in names.values():
        tag_list.sort()
    return names


def _cards(lead_ids: Iterable[int]) -> dict[int, dict[str, Any]]:
    """The score card values of each lead, in one query."""
    names = [name for name in SCORE_FIELDS if name in {column for _, column, _ in _plan()}]
    rows = LeadScore.objects.filter(lead_id__in=list(lead_ids)).order_by().values("lead_id", *names)
    return {row.pop("lead_id"): row for row in rows}


def lead_list_representation(
    rows: Sequence[Row], *, tag_names: dict[int, list[str]] | None = None
) -> list[dict[str, Any]]:
    """Rows from ``lead_list_values`` as ``LeadSerializer(many=True).data`` would render the same leads.

    ``tag_names`` saves the tag query when the caller knows every row's tags (sorted), e.g. a lead it
    has just created without tags.
    """
    tz = timezone.get_current_timezone()
    tags = tag_names if tag_names is not None else (_tag_names(row["id"] for row in rows) if rows else {})
    renderers: dict[str, Callable[[Any], Any]] = {
        "plain": lambda value: value,
        "str": str,
        "int": int,
        "float": float,
        "bool": bool,
        "datetime": lambda value: _datetime(value, tz),
        "str_list": lambda value: [None if item is None else str(item) for item in value],
        "dict": lambda value: {str(key): item for key, item in value.items()},
    }
    plan = _plan()
    cards = _cards(row["id"] for row in rows) if rows else {}
    results = []
    for row in rows:
        row = {**row, **cards.get(row["id"], {})}
        out: dict[str, Any] = {}
        for name, column, kind in plan:
            if kind == "tags":
                out[name] = tags.get(row["id"], [])
            elif kind == "owner":
                out[name] = None if row["owner_id"] is None else _owner_brief(row)
            else:
                value = row[column]
                out[name] = None if value is None else renderers[kind](value)
        results.append(out)
    return results
