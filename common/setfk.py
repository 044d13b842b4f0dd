"""Foreign keys that PostgreSQL checks once per statement instead of once per row.

A foreign key is a pair of row-level triggers: every inserted child row runs its own query against
the parent (and locks the parent row), queued until commit. An import chunk of 500 new leads writes
~4,500 such rows (the lead, its stage-history row, its ``import`` event, its tag link, its score card,
each pointing at the lead, the user and the job), and their checks were a third of PostgreSQL's whole
time for a 100,000-row list (docs/benchmarks.md, "Results, session 7").

Here the same guarantees are kept with statement-level triggers, which see every row a statement wrote
at once (a transition table), so a COPY of 500 rows costs one check per distinct parent:

* **Insert into the child:** the distinct parent keys are locked ``FOR KEY SHARE`` (what a row-level
  check does for each row: a parent being deleted is waited for, and cannot be deleted until this
  transaction ends), then any key without a parent row raises ``foreign_key_violation``, the error a
  real foreign key raises (Django's ``IntegrityError``).
* **Update of the child's key column:** a row-level trigger, only for rows whose key changes.
* **Delete of the parent:** one query per child table finds a remaining reference and raises, or, for
  ``cascade``, deletes the children. The parent's key never changes (a change is refused the same way).

One difference from Django's own foreign keys: the check runs at the end of each statement, not at
commit (``DEFERRABLE INITIALLY DEFERRED``), so a child cannot be written before its parent within a
transaction. Nothing in leadcrm does; the tests would catch it (tests/common/test_setfk.py).

PostgreSQL only: the models declare these keys ``db_constraint=False``; on the embedded SQLite the
ORM's own cascades keep the data consistent, as for the score card.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from common.db import PostgresOnlySQL


@dataclass(frozen=True)
class ForeignKey:
    """``table.column`` references ``parent.id``; deleting a referenced parent is refused or cascades."""

    table: str
    column: str
    parent: str
    on_delete: Literal["restrict", "cascade"] = "restrict"

    @property
    def name(self) -> str:
        return _name(f"{self.table}_{self.column}_fk")


def _name(base: str) -> str:
    """An identifier PostgreSQL keeps whole (63 bytes), made unique by a hash when it must be cut."""
    if len(base) <= 63:
        return base
    return f"{base[:54]}_{hashlib.sha1(base.encode()).hexdigest()[:8]}"


# The functions' queries take array parameters, for which PostgreSQL plans anew on every call (a custom
# plan looks cheaper than the generic one, sized for 10 elements): ~120 µs of planning per query, which
# made a one-row insert 4× dearer. The generic plans probe an index per key whatever the array's size,
# as the child-side lookups must (LATERAL … LIMIT 1: a plan guessing few keys might scan the child).
_GENERIC = "SET plan_cache_mode = force_generic_plan"


def _violation(message: str, detail: str, table: str, constraint: str) -> str:
    return (
        f"RAISE EXCEPTION '{message}' USING ERRCODE = 'foreign_key_violation', DETAIL = {detail},"
        f" TABLE = '{table}', CONSTRAINT = '{constraint}';"
    )


def _child_sql(key: ForeignKey) -> str:
    name, table, column, parent = key.name, key.table, key.column, key.parent
    missing = _violation(
        f'insert or update on table "{table}" violates foreign key constraint "{name}"',
        f"format('Key ({column})=(%s) is not present in table \"{parent}\".', missing)",
        table,
        name,
    )
    # The parent is probed by primary key, once per distinct key. A parent row this transaction wrote
    # itself (a new lead's stage history, event, tag link and card) is not locked: no one else can see it,
    # let alone delete it, and a lock would write its page again. A missing key is looked for only to name it.
    return f"""
CREATE FUNCTION {name}_ins() RETURNS trigger LANGUAGE plpgsql {_GENERIC} AS $$
DECLARE
    keys bigint[] := ARRAY(SELECT DISTINCT {column} FROM new_rows WHERE {column} IS NOT NULL);
    found bigint;
    theirs bigint[];
    locked bigint;
    missing bigint;
BEGIN
    IF cardinality(keys) = 0 THEN
        RETURN NULL;
    END IF;
    SELECT count(*), array_agg(p.id) FILTER (WHERE p.xmin <> xid(pg_current_xact_id())) INTO found, theirs
        FROM {parent} p WHERE p.id = ANY(keys);
    IF found = cardinality(keys) AND theirs IS NOT NULL THEN
        SELECT count(*) INTO locked FROM (SELECT FROM {parent} p WHERE p.id = ANY(theirs) FOR KEY SHARE) AS held;
        found := found - cardinality(theirs) + locked;  -- a parent deleted since is not locked
    END IF;
    IF found < cardinality(keys) THEN
        SELECT k INTO missing FROM unnest(keys) AS k WHERE NOT EXISTS (SELECT FROM {parent} p WHERE p.id = k) LIMIT 1;
        {missing}
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER {name}_ins AFTER INSERT ON {table}
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION {name}_ins();
CREATE FUNCTION {name}_upd() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    missing bigint := NEW.{column};
BEGIN
    PERFORM 1 FROM {parent} p WHERE p.id = missing FOR KEY SHARE OF p;
    IF NOT FOUND THEN
        {missing}
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER {name}_upd AFTER UPDATE OF {column} ON {table} FOR EACH ROW
    WHEN (NEW.{column} IS NOT NULL AND NEW.{column} IS DISTINCT FROM OLD.{column}) EXECUTE FUNCTION {name}_upd();
"""


def _parent_sql(parent: str, keys: Sequence[ForeignKey]) -> str:
    name = _name(f"{parent}_fk_del")
    cascades, checks = [], []
    for key in keys:
        if key.on_delete == "cascade":
            cascades.append(f"DELETE FROM {key.table} AS c USING unnest(gone) AS k WHERE c.{key.column} = k;")
        else:
            refused = _violation(
                f'update or delete on table "{parent}" violates foreign key constraint "{key.name}"'
                f' on table "{key.table}"',
                f"format('Key (id)=(%s) is still referenced from table \"{key.table}\".', kept)",
                key.table,
                key.name,
            )
            checks.append(
                f"SELECT k INTO kept FROM unnest(gone) AS k,"
                f" LATERAL (SELECT FROM {key.table} AS c WHERE c.{key.column} = k LIMIT 1) AS used LIMIT 1;\n"
                f"    IF FOUND THEN\n        {refused}\n    END IF;"
            )
    body = "\n    ".join([*cascades, *checks])
    return f"""
CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql {_GENERIC} AS $$
DECLARE
    gone bigint[] := ARRAY(SELECT id FROM old_rows);
    kept bigint;
BEGIN
    IF cardinality(gone) = 0 THEN
        RETURN NULL;
    END IF;
    {body}
    RETURN NULL;
END $$;
CREATE TRIGGER {name} AFTER DELETE ON {parent}
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION {name}();
CREATE FUNCTION {name}_key() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the id of a row of "{parent}" cannot change (it is referenced by set-checked keys)'
        USING ERRCODE = 'foreign_key_violation', TABLE = '{parent}';
END $$;
CREATE TRIGGER {name}_key BEFORE UPDATE OF id ON {parent} FOR EACH ROW
    WHEN (NEW.id IS DISTINCT FROM OLD.id) EXECUTE FUNCTION {name}_key();
"""


def _drop_sql(keys: Sequence[ForeignKey]) -> str:
    statements = []
    for key in keys:
        for suffix in ("ins", "upd"):
            statements.append(f"DROP TRIGGER IF EXISTS {key.name}_{suffix} ON {key.table};")
            statements.append(f"DROP FUNCTION IF EXISTS {key.name}_{suffix}();")
    for parent in dict.fromkeys(key.parent for key in keys):
        name = _name(f"{parent}_fk_del")
        statements += [
            f"DROP TRIGGER IF EXISTS {name} ON {parent};",
            f"DROP FUNCTION IF EXISTS {name}();",
            f"DROP TRIGGER IF EXISTS {name}_key ON {parent};",
            f"DROP FUNCTION IF EXISTS {name}_key();",
        ]
    return "\n".join(statements)


def install_sql(keys: Sequence[ForeignKey]) -> str:
    """The triggers for ``keys`` (all of a parent's set-checked keys must be given together)."""
    parents: dict[str, list[ForeignKey]] = {}
    for key in keys:
        parents.setdefault(key.parent, []).append(key)
    return "\n".join(
        [*(_child_sql(key) for key in keys), *(_parent_sql(parent, group) for parent, group in parents.items())]
    )


class SetForeignKeys(PostgresOnlySQL):
    """Install (or, backwards, remove) set-checked foreign keys; PostgreSQL only."""

    def __init__(self, keys: Sequence[ForeignKey]) -> None:
        self.keys = list(keys)
        super().__init__(install_sql(self.keys), reverse_sql=_drop_sql(self.keys))

    def deconstruct(self) -> tuple[str, list[Any], dict[str, Any]]:
        return (self.__class__.__qualname__, [], {"keys": self.keys})
