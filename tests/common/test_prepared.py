"""Prepared-statement cursors (common.prepared): one kept per connection, never shared by two open users.

Their health check is tested with the plain cursor's, in test_db_backend.py.
"""

from __future__ import annotations

import pytest
from django.db import connections
from pytest_django.fixtures import Settings

from common.prepared import prepared_cursor

pytestmark = pytest.mark.postgres


@pytest.fixture(autouse=True)
def _prepared_on(settings: Settings) -> None:
    settings.LEADCRM_DB_PREPARED_STATEMENTS = True


def test_a_cursor_opened_inside_another_does_not_take_its_results(db: None) -> None:
    # given a prepared cursor whose result is not read yet
    with prepared_cursor() as outer:
        outer.execute("SELECT %s::int", [1])

        # when a second one runs a statement before the first is read
        with prepared_cursor() as inner:
            inner.execute("SELECT %s::int", [2])
            assert inner.fetchone() == (2,)

        # then each reads its own answer
        assert outer.fetchone() == (1,)

    # and the next cursor works as before
    with prepared_cursor() as cursor:
        cursor.execute("SELECT %s::int", [3])
        assert cursor.fetchone() == (3,)


def test_statements_run_again_after_the_connection_was_replaced(transactional_db: None) -> None:
    # given a statement prepared on a connection that then goes away (a restart, an idle timeout)
    with prepared_cursor() as cursor:
        cursor.execute("SELECT %s::int + 1", [1])
        assert cursor.fetchone() == (2,)
    wrapper = connections["default"]
    old_pid = wrapper.connection.info.backend_pid
    wrapper.close()  # as Django does after a request whose connection failed

    # when the same statement runs again
    with prepared_cursor() as cursor:
        cursor.execute("SELECT %s::int + 1", [41])

        # then it runs on the new connection
        assert cursor.fetchone() == (42,)
    assert wrapper.connection.info.backend_pid != old_pid
