"""common.db.pg_array: Python lists as one PostgreSQL array literal, equal to what psycopg would send."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from django.db import connection

from common.db import pg_array


def test_literals_quote_and_escape_text() -> None:
    assert pg_array([]) == "{}"
    assert pg_array([1, None, -3]) == "{1,NULL,-3}"
    assert pg_array(["a", "", None, 'say "hi"', "back\\slash", "逗号,{括号}"]) == (
        '{"a","",NULL,"say \\"hi\\"","back\\\\slash","逗号,{括号}"}'
    )
    assert pg_array([True, False, None]) == "{t,f,NULL}"


@pytest.mark.django_db
@pytest.mark.skipif(connection.vendor != "postgresql", reason="array literals are PostgreSQL's")
def test_every_kind_of_value_comes_back_from_postgresql_unchanged() -> None:
    stamp = datetime(2026, 11, 23, 1, 2, 3, 456789, tzinfo=UTC)
    columns: dict[str, list[Any]] = {
        "bigint": [1, None, 2**40],
        "int": [0, -7, None],
        "double precision": [0.123456, None, 1e-05],
        "text": ['q"uote', None, "NULL", "", "a\\b", "中文,{x}", "line\nbreak"],
        "timestamptz": [stamp, None, stamp.astimezone(timezone(timedelta(hours=8)))],
        "boolean": [True, None, False],
    }
    with connection.cursor() as cursor:
        for sql_type, values in columns.items():
            cursor.execute(
                f"SELECT x FROM unnest(%s::{sql_type}[]) WITH ORDINALITY AS t(x, n) ORDER BY n", [pg_array(values)]
            )
            assert [row[0] for row in cursor.fetchall()] == values, sql_type
