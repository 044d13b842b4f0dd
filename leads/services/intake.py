"""Single-lead intake with deduplication: every entry point (API, page, web form) creates leads through here."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Case, IntegerField, Q, Value, When
from django.utils.translation import gettext as _

from leads.models import Lead, Stage
from leads.services.leads import (
    CLEAN_EXCLUDE,
    EDITABLE_FIELDS,
    _normalized,
    _tags_for,
    interaction_record,
    lead_create,
    lead_update,
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


def _lock_identity(*, email: str, phone: str) -> None:
    """Serialize intake of one person across connections until the transaction ends (PostgreSQL).

    Keys are taken in sorted order so that a submission with (email A, phone B) and one with (phone B,
    email A) cannot deadlock. SQLite serializes writers on its own.
    """
    if connection.vendor != "postgresql":
        return
    keys = sorted(key for key in (f"email:{email}" if email else "", f"phone:{phone}" if phone else "") if key)
    with connection.cursor() as cursor:
        for key in keys:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [key])


def _match(*, email: str, phone: str, lock: bool) -> Lead | None:
    # One query for both keys (PostgreSQL ORs the two indexes); an e-mail match ranks before a phone match.
    condition = (Q(email=email) if email else Q()) | (Q(phone=phone) if phone else Q())
    if not email and not phone:
        return None
    candidates = Lead.objects.filter(condition, merged_into__isnull=True)
    if email:
        candidates = candidates.annotate(
            email_rank=Case(When(email=email, then=Value(0)), default=Value(1), output_field=IntegerField())
        ).order_by("email_rank", "created_at", "id")
    else:
        candidates = candidates.order_by("created_at", "id")
    if lock:
        candidates = candidates.select_for_update(of=("self",))
    return candidates.first()


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
    _validate_values(data)
    email, phone = data.get("email", ""), data.get("phone", "")
    _lock_identity(email=email, phone=phone)
    lead = _match(email=email, phone=phone, lock=True)
    if lead is None:
        if not data.get("name") and fallback_name:
            data["name"] = fallback_name
        if not data.get("name"):
            raise ValidationError({"name": [_("This field is required.")]})
        return lead_create(created_by=created_by, tags=tags, stage=stage, **data), True

    fills: dict[str, Any] = {}
    conflicts: list[tuple[str, Any, Any]] = []
    for name, received in data.items():
        if name in NEVER_FILLED or _is_empty(received):
            continue
        kept = getattr(lead, name)
        if name == "attributes":
            added = {k: v for k, v in received.items() if k not in kept}
            conflicts += [(f"attr:{k}", kept[k], v) for k, v in received.items() if k in kept and kept[k] != v]
            if added:
                fills["attributes"] = {**kept, **added}
        elif name == "interests":
            new = [item for item in received if item not in kept]
            if new:
                fills["interests"] = [*kept, *new]
        elif name == "do_not_contact":
            if received and not kept:
                fills[name] = True  # an opt-out always wins
        elif name == "source":
            if kept == "other" and received != "other":
                fills[name] = received
        elif _is_empty(kept):
            fills[name] = received
        elif _plain(kept) != _plain(received) and name not in FIRST_TOUCH:
            conflicts.append((name, _plain(kept), _plain(received)))
    if fills:
        lead_update(lead=lead, changed_by=created_by, **fills)
    if tags:
        lead.tags.add(*_tags_for(tags))
    for field, kept_value, received_value in conflicts:
        interaction_record(
            lead=lead,
            type=FIELD_CONFLICT,
            properties={"field": field, "kept": kept_value, "received": received_value, "source": source_label},
            created_by=created_by,
        )
    return lead, False
