"""Cursors for hot hand-written SQL: parameters bound by the server, each statement prepared once per connection.

Django's psycopg 3 cursors bind parameters client-side (``ClientCursor``): every execution quotes each value
into the SQL text in Python and PostgreSQL parses and plans the statement again. For the few statements a
web-form submission runs hundreds of times a second (the dedupe match, the lead INSERT, the timeline INSERT)
``prepared_cursor()`` swaps in a server-binding psycopg cursor that executes with ``prepare=True``: the
first execution on a connection prepares the statement, later ones only bind and execute (the match:
backend 263 → 87 µs, client 142 → 95 µs). Queries still pass through Django's cursor wrapper, so
``execute_wrapper`` and ``CaptureQueriesContext`` see them.

Only for statements whose text is a fixed set of variants (psycopg keeps ``prepared_max`` of them per
connection) and whose parameters have a type PostgreSQL can infer or that the SQL casts. Prepared
statements need a server session per Django connection: fine with Django's persistent connections and
its psycopg pool, not with a transaction-pooling PgBouncer older than 1.21 — set
``DATABASE_PREPARED_STATEMENTS=false`` there.
"""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.utils import CursorWrapper

try:
    import psycopg

    class _PreparingCursor(psycopg.Cursor[Any]):
        # One per connection is kept and handed out again while no other caller holds it: building a psycopg
        # cursor (and the throwaway client-side one Django's ``cursor()`` makes first) cost more CPU per
        # submission than binding and executing a prepared statement.
        in_use = False
        reusable = False

        def execute(self, query: Any, params: Any = None, *, prepare: bool | None = None, binary: Any = None) -> Any:
            return super().execute(query, params, prepare=True if prepare is None else prepare, binary=binary)

        def close(self) -> None:
            self.in_use = False
            if not self.reusable:
                super().close()

except ImportError:  # pragma: no cover - SQLite-only installs
    psycopg = None  # type: ignore[assignment]


def prepared_cursor() -> CursorWrapper:
    """``connection.cursor()``, binding server-side and preparing on PostgreSQL with psycopg 3 (see above).

    The cursor is released by leaving its ``with`` block (Django's cursor wrapper closes it there); a caller
    that opens a second one before releasing the first gets a cursor of its own.
    """
    db = connections[DEFAULT_DB_ALIAS]
    if psycopg is None or db.vendor != "postgresql" or not getattr(settings, "LEADCRM_DB_PREPARED_STATEMENTS", False):
        return db.cursor()
    # What ``cursor()`` does before it creates a cursor: the health check and (re)connecting.
    db.close_if_health_check_failed()
    db.ensure_connection()
    raw = db.connection
    if not isinstance(raw, psycopg.Connection):
        return db.cursor()
    state: Any = db  # the kept cursor lives on the connection wrapper (one per thread and alias)
    cursor: _PreparingCursor | None = getattr(state, "_leadcrm_prepared_cursor", None)
    if cursor is None or cursor.connection is not raw or cursor.closed:
        cursor = _PreparingCursor(raw)
        cursor.reusable = True
        state._leadcrm_prepared_cursor = cursor
    elif cursor.in_use:
        cursor = _PreparingCursor(raw)  # nested use: a cursor of its own, really closed afterwards
    cursor.in_use = True
    with db.wrap_database_errors:
        wrapped: CursorWrapper = db._prepare_cursor(cursor)  # type: ignore[attr-defined]  # Django's, not in the stubs
    if hasattr(state, "_used_at"):
        state._used_at = time.monotonic()  # common.db_backends.postgresql: the connection is in use now
    return wrapped
