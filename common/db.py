"""Database helpers: PostgreSQL-only migration SQL, a faster timestamp loader for psycopg, SQLite functions."""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any

from django.db import migrations

try:
    import psycopg
    from psycopg.adapt import Loader
    from psycopg.pq import Format
    from psycopg.types.datetime import TimestamptzLoader

    # The process-wide default: psycopg-binary's C loader when it is installed.
    _DEFAULT_TIMESTAMPTZ_LOADER = (
        psycopg.postgres.adapters.get_loader(psycopg.postgres.types["timestamptz"].oid, Format.TEXT)
        or TimestamptzLoader
    )
except ImportError:  # pragma: no cover - psycopg is a dependency; SQLite-only installs never connect
    Loader = object  # type: ignore[assignment,misc]


class PostgresOnlySQL(migrations.RunSQL):
    """RunSQL that applies on PostgreSQL only: the embedded SQLite demo has no GIN or trigram indexes."""

    def database_forwards(self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any) -> None:
        if schema_editor.connection.vendor == "postgresql":
            super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any) -> None:
        if schema_editor.connection.vendor == "postgresql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)


class UtcTimestamptzLoader(Loader):
    """Loads ``timestamptz`` with psycopg's C parser on connections whose time zone is UTC.

    Django registers a Python subclass of psycopg's pure-Python loader on every connection, only to set
    ``tzinfo=timezone.utc``; a list page of 50 leads parses ~270 timestamps that way, ~3 ms of CPU. On a
    UTC connection (Django's own setting with ``USE_TZ``) psycopg's default loader, the C one when
    psycopg-binary is installed, already returns ``timezone.utc`` datetimes: this wraps it, keeping the
    ``timezone`` attribute Django compares before each cursor (a mismatch would re-register its own).
    """

    timezone = datetime.UTC

    def __init__(self, oid: int, context: Any = None) -> None:
        super().__init__(oid, context)
        self._inner = _DEFAULT_TIMESTAMPTZ_LOADER(oid, context)

    def load(self, data: Any) -> Any:
        return self._inner.load(data)


def use_fast_timestamptz_loader(*, sender: Any, connection: Any, **kwargs: Any) -> None:
    """``connection_created`` receiver: install ``UtcTimestamptzLoader`` where it gives Django's answer."""
    if connection.vendor != "postgresql" or connection.timezone is not datetime.UTC:
        return
    pg = connection.connection
    if getattr(pg.info, "timezone", None) is not datetime.UTC:
        return  # psycopg would return another tzinfo: keep Django's loader
    pg.adapters.register_loader("timestamptz", UtcTimestamptzLoader)


# SQLite has no regexp_replace: the duplicate keys that PostgreSQL computes in SQL come from Python there.
SQLITE_NAME_KEY = "leadcrm_name_key"
SQLITE_COMPANY_KEY = "leadcrm_company_key"


def register_sqlite_functions(*, sender: Any, connection: Any, **kwargs: Any) -> None:
    """``connection_created`` receiver: the duplicate-key functions on an SQLite connection."""
    if connection.vendor != "sqlite":
        return
    from common.normalize import company_key, name_key

    connection.connection.create_function(SQLITE_NAME_KEY, 1, name_key, deterministic=True)
    connection.connection.create_function(SQLITE_COMPANY_KEY, 1, company_key, deterministic=True)


def pg_array(values: Sequence[Any]) -> str:
    """``values`` as one PostgreSQL array literal (text), for ``%s::bigint[]``, ``%s::text[]`` and the like.

    psycopg adapts a Python list element by element in Python, about 4 µs an element whatever the
    cursor: a 100,000-row ``UPDATE … FROM unnest(…)`` of seven columns spent ~3 s of the GIL just
    quoting its parameters, more than PostgreSQL spent running it. Joining the literal here is done
    by C string methods (~0.1 µs an element). Elements: int, float, str, None, aware datetime, bool.
    """
    if not values:
        return "{}"
    sample = next((v for v in values if v is not None), None)
    if isinstance(sample, bool):
        return "{" + ",".join("NULL" if v is None else ("t" if v else "f") for v in values) + "}"
    if isinstance(sample, int | float):
        return "{" + ",".join("NULL" if v is None else repr(v) for v in values) + "}"
    if isinstance(sample, datetime.datetime):
        return "{" + ",".join("NULL" if v is None else f'"{v.isoformat()}"' for v in values) + "}"
    # Text: every element quoted, backslashes and double quotes escaped (array_in's rules).
    return (
        "{"
        + ",".join(
            "NULL" if v is None else '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values
        )
        + "}"
    )
