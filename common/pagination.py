"""Keyset pagination: page N of a million rows costs the same as page 1.

The cursor carries the last row's (ordering key, id); the next page is
``WHERE (key, id) < (:key, :id) ORDER BY key DESC, id DESC LIMIT n``, a row-value comparison
that PostgreSQL (and SQLite) answer by walking the matching (key, id) index from the cursor on.
DRF's CursorPagination falls back to OFFSET among equal keys, which degrades badly when many
leads share a score, hence this class.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import connections
from django.db.models import BooleanField, DateTimeField, F, QuerySet
from django.db.models.expressions import RawSQL
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext_lazy as _
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import BasePagination
from rest_framework.request import Request
from rest_framework.response import Response

MAX_PAGE_SIZE = 200


class KeysetPage:
    """One page of rows plus the cursors that lead away from it."""

    def __init__(self, rows: list[Any], next_cursor: str | None, previous_cursor: str | None) -> None:
        self.rows = rows
        self.next_cursor = next_cursor
        self.previous_cursor = previous_cursor


def _encode(payload: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode().rstrip("=")


def _decode(cursor: str) -> dict[str, Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        payload = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise ValidationError({"cursor": [_("Invalid cursor.")]}) from None
    if not isinstance(payload, dict) or not {"k", "id", "d"} <= payload.keys():
        raise ValidationError({"cursor": [_("Invalid cursor.")]})
    return payload


def _field(row: Any, field: str) -> Any:
    """A column of a row that is a model instance or a ``values()`` dict."""
    return row[field] if isinstance(row, dict) else getattr(row, field)


def _pk(row: Any) -> Any:
    return row["id"] if isinstance(row, dict) else row.pk


def _key_value(row: Any, field: str) -> Any:
    value = _field(row, field)
    return value.isoformat() if isinstance(value, datetime) else value


def _position(payload: dict[str, Any], model_field: Any, connection: Any) -> tuple[Any, int]:
    """The cursor's (key, id) as database values; a cursor is client input, so any mismatch is a 400."""
    key = payload["k"]
    try:
        if payload["d"] not in ("next", "prev") or key is None or isinstance(payload["id"], bool):
            raise ValueError
        row_id = int(payload["id"])
        if isinstance(model_field, DateTimeField):
            key = parse_datetime(key) if isinstance(key, str) else None
            if key is None:
                raise ValueError
        db_key = model_field.get_db_prep_value(model_field.to_python(key), connection=connection)
    except (TypeError, ValueError, DjangoValidationError):
        raise ValidationError({"cursor": [_("Invalid cursor.")]}) from None
    return db_key, row_id


def _key_path(model: Any, path: str) -> tuple[Any, str, str, str]:
    """For an ordering path (``created_at``, or ``scorecard__score`` on a one-to-one): the key's model
    field, its table, the ORM path of the id that breaks ties in the same index, and that id's column."""
    if "__" not in path:
        return model._meta.get_field(path), model._meta.db_table, "id", f'"{model._meta.db_table}"."id"'
    relation_name, name = path.split("__")
    relation = model._meta.get_field(relation_name)
    if not relation.one_to_one:
        raise ValueError(f"keyset ordering {path!r}: only a one-to-one relation keeps one row per {model.__name__}")
    # The related table's own copy of our id: (key, that id) is one index there, and equals our id by the join.
    link = relation.field if relation.auto_created else relation.target_field
    related = relation.related_model
    table = related._meta.db_table
    return related._meta.get_field(name), table, f"{relation_name}__{link.attname}", f'"{table}"."{link.column}"'


def keyset_paginate(
    queryset: QuerySet[Any],
    *,
    ordering: str,
    cursor: str | None,
    page_size: int,
    paths: Mapping[str, str] | None = None,
) -> KeysetPage:
    """Return one page of ``queryset`` ordered by ``ordering`` (e.g. "-score"), then by id.

    ``paths`` maps an ordering name to where it lives when that is not a column of the model itself,
    e.g. ``{"score": "scorecard__score"}`` for a key kept in a one-to-one table (the rows then carry it
    as ``keyset_key``, for the cursor).
    """
    descending = ordering.startswith("-")
    field = ordering.lstrip("-")
    path = (paths or {}).get(field, field)
    model_field, table, id_path, id_column = _key_path(queryset.model, path)
    key_name = field
    if "__" in path:
        # An inner join (every row has its one-to-one row), so PostgreSQL may walk that table's index first.
        queryset = queryset.filter(**{f"{path.split('__')[0]}__isnull": False}).annotate(keyset_key=F(path))
        key_name = "keyset_key"
    backwards = False
    if cursor:
        payload = _decode(cursor)
        if payload.get("o") != ordering:
            raise ValidationError({"cursor": [_("This cursor belongs to another ordering.")]})
        backwards = payload["d"] == "prev"
        db_key, row_id = _position(payload, model_field, connections[queryset.db])
        # Walking forward on a descending order means smaller keys; backwards flips it.
        op = "<" if descending != backwards else ">"
        queryset = queryset.filter(
            RawSQL(
                f'("{table}"."{model_field.column}", {id_column}) {op} (%s, %s)',
                (db_key, row_id),
                output_field=BooleanField(),
            )
        )
    walk_descending = descending != backwards
    order = [f"-{path}", f"-{id_path}"] if walk_descending else [path, id_path]
    rows = list(queryset.order_by(*order)[: page_size + 1])
    has_more = len(rows) > page_size
    rows = rows[:page_size]
    if backwards:
        rows.reverse()
    next_cursor = previous_cursor = None
    if rows:
        first, last = rows[0], rows[-1]
        if has_more or backwards:
            next_cursor = _encode({"o": ordering, "k": _key_value(last, key_name), "id": _pk(last), "d": "next"})
        if cursor and (has_more or not backwards):
            previous_cursor = _encode({"o": ordering, "k": _key_value(first, key_name), "id": _pk(first), "d": "prev"})
    return KeysetPage(rows, next_cursor, previous_cursor)


class KeysetPagination(BasePagination):
    """DRF adapter: ``?ordering=-score&cursor=…&page_size=50``; answers {next, previous, results}."""

    page_size_query_param = "page_size"
    cursor_query_param = "cursor"
    ordering_query_param = "ordering"

    def get_orderings(self, view: Any) -> Sequence[str]:
        fields = getattr(view, "keyset_orderings", ("created_at",))
        return [*fields, *(f"-{f}" for f in fields)]

    def paginate_queryset(self, queryset: QuerySet[Any], request: Request, view: Any = None) -> list[Any]:
        from rest_framework.settings import api_settings

        default_ordering = getattr(view, "keyset_default_ordering", "-created_at")
        ordering = request.query_params.get(self.ordering_query_param, default_ordering)
        if ordering not in self.get_orderings(view):
            raise ValidationError({"ordering": [_("Choose one of: %s.") % ", ".join(self.get_orderings(view))]})
        try:
            size = int(request.query_params.get(self.page_size_query_param, api_settings.PAGE_SIZE or 50))
        except ValueError:
            raise ValidationError({"page_size": [_("A whole number is required.")]}) from None
        size = max(1, min(size, MAX_PAGE_SIZE))
        page = keyset_paginate(
            queryset,
            ordering=ordering,
            cursor=request.query_params.get(self.cursor_query_param),
            page_size=size,
            paths=getattr(view, "keyset_paths", None),
        )
        self.request = request
        self.page = page
        return page.rows

    def _link(self, cursor: str | None) -> str | None:
        if cursor is None:
            return None
        params = self.request.query_params.copy()
        params[self.cursor_query_param] = cursor
        return self.request.build_absolute_uri(f"{self.request.path}?{urlencode(params, doseq=True)}")

    def get_paginated_response(self, data: Any) -> Response:
        return Response(
            {
                "next": self._link(self.page.next_cursor),
                "previous": self._link(self.page.previous_cursor),
                "results": data,
            }
        )

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        return {
            "type": "object",
            "required": ["results"],
            "properties": {
                "next": {"type": "string", "nullable": True, "format": "uri"},
                "previous": {"type": "string", "nullable": True, "format": "uri"},
                "results": schema,
            },
        }

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        return [
            {
                "name": self.cursor_query_param,
                "required": False,
                "in": "query",
                "description": "Opaque cursor from next/previous.",
                "schema": {"type": "string"},
            },
            {
                "name": self.page_size_query_param,
                "required": False,
                "in": "query",
                "description": f"Rows per page (max {MAX_PAGE_SIZE}).",
                "schema": {"type": "integer"},
            },
            {
                "name": self.ordering_query_param,
                "required": False,
                "in": "query",
                "description": "One of: " + ", ".join(self.get_orderings(view)),
                "schema": {"type": "string"},
            },
        ]
