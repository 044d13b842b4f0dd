"""Writes for leads: create, update, change stage, assign an owner, record an interaction."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from django.core.exceptions import ValidationError
from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from django.db.models import Field, Model
from django.utils import timezone
from django.utils.translation import gettext as _

from common.normalize import normalize_email, normalize_phone, normalize_text
from common.prepared import prepared_cursor
from leads.models import Interaction, Lead, LeadStageChange, Stage, Tag
from leads.services.pipeline import pipeline_enqueue_on_commit
from users.models import Team, User

# Fields a caller may set directly; everything else (score, lifecycle stamps, search text) is derived.
EDITABLE_FIELDS = frozenset(
    {
        "name", "email", "phone", "company", "job_title", "website",
        "industry", "company_size", "country", "region", "city", "interests", "attributes",
        "source", "campaign", "utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content",
        "owner", "team", "do_not_contact", "lost_reason",
    }
)  # fmt: skip
# Relations arrive as instances already checked by the caller; re-checking them costs a query each.
CLEAN_EXCLUDE = ["tags", "search_text", "owner", "team", "campaign", "created_by"]
TEXT_FIELDS = ("name", "company", "job_title", "industry", "region", "city")

# Which lifecycle timestamp a stage stamps the first time the lead reaches it.
STAGE_TIMESTAMPS = {
    Stage.CONTACTED: "first_contacted_at",
    Stage.MQL: "mql_at",
    Stage.SQL: "sql_at",
    Stage.CONVERTED: "converted_at",
    Stage.LOST: "lost_at",
}


@dataclass(frozen=True)
class NewInteraction:
    """An interaction to write together with others in one INSERT (see ``_interactions_insert``)."""

    type: str
    properties: dict[str, Any] = field(default_factory=dict)
    occurred_at: datetime | None = None
    external_id: str | None = None


def _normalized(data: Mapping[str, Any]) -> dict[str, Any]:
    """Normalize contact fields; raise one ValidationError naming every bad field."""
    clean = dict(data)
    errors: dict[str, list[str]] = {}
    for field_name in TEXT_FIELDS:
        if field_name in clean:
            clean[field_name] = normalize_text(clean[field_name])
    if "country" in clean:
        clean["country"] = normalize_text(clean["country"]).upper()
    for field_name, normalizer in (("email", normalize_email), ("phone", normalize_phone)):
        if field_name in clean:
            try:
                clean[field_name] = normalizer(clean[field_name])
            except ValidationError as exc:
                errors[field_name] = exc.messages
    if errors:
        raise ValidationError(errors)
    return clean


def _check_editable(fields: Iterable[str], caller: str) -> None:
    unknown = set(fields) - EDITABLE_FIELDS
    if unknown:
        raise TypeError(f"{caller}() got unexpected fields: {sorted(unknown)}")


def tag_ids_get_or_create(names: Iterable[str]) -> list[int]:
    """The ids of these tags (normalized names), creating the missing ones."""
    wanted = sorted({normalize_text(n) for n in names if normalize_text(n)})
    if not wanted:
        return []
    existing = dict(Tag.objects.filter(name__in=wanted).values_list("name", "id"))
    if len(existing) < len(wanted):
        Tag.objects.bulk_create([Tag(name=n) for n in wanted if n not in existing], ignore_conflicts=True)
        existing = dict(Tag.objects.filter(name__in=wanted).values_list("name", "id"))
    return sorted(existing.values())


@functools.lru_cache(maxsize=16)
def _tags_add_sql(alias: str, count: int) -> str:
    quote = connections[alias].ops.quote_name
    rows = ", ".join(["(%s, %s)"] * count)
    return (
        f"INSERT INTO {quote(Lead.tags.through._meta.db_table)} ({quote('lead_id')}, {quote('tag_id')})"
        f" VALUES {rows} ON CONFLICT DO NOTHING"
    )


def _tags_add(lead: Lead, tag_ids: Sequence[int]) -> None:
    """Add tags in one INSERT … ON CONFLICT DO NOTHING (a tag the lead already has is skipped)."""
    if tag_ids:
        with prepared_cursor() as cursor:
            cursor.execute(
                _tags_add_sql(DEFAULT_DB_ALIAS, len(tag_ids)),
                [value for tag_id in tag_ids for value in (lead.pk, tag_id)],
            )


def _apply_owner_team(lead: Lead) -> None:
    """An owned lead belongs to its owner's team unless a team was set explicitly."""
    if lead.owner_id is not None and lead.team_id is None and lead.owner is not None:
        lead.team_id = lead.owner.team_id


# The internal writers below run inside the caller's transaction and open no savepoint of their own: a
# savepoint per nested service is a round trip each way on the hot intake path. The public services
# wrap them in one atomic block for callers that are not already in one.


def _lead_insert(
    *,
    data: dict[str, Any],
    created_by: User | None,
    tag_ids: Sequence[int] = (),
    stage: str = Stage.NEW,
    mark_dirty: bool = False,
) -> Lead:
    """Insert a lead from normalized ``data``, validated once, with its first stage-history row.

    ``mark_dirty`` sets the pipeline flag in the INSERT itself, for a caller that records an interaction
    on the new lead in the same transaction (no worker can hold a row that is not committed yet).
    """
    if not data.get("name"):
        raise ValidationError({"name": [_("This field is required.")]})
    now = timezone.now()
    lead = Lead(
        **data,
        created_by=created_by,
        created_at=now,
        last_activity_at=now,
        stage=Stage.NEW,
        dirty_since=now if mark_dirty else None,
    )
    _apply_owner_team(lead)
    lead.full_clean(exclude=CLEAN_EXCLUDE, validate_unique=False, validate_constraints=False)
    if connection.vendor == "postgresql":
        _lead_insert_statement(lead, tag_ids, changed_by=created_by, now=now)
    else:
        lead.save(force_insert=True)
        LeadStageChange.objects.create(
            lead=lead, from_stage="", to_stage=Stage.NEW, changed_by=created_by, changed_at=now
        )
        _tags_add(lead, tag_ids)
    if stage != Stage.NEW:
        _lead_change_stage(lead=lead, stage=stage, changed_by=created_by, reason=data.get("lost_reason", ""))
    return lead


@functools.lru_cache(maxsize=8)
def _lead_insert_plan(
    alias: str,
) -> tuple[str, tuple[Field[Any, Any], ...], tuple[Field[Any, Any], ...], tuple[Any, ...]]:
    """The SQL of ``_lead_insert_statement`` and the fields it binds, built once per database alias.

    Built from the model's fields, which do not change while a process runs; rebuilding the text (quoting,
    casts) for every submission cost as much CPU as binding it.
    """
    db = connections[alias]
    quote = db.ops.quote_name
    meta, history_meta, through = Lead._meta, LeadStageChange._meta, Lead.tags.through._meta
    fields = tuple(f for f in meta.local_concrete_fields if not f.generated and f is not meta.auto_field)
    history = tuple(cast(Field[Any, Any], history_meta.get_field(name)) for name in _FIRST_STAGE_COLUMNS)
    returning = tuple(meta.db_returning_fields)  # the id and the generated columns, as save() reads them back
    lead_column, tag_column = (quote(str(cast(Field[Any, Any], through.get_field(n)).column)) for n in ("lead", "tag"))
    history_lead = quote(str(cast(Field[Any, Any], history_meta.get_field("lead")).column))
    new_id = f"new_lead.{quote(meta.pk.column)}"
    sql = (
        f"WITH new_lead AS (INSERT INTO {quote(meta.db_table)} ({', '.join(quote(f.column) for f in fields)})"
        f" VALUES ({', '.join(['%s'] * len(fields))}) RETURNING {', '.join(quote(f.column) for f in returning)}),"
        f" history AS (INSERT INTO {quote(history_meta.db_table)}"
        f" ({history_lead}, {', '.join(quote(str(f.column)) for f in history)})"
        # Typed: a parameter in a SELECT list has no column to take its type from when bound server-side.
        f" SELECT {new_id}, {', '.join(f'%s::{cast(Any, f).cast_db_type(db)}' for f in history)} FROM new_lead),"
        f" tagged AS (INSERT INTO {quote(through.db_table)} ({lead_column}, {tag_column})"
        f" SELECT {new_id}, tag FROM new_lead, unnest(%s::bigint[]) AS tag ON CONFLICT DO NOTHING)"
        f" SELECT {', '.join(quote(f.column) for f in returning)} FROM new_lead"
    )
    return sql, fields, history, returning


# The first stage-history row's columns besides the lead, in the order ``_lead_insert_plan`` binds them.
_FIRST_STAGE_COLUMNS = ("from_stage", "to_stage", "changed_by", "changed_at", "reason")


def _lead_insert_statement(lead: Lead, tag_ids: Sequence[int], *, changed_by: User | None, now: datetime) -> None:
    """PostgreSQL: INSERT a validated lead, its first stage-history row and its tags in one prepared statement.

    Every web-form submission from a new person takes this path: ``save()`` plus ``create()`` plus the tag
    INSERT cost three round trips and about 1 ms of ORM compilation. The lead's values are prepared by each
    field exactly as ``save()`` prepares them (``pre_save``, ``get_db_prep_save``), so the row is the same.
    """
    db = connections[DEFAULT_DB_ALIAS]  # the wrapper itself: each field below reads its ops
    sql, fields, history, returning = _lead_insert_plan(DEFAULT_DB_ALIAS)
    values = [f.get_db_prep_save(f.pre_save(lead, True), db) for f in fields]
    first = dict(zip(_FIRST_STAGE_COLUMNS, ("", Stage.NEW.value, changed_by, now, ""), strict=True))
    history_values = [f.get_db_prep_save(_plain_pk(first[f.name]), db) for f in history]
    with prepared_cursor() as cursor:
        # The tag ids as PostgreSQL's array text: psycopg's list dumper inspects every element to pick a type.
        cursor.execute(sql, [*values, *history_values, "{" + ",".join(str(int(t)) for t in tag_ids) + "}"])
        row = cursor.fetchone()
    for model_field, value in zip(returning, row, strict=True):
        setattr(lead, model_field.attname, value)
    lead._state.adding, lead._state.db = False, DEFAULT_DB_ALIAS


def _plain_pk(value: Any) -> Any:
    return value.pk if isinstance(value, Model) else value


def _lead_update(*, lead: Lead, data: dict[str, Any], changed_by: User | None) -> list[str]:
    """Set normalized ``data`` on the lead and save what changed; return the changed field names."""
    if "name" in data and not data["name"]:
        raise ValidationError({"name": [_("This field is required.")]})
    changed = [name for name, value in data.items() if getattr(lead, name) != value]
    for name in changed:
        setattr(lead, name, data[name])
    if "owner" in changed and "team" not in data and lead.owner is not None:
        lead.team_id = lead.owner.team_id
        changed.append("team")
    if changed:
        lead.full_clean(exclude=CLEAN_EXCLUDE)
        lead.save(update_fields=[*dict.fromkeys(changed), "updated_at"])
    return changed


def _lead_change_stage(
    *, lead: Lead, stage: str, changed_by: User | None = None, reason: str = ""
) -> LeadStageChange | None:
    if stage not in Stage.values:
        raise ValidationError({"stage": [_("Unknown stage “%(stage)s”.") % {"stage": stage}]})
    # Lock the row so that two concurrent moves write a consistent from→to history.
    current = Lead.objects.select_for_update().only("stage").get(pk=lead.pk)
    if current.stage == stage:
        return None
    now = timezone.now()
    update_fields = ["stage", "updated_at"]
    lead.stage = stage
    stamp = STAGE_TIMESTAMPS.get(Stage(stage))
    if stamp and getattr(lead, stamp) is None:
        setattr(lead, stamp, now)
        update_fields.append(stamp)
    if stage == Stage.LOST and reason:
        lead.lost_reason = reason
        update_fields.append("lost_reason")
    lead.save(update_fields=update_fields)
    return LeadStageChange.objects.create(
        lead=lead, from_stage=current.stage, to_stage=stage, changed_by=changed_by, changed_at=now, reason=reason
    )


@functools.lru_cache(maxsize=64)
def _insert_returning_plan(
    model: type[Model], names: tuple[str, ...], rows: int, alias: str
) -> tuple[str, tuple[Field[Any, Any], ...]]:
    """The SQL of ``_insert_returning_ids`` for ``rows`` rows, and the fields it binds; built once each."""
    meta = model._meta
    fields = tuple(cast(Field[Any, Any], meta.get_field(name)) for name in names)
    quote = connections[alias].ops.quote_name
    row_sql = "(" + ", ".join(["%s"] * len(fields)) + ")"
    sql = (
        f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(f.column) for f in fields)})"
        f" VALUES {', '.join([row_sql] * rows)} RETURNING {quote(meta.pk.column)}"
    )
    return sql, fields


def _insert_returning_ids(model: type[Model], names: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[int]:
    """One multi-row ``INSERT … RETURNING id``, each value prepared by its field exactly as the ORM prepares it.

    The hot intake path writes its rows through here: ``bulk_create`` spent several times more CPU than the
    database did on the same INSERT.
    """
    db = connections[DEFAULT_DB_ALIAS]
    sql, fields = _insert_returning_plan(model, tuple(names), len(rows), DEFAULT_DB_ALIAS)
    params = [f.get_db_prep_save(value, db) for row in rows for f, value in zip(fields, row, strict=True)]
    with prepared_cursor() as cursor:
        cursor.execute(sql, params)
        return [row[0] for row in cursor.fetchall()]


def _insert_instance(instance: Model) -> None:
    """INSERT a new model instance (all its concrete columns but the id) through ``_insert_returning_ids``.

    For rows without ``save()`` logic of their own (no auto_now, no generated columns).
    """
    fields = [f for f in instance._meta.concrete_fields if not f.primary_key]
    values = [getattr(instance, f.attname) for f in fields]
    instance.pk = _insert_returning_ids(type(instance), [f.name for f in fields], [values])[0]
    instance._state.adding = False


def _interactions_insert(
    *,
    lead: Lead,
    events: Sequence[NewInteraction],
    created_by: User | None,
    lead_changed: Sequence[str] = (),
    lead_marked: bool = False,
    instances: bool = True,
) -> list[Interaction]:
    """Append events to the lead's timeline in one INSERT, then one UPDATE of the lead; enqueue on commit.

    The UPDATE moves last activity forward (never back), marks the lead dirty and also saves the
    ``lead_changed`` fields (already validated and set on ``lead``). It locks the lead row: if a pipeline
    worker is writing a batch that holds the lead we wait for that short write, so its flag-clearing cannot
    hide these events (see ``leads.services.pipeline``). ``lead_marked``: the lead was inserted dirty in this
    transaction, so unless an event is newer than its creation there is nothing to update. ``instances``:
    return the written rows as model instances (a caller that does not use them saves building them).
    """
    if not events:
        return []
    now = timezone.now()
    created_by_id = created_by.pk if created_by is not None else None
    rows = [
        (lead.pk, e.type, e.occurred_at or now, dict(e.properties), e.external_id or None, created_by_id, now)
        for e in events
    ]
    ids = _insert_returning_ids(
        Interaction, ("lead", "type", "occurred_at", "properties", "external_id", "created_by", "created_at"), rows
    )
    latest = max(row[2] for row in rows)
    if not lead_marked or lead_changed or latest > lead.last_activity_at:
        _lead_touch(lead=lead, now=now, latest=latest, changed=lead_changed)
    pipeline_enqueue_on_commit()
    if not instances:
        return []
    interactions = []
    for pk, (_lead_id, type_, occurred_at, properties, external_id, _by, created_at) in zip(ids, rows, strict=True):
        interaction = Interaction(
            pk=pk,
            lead=lead,
            type=type_,
            occurred_at=occurred_at,
            properties=properties,
            external_id=external_id,
            created_by=created_by,
            created_at=created_at,
        )
        interaction._state.adding = False
        interactions.append(interaction)
    return interactions


@functools.lru_cache(maxsize=64)
def _lead_touch_sql(alias: str, changed: tuple[str, ...]) -> tuple[str, tuple[Field[Any, Any], ...]]:
    """The UPDATE of ``_lead_touch`` saving these changed fields (and the fields it binds), built once each."""
    quote = connections[alias].ops.quote_name
    activity, dirty = quote("last_activity_at"), quote("dirty_since")
    assignments = [
        f"{activity} = CASE WHEN {activity} < %s THEN %s ELSE {activity} END",
        f"{dirty} = COALESCE({dirty}, %s)",
    ]
    fields = (
        tuple(cast(Field[Any, Any], Lead._meta.get_field(name)) for name in (*changed, "updated_at")) if changed else ()
    )
    assignments += [f"{quote(str(model_field.column))} = %s" for model_field in fields]
    sql = f"UPDATE {quote(Lead._meta.db_table)} SET {', '.join(assignments)} WHERE {quote('id')} = %s"
    return sql, fields


def _lead_touch(*, lead: Lead, now: datetime, latest: datetime, changed: Sequence[str]) -> None:
    """UPDATE the lead: last activity to ``latest`` unless it is later already, dirty since ``now`` unless dirty."""
    db = connections[DEFAULT_DB_ALIAS]
    sql, fields = _lead_touch_sql(DEFAULT_DB_ALIAS, tuple(changed))
    stamp = cast(Field[Any, Any], Lead._meta.get_field("last_activity_at"))
    latest_db, now_db = (stamp.get_db_prep_save(value, db) for value in (latest, now))
    params: list[Any] = [latest_db, latest_db, now_db]
    if changed:
        lead.updated_at = now
        params += [model_field.get_db_prep_save(getattr(lead, model_field.attname), db) for model_field in fields]
    with prepared_cursor() as cursor:
        cursor.execute(sql, [*params, lead.pk])


@transaction.atomic
def lead_create(
    *, created_by: User | None = None, tags: Iterable[str] = (), stage: str = Stage.NEW, **fields: Any
) -> Lead:
    """Create a lead from normalized fields and write its first stage-history row."""
    _check_editable(fields, "lead_create")
    data = _normalized(fields)
    return _lead_insert(data=data, created_by=created_by, tag_ids=tag_ids_get_or_create(tags), stage=stage)


@transaction.atomic
def lead_update(
    *,
    lead: Lead,
    changed_by: User | None = None,
    tags: Iterable[str] | None = None,
    stage: str | None = None,
    **fields: Any,
) -> Lead:
    """Update editable fields (normalized); a stage change goes through ``lead_change_stage``."""
    _check_editable(fields, "lead_update")
    data = _normalized(fields)
    _lead_update(lead=lead, data=data, changed_by=changed_by)
    if stage is not None and stage != lead.stage:
        _lead_change_stage(lead=lead, stage=stage, changed_by=changed_by, reason=data.get("lost_reason", ""))
    if tags is not None:
        lead.tags.set(tag_ids_get_or_create(tags))
    return lead


@transaction.atomic
def lead_change_stage(
    *, lead: Lead, stage: str, changed_by: User | None = None, reason: str = ""
) -> LeadStageChange | None:
    """Move the lead to ``stage``, stamp the lifecycle time the first time, and record who did it."""
    return _lead_change_stage(lead=lead, stage=stage, changed_by=changed_by, reason=reason)


@transaction.atomic
def lead_assign(*, lead: Lead, owner: User | None, team: Team | None = None, assigned_by: User | None = None) -> Lead:
    """Give the lead an owner (and that owner's team unless ``team`` is given); None returns it to the pool."""
    lead.owner = owner
    lead.team = team if team is not None else (owner.team if owner is not None else lead.team)
    lead.save(update_fields=["owner", "team", "updated_at"])
    return lead


@transaction.atomic
def interaction_record(
    *,
    lead: Lead,
    type: str,  # noqa: A002 - the domain word
    occurred_at: Any = None,
    properties: Mapping[str, Any] | None = None,
    external_id: str | None = None,
    created_by: User | None = None,
) -> Interaction:
    """Append an event to the lead's timeline, move its last activity forward (never back), mark it dirty.

    One UPDATE does both, and it locks the lead row (see ``_interactions_insert``). Processing is
    enqueued on commit.
    """
    event = NewInteraction(
        type=type, properties=dict(properties or {}), occurred_at=occurred_at, external_id=external_id
    )
    return _interactions_insert(lead=lead, events=[event], created_by=created_by)[0]


def lead_delete(*, lead: Lead) -> None:
    lead.delete()
