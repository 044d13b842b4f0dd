"""The faster timestamptz loader must give exactly what Django's own loader gives."""

from __future__ import annotations

import datetime

import pytest
from django.db import connection

from common.db import UtcTimestamptzLoader

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

VALUES = [
    "2026-11-22 19:55:05.663261+00",
    "2026-11-22 19:55:05+00",
    "2026-11-22 19:55:05.000001+08",
    "1999-12-31 23:59:59.999999-05:30",
    "0044-03-15 12:00:00+00",
]


def _select(literal: str) -> datetime.datetime:
    with connection.cursor() as cursor:
        cursor.execute("SELECT %s::timestamptz", [literal])
        value = cursor.fetchone()[0]
    assert isinstance(value, datetime.datetime)
    return value


def test_connections_use_it_and_read_the_same_instants_in_utc() -> None:
    connection.ensure_connection()
    registered = connection.connection.adapters.get_loader(connection.connection.adapters.types["timestamptz"].oid, 0)
    assert registered is UtcTimestamptzLoader
    for literal in VALUES:
        value = _select(literal)
        assert value.tzinfo is datetime.UTC
        # the same instant PostgreSQL means, to the microsecond
        with connection.cursor() as cursor:
            cursor.execute("SELECT extract(epoch FROM %s::timestamptz)::numeric * 1000000", [literal])
            micros = int(cursor.fetchone()[0])
        assert (value - datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)) // datetime.timedelta(
            microseconds=1
        ) == micros


def test_django_model_fields_round_trip_through_it() -> None:
    from tests.factories import LeadFactory

    when = datetime.datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=datetime.UTC)
    lead = LeadFactory.create(mql_at=when)
    lead.refresh_from_db()
    assert lead.mql_at == when
    assert lead.mql_at.tzinfo is datetime.UTC
