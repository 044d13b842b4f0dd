"""Single-lead intake with deduplication: every entry point (API, page, web form) creates leads through here."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper

from common.prepared import prepared_cursor
from leads.models import Lead, Stage
from leads.services.leads import (
    CLEAN_EXCLUDE,
    EDITABLE_FIELDS,
    NewInteraction,
    _interactions_insert,
    _lead_insert,
    _normalized,
    _tags_add,
    tag_ids_get_or_create,
)
from users.models import User

# A repeat submission never changes who owns the lead: assignment is a decision, not data.
NEVER_FILLED = frozenset({"owner", "team"})
# Where the person came from is the first touch; a later, different value is a new touch, recorded on the
# timeline by the entry point (form_submit), so it is filled when empty but not reported as a conflict.
FIRST_TOUCH = frozenset({"source", "campaign", "utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content"})
FIELD_CONFLICT = "field_conflict"


def _is_empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def _plain(value: Any) -> Any:
    """A value as it can be stored in an interaction's JSON properties."""
    if isinstance(value, Lead | User) or hasattr(value, "_meta"):
        return value.pk
    return value


def _identity_lock_sql(*, email: str, phone: str) -> tuple[str, list[str]]:
    """The statement that serializes intake of one person across connections until the transaction ends.

    PostgreSQL only (SQLite serializes writers on its own); empty without a key. Keys are taken in sorted
    order so that a submission with (email A, phone B) and one with (phone B, email A) cannot deadlock.
    """
    if connection.vendor != "postgresql":
        return "", []
    keys = sorted(key for key in (f"email:{email}" if email else "", f"phone:{phone}" if phone else "") if key)
    if not keys:
        return "", []
    return "SELECT " + ", ".join(["pg_advisory_xact_lock(hashtextextended(%s, 0))"] * len(keys)), keys


@functools.lru_cache(maxsize=32)
def _lead_converters(db: BaseDatabaseWrapper) -> tuple[tuple[int, Any, tuple[Any, ...]], ...]:
    """Per connection: the converters the ORM would apply to each concrete column of a Lead row."""
    plan = []
    for i, model_field in enumerate(Lead._meta.concrete_fields):
        col = model_field.get_col(Lead._meta.db_table)
        converters = (*db.ops.get_db_converters(col), *col.get_db_converters(db))
        if converters:
            plan.append((i, col, converters))
    return tuple(plan)


def _lead_from_row(row: Sequence[Any]) -> Lead:
    """A Lead from a raw row of all its concrete columns, converted as the ORM converts them."""
    db = connections[connection.alias]
    values = list(row)
    for i, col, converters in _lead_converters(db):
        for convert in converters:
            values[i] = convert(values[i], col, db)
    return Lead.from_db(connection.alias, [f.attname for f in Lead._meta.concrete_fields], values)


@functools.lru_cache(maxsize=16)
def _match_sql(alias: str, *, by_email: bool, by_phone: bool, lock: bool) -> str:
    """The text of ``_match``'s query for this combination of keys, built once per process."""
    db = connections[alias]
    quote = db.ops.quote_name
    conditions = [f"{quote(column)} = %s" for column, wanted in (("email", by_email), ("phone", by_phone)) if wanted]
    rank = f"CASE WHEN {quote('email')} = %s THEN 0 ELSE 1 END, " if by_email else ""
    sql = (
        f"SELECT {', '.join(quote(f.column) for f in Lead._meta.concrete_fields)} FROM {quote(Lead._meta.db_table)}"
        f" WHERE ({' OR '.join(conditions)}) AND {quote('merged_into_id')} IS NULL"
        f" ORDER BY {rank}{quote('created_at')}, {quote('id')} LIMIT 1"
    )
    if lock and db.features.has_select_for_update:
        sql += " FOR UPDATE"
    return sql


def _match(*, email: str, phone: str, lock: bool, identity_lock: bool = False) -> Lead | None:
    """The matching lead (see ``lead_find_match``); ``lock``: FOR UPDATE; ``identity_lock``: take the person's
    advisory locks first (``_identity_lock_sql``), in the same round trip when the driver allows it.
    """
    lock_sql, lock_params = _identity_lock_sql(email=email, phone=phone) if identity_lock else ("", [])
    if not email and not phone:
        return None
    # One query for both keys (PostgreSQL ORs the two indexes); an e-mail match ranks before a phone match.
    # Plain SQL: on the intake path the ORM's compilation of this query cost more CPU than the query itself.
    sql = _match_sql(DEFAULT_DB_ALIAS, by_email=bool(email), by_phone=bool(phone), lock=lock)
    params = [value for value in (email, phone) if value]
    if email:
        params.append(email)
    with prepared_cursor() as cursor:
        if lock_sql and _sends_statements_together(cursor):
            # Locks, then the match, as one simple-protocol message. Each statement still takes its own
            # snapshot (READ COMMITTED), so the match sees what was committed while the locks waited.
            cursor.execute(f"{lock_sql}; {sql}", [*lock_params, *params])
            cursor.nextset()
        else:
            if lock_sql:
                cursor.execute(lock_sql, lock_params)
            cursor.execute(sql, params)
        row = cursor.fetchone()
    return _lead_from_row(row) if row is not None else None


def _sends_statements_together(cursor: Any) -> bool:
    """Whether this cursor binds parameters client-side (psycopg's ClientCursor, Django's default), so that
    several statements can travel in one message; server-side binding allows one statement per message.
    """
    try:
        from psycopg import ClientCursor
    except ImportError:  # pragma: no cover - psycopg 2 or no PostgreSQL driver
        return False
    return isinstance(getattr(cursor, "cursor", None), ClientCursor)


def lead_find_match(*, email: str, phone: str) -> Lead | None:
    """The unmerged lead this (normalized) e-mail or phone belongs to; an e-mail match wins over a phone match.

    With several candidates the oldest wins: it is the one the others would be merged into.
    """
    return _match(email=email, phone=phone, lock=False)


def _validate_values(data: dict[str, Any]) -> None:
    """Check every received value against the model, so a conflict kept on the timeline is a valid value too."""
    exclude = [f.name for f in Lead._meta.get_fields() if f.name not in data] + CLEAN_EXCLUDE
    probe = Lead(**{k: v for k, v in data.items() if k not in CLEAN_EXCLUDE})
    if not probe.name:
        probe.name = "-"  # required only for a new lead; checked there
    probe.full_clean(exclude=exclude, validate_unique=False, validate_constraints=False)


@dataclass
class Upsert:
    """A matched or created lead whose timeline events and field fills are not written yet (see ``_upsert_write``)."""

    lead: Lead
    created: bool
    fills: dict[str, Any] = field(default_factory=dict)
    conflicts: list[NewInteraction] = field(default_factory=list)


def _upsert_match_or_insert(
    *,
    data: dict[str, Any],
    source_label: str,
    created_by: User | None,
    tag_ids: Sequence[int],
    stage: str = Stage.NEW,
    fallback_name: str = "",
    mark_dirty: bool = False,
) -> Upsert:
    """Lock the person, then insert a new lead or work out what a match gains; runs in the caller's transaction.

    ``data`` is normalized. A new lead is validated once (by its ``full_clean``) and written with its tags;
    a matched lead gets its tags now and its fills and conflicts from ``_upsert_write``. ``mark_dirty``:
    the caller records an interaction on the lead in this transaction.
    """
    email, phone = data.get("email", ""), data.get("phone", "")
    lead = _match(email=email, phone=phone, lock=True, identity_lock=True)
    if lead is None:
        if not data.get("name") and fallback_name:
            data = {**data, "name": fallback_name}
        lead = _lead_insert(data=data, created_by=created_by, tag_ids=tag_ids, stage=stage, mark_dirty=mark_dirty)
        return Upsert(lead=lead, created=True)

    _validate_values(data)
    upsert = Upsert(lead=lead, created=False)
    for name, received in data.items():
        if name in NEVER_FILLED or _is_empty(received):
            continue
        kept = getattr(lead, name)
        if name == "attributes":
            added = {k: v for k, v in received.items() if k not in kept}
            upsert.conflicts += [
                _conflict(f"attr:{k}", kept[k], v, source_label)
                for k, v in received.items()
                if k in kept and kept[k] != v
            ]
            if added:
                upsert.fills["attributes"] = {**kept, **added}
        elif name == "interests":
            new = [item for item in received if item not in kept]
            if new:
                upsert.fills["interests"] = [*kept, *new]
        elif name == "do_not_contact":
            if received and not kept:
                upsert.fills[name] = True  # an opt-out always wins
        elif name == "source":
            if kept == "other" and received != "other":
                upsert.fills[name] = received
        elif _is_empty(kept):
            upsert.fills[name] = received
        elif _plain(kept) != _plain(received) and name not in FIRST_TOUCH:
            upsert.conflicts.append(_conflict(name, _plain(kept), _plain(received), source_label))
    _tags_add(lead, tag_ids)
    return upsert


def _conflict(field_name: str, kept: Any, received: Any, source_label: str) -> NewInteraction:
    return NewInteraction(
        type=FIELD_CONFLICT,
        properties={"field": field_name, "kept": kept, "received": received, "source": source_label},
    )


def _upsert_write(upsert: Upsert, *, created_by: User | None, events: Sequence[NewInteraction] = ()) -> None:
    """Write a matched lead's fills and the conflicts plus ``events`` (one INSERT, one UPDATE of the lead)."""
    lead = upsert.lead
    for name, value in upsert.fills.items():
        setattr(lead, name, value)
    timeline = [*upsert.conflicts, *events]
    if timeline:
        _interactions_insert(
            lead=lead,
            events=timeline,
            created_by=created_by,
            lead_changed=list(upsert.fills),
            lead_marked=upsert.created,
            instances=False,
        )
    elif upsert.fills:
        lead.save(update_fields=[*upsert.fills, "updated_at"])


@transaction.atomic
def lead_upsert(
    *,
    source_label: str,
    created_by: User | None,
    tags: Iterable[str] = (),
    stage: str = Stage.NEW,
    fallback_name: str = "",
    **fields: Any,
) -> tuple[Lead, bool]:
    """Create a lead, or update the unmerged lead with the same normalized e-mail or phone; ``(lead, created)``.

    On a match, empty fields are filled and tags added; a differing non-empty value is not overwritten but
    kept on the timeline as a ``field_conflict`` interaction. ``source_label`` names the entry point there
    ("api", "page", "form:<slug>"). ``fallback_name`` names a new lead that came without a name (a form
    asking only for an e-mail). Two concurrent calls for one person make one lead.
    """
    unknown = set(fields) - EDITABLE_FIELDS
    if unknown:
        raise TypeError(f"lead_upsert() got unexpected fields: {sorted(unknown)}")
    data = _normalized(fields)
    upsert = _upsert_match_or_insert(
        data=data,
        source_label=source_label,
        created_by=created_by,
        tag_ids=tag_ids_get_or_create(tags),
        stage=stage,
        fallback_name=fallback_name,
    )
    _upsert_write(upsert, created_by=created_by)
    return upsert.lead, upsert.created
