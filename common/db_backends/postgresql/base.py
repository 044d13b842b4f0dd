"""Django's PostgreSQL backend, with the per-request health check skipped for a connection in recent use.

``CONN_HEALTH_CHECKS`` sends a ``SELECT 1`` before the first query of every request that reuses a
persistent connection: a round trip and ~0.3 ms of CPU on both ends for each web-form submission. It exists
for connections that died while idle (a server restart, a dropped idle TCP connection, an idle-session
timeout), so here it runs only when the connection has been idle for ``LEADCRM_DB_HEALTH_CHECK_IDLE_S``
seconds or more; a connection that failed in the last moments fails the request like a failure during the
request would, and Django then closes it at the end of that request (``errors_occurred``).
"""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.db.backends.postgresql import base


class DatabaseWrapper(base.DatabaseWrapper):
    _used_at: float | None = None  # time.monotonic() of the last cursor made on the current connection

    def connect(self) -> None:
        super().connect()
        self._used_at = None

    def close_if_health_check_failed(self) -> None:
        idle_limit = float(getattr(settings, "LEADCRM_DB_HEALTH_CHECK_IDLE_S", 0) or 0)
        recent = self._used_at is not None and time.monotonic() - self._used_at < idle_limit
        state: Any = self  # django-stubs do not declare the health-check attributes
        if recent and self.connection is not None and state.health_check_enabled and not state.health_check_done:
            state.health_check_done = True  # in use moments ago: as good as checked
            return
        super().close_if_health_check_failed()

    def _cursor(self, name: str | None = None) -> Any:
        cursor = super()._cursor(name)  # type: ignore[misc]  # not in django-stubs
        self._used_at = time.monotonic()
        return cursor
