"""Event ingestion: store a batch of interaction events set-based, idempotently, and link anonymous visitors."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import connection, models, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from leads import selectors
from leads.models import AnonymousEvent, Interaction, Lead, Visitor
from leads.services.pipeline import leads_mark_dirty_with_activity
from users.models import User

# Rows per INSERT statement: 1,000 rows × 7 columns stays far below every driver's parameter limit.
INSERT_CHUNK = 1000


@dataclass(frozen=True)
class EventIn:
    """One validated event; exactly how it names its lead is decided by the first of lead_id, email, visitor_id."""

    index: int
    type: str
    occurred_at: datetime
    properties: Mapping[str, Any]
    lead_id: int | None = None
    email: str = ""
    visitor_id: str = ""
    external_id: str | None = None


@dataclass
class IngestResult:
    accepted: int = 0
    duplicate: int = 0
    rejected: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)

    def reject(self, index: int, errors: Mapping[str, Any]) -> None:
        self.rejected += 1
        self.errors.append({"index": index, "errors": dict(errors)})


def _insert_ignoring_duplicates(model: type[models.Model], objs: Sequence[models.Model]) -> list[tuple[Any, ...]]:
    """INSERT … ON CONFLICT (external_id) … DO NOTHING RETURNING; the rows actually inserted (PostgreSQL, SQLite).

    bulk_create(ignore_conflicts=True) cannot tell which rows were skipped, and the API must count
    duplicates exactly, also when two requests race with the same external_id.
    """
    if not objs:
        return []
    meta = model._meta
    fields = [f for f in meta.concrete_fields if not f.primary_key]
    qn = connection.ops.quote_name
    columns = ", ".join(qn(f.column) for f in fields)
    returning = ", ".join(qn(c) for c in ("id", "lead_id")) if model is Interaction else qn("id")
    row = "(" + ", ".join(["%s"] * len(fields)) + ")"
    inserted: list[tuple[Any, ...]] = []
    with connection.cursor() as cursor:
        for start in range(0, len(objs), INSERT_CHUNK):
            chunk = objs[start : start + INSERT_CHUNK]
            params = [f.get_db_prep_save(getattr(obj, f.attname), connection) for obj in chunk for f in fields]
            cursor.execute(
                f"INSERT INTO {qn(meta.db_table)} ({columns}) VALUES {', '.join([row] * len(chunk))} "
                # The predicate names Interaction's partial unique index (leads/0014); AnonymousEvent's
                # plain unique index satisfies it too.
                f"ON CONFLICT ({qn('external_id')}) WHERE {qn('external_id')} IS NOT NULL DO NOTHING RETURNING {returning}",
                params,
            )
            inserted.extend(cursor.fetchall())
    return inserted


def _record_interactions(interactions: Sequence[Interaction], now: datetime) -> int:
    """Insert, then mark the touched leads dirty and move their last activity (never into the future)."""
    inserted = _insert_ignoring_duplicates(Interaction, interactions)
    touched = {lead_id for _, lead_id in inserted}
    activity: dict[int, datetime] = {}
    for interaction in interactions:
        if interaction.lead_id in touched:
            at = min(interaction.occurred_at, now)
            activity[interaction.lead_id] = max(at, activity.get(interaction.lead_id, at))
    leads_mark_dirty_with_activity(activity=activity)
    return len(inserted)


@transaction.atomic
def events_ingest(*, user: User, events: Sequence[EventIn], result: IngestResult | None = None) -> IngestResult:
    """Store validated events for leads ``user`` can see; count accepted, duplicate and rejected ones.

    Leads are resolved by id or normalized e-mail among the leads visible to ``user`` (an invisible
    lead is rejected exactly like a missing one); a visitor id not yet linked to a lead stores an
    AnonymousEvent. The same ``external_id`` twice (in one batch, or in two requests) stores one row.
    """
    result = result or IngestResult()
    now = timezone.now()
    lead_by_id = selectors.lead_ids_visible(user=user, lead_ids={e.lead_id for e in events if e.lead_id})
    lead_by_email = selectors.lead_ids_by_email(
        user=user, emails={e.email for e in events if not e.lead_id and e.email}
    )
    visitor_ids = sorted({e.visitor_id for e in events if not e.lead_id and not e.email and e.visitor_id})
    visitor_lead: dict[str, int | None] = {}
    if visitor_ids:
        Visitor.objects.bulk_create(
            [Visitor(visitor_id=v, first_seen_at=now) for v in visitor_ids], ignore_conflicts=True
        )
        # Locked so that a concurrent visitor_link either sees our anonymous events or we see its link.
        linked = (
            Visitor.objects.select_for_update()
            .filter(visitor_id__in=visitor_ids)
            .order_by("visitor_id")
            .values_list("visitor_id", "lead_id")
        )
        visible = selectors.lead_ids_visible(user=user, lead_ids={lead for _, lead in linked if lead})
        visitor_lead = {v: (visible.get(lead) if lead else None) for v, lead in linked}

    seen_external: set[str] = set()
    interactions: list[Interaction] = []
    anonymous: list[AnonymousEvent] = []
    for event in events:
        if event.external_id is not None:
            if event.external_id in seen_external:
                result.duplicate += 1
                continue
            seen_external.add(event.external_id)
        if event.lead_id:
            lead_id = lead_by_id.get(event.lead_id)
            if lead_id is None:
                result.reject(event.index, {"lead_id": [_("Unknown lead.")]})
                continue
        elif event.email:
            lead_id = lead_by_email.get(event.email)
            if lead_id is None:
                result.reject(event.index, {"email": [_("No lead has this e-mail address.")]})
                continue
        else:
            lead_id = visitor_lead.get(event.visitor_id)
            if lead_id is None:
                anonymous.append(
                    AnonymousEvent(
                        visitor_id=event.visitor_id,
                        type=event.type,
                        occurred_at=event.occurred_at,
                        properties=dict(event.properties),
                        external_id=event.external_id,
                        received_at=now,
                    )
                )
                continue
        interactions.append(
            Interaction(
                lead_id=lead_id,
                type=event.type,
                occurred_at=event.occurred_at,
                properties=dict(event.properties),
                external_id=event.external_id,
                created_by=user,
                created_at=now,
            )
        )
    stored = _record_interactions(interactions, now) + len(_insert_ignoring_duplicates(AnonymousEvent, anonymous))
    result.accepted += stored
    result.duplicate += len(interactions) + len(anonymous) - stored
    return result


@transaction.atomic
def visitor_link(*, visitor_id: str, lead: Lead) -> int:
    """Link an anonymous visitor to ``lead``: its earlier events become the lead's interactions.

    Called when the visitor submits a form (or is otherwise identified). Later events for this
    visitor id go straight to the lead. Returns how many anonymous events were moved. Calling it
    twice moves nothing the second time.
    """
    now = timezone.now()
    visitor, _created = Visitor.objects.select_for_update().get_or_create(
        visitor_id=visitor_id, defaults={"first_seen_at": now}
    )
    if visitor.lead_id is not None and visitor.lead_id != lead.pk:
        # First link wins: whoever knows a visitor id must not pull that person's history to another lead.
        return 0
    if visitor.lead_id != lead.pk:
        visitor.lead = lead
        visitor.linked_at = now
        visitor.save(update_fields=["lead", "linked_at"])
    pending = list(AnonymousEvent.objects.filter(visitor_id=visitor_id).order_by("occurred_at", "id"))
    if not pending:
        return 0
    interactions = [
        Interaction(
            lead_id=lead.pk,
            type=e.type,
            occurred_at=e.occurred_at,
            properties={**e.properties, "visitor_id": visitor_id},
            external_id=e.external_id,
            created_at=now,
        )
        for e in pending
    ]
    AnonymousEvent.objects.filter(pk__in=[e.pk for e in pending]).delete()
    return _record_interactions(interactions, now)
