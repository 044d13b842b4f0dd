"""Merge a duplicate lead into its primary (moving its history) and undo such a merge exactly."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Model
from django.utils import timezone
from django.utils.translation import gettext as _

from leads.models import FormSubmission, Interaction, Lead, LeadMerge, LeadStageChange, Task, Visitor
from leads.services.pipeline import leads_mark_dirty
from users.models import User

# Rows that belong to the person, not to one record of them: they follow the merge (and come back on undo).
MOVED: dict[str, type[Model]] = {
    "interactions": Interaction,
    "stage_changes": LeadStageChange,
    "tasks": Task,
    "visitors": Visitor,
    "form_submissions": FormSubmission,
}
# Fields of the primary that an empty value lets the duplicate fill.
FILLABLE = (
    "email", "phone", "company", "job_title", "website", "industry", "company_size", "country", "region", "city",
    "utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content", "campaign_id",
)  # fmt: skip


def _lock_pair(first_id: int, second_id: int) -> dict[int, Lead]:
    """Lock both leads in id order (two merges of one pair in opposite directions cannot deadlock)."""
    rows = Lead.objects.select_for_update().filter(pk__in=[first_id, second_id]).order_by("pk")
    return {lead.pk: lead for lead in rows}


@transaction.atomic
def lead_merge(*, primary: Lead, duplicate: Lead, by: User | None) -> LeadMerge:
    """Merge ``duplicate`` into ``primary``: move its history, fill the primary's empty fields, keep it as a pointer.

    Everything that moved and every field filled is written to ``LeadMerge.snapshot``, which is what
    ``lead_merge_undo`` puts back.
    """
    if primary.pk == duplicate.pk:
        raise ValidationError({"duplicate_id": [_("A lead cannot be merged into itself.")]})
    locked = _lock_pair(primary.pk, duplicate.pk)
    a, b = locked[primary.pk], locked[duplicate.pk]
    if a.merged_into_id is not None:
        raise ValidationError({"primary": [_("This lead was itself merged into another lead.")]})
    if b.merged_into_id is not None:
        raise ValidationError({"duplicate_id": [_("That lead is already merged into another lead.")]})
    if Lead.objects.filter(merged_into=b).exists():
        # B → A while C → B would make a chain; undo C's merge first (or merge C into A).
        raise ValidationError({"duplicate_id": [_("Other leads were merged into that lead; undo those merges first.")]})

    moved: dict[str, list[int]] = {}
    for key, model in MOVED.items():
        ids = list(model._default_manager.filter(lead=b).values_list("pk", flat=True))
        model._default_manager.filter(pk__in=ids).update(lead=a)
        moved[key] = ids
    filled: dict[str, Any] = {}
    for name in FILLABLE:
        if getattr(a, name) in ("", None) and getattr(b, name) not in ("", None):
            filled[name] = getattr(b, name)
            setattr(a, name, filled[name])
    attributes_added = {k: v for k, v in b.attributes.items() if k not in a.attributes}
    if attributes_added:
        a.attributes = {**a.attributes, **attributes_added}
    a_tag_ids = set(a.tags.values_list("pk", flat=True))
    tags_added = sorted(set(b.tags.values_list("pk", flat=True)) - a_tag_ids)
    a.tags.add(*tags_added)
    previous_activity = a.last_activity_at
    a.last_activity_at = max(a.last_activity_at, b.last_activity_at)
    a.save(update_fields=[*filled, "attributes", "last_activity_at", "updated_at"])
    b.merged_into = a
    b.save(update_fields=["merged_into", "updated_at"])
    merge = LeadMerge.objects.create(
        primary=a,
        merged=b,
        merged_by=by,
        snapshot={
            "moved": moved,
            "filled": filled,
            "attributes_added": sorted(attributes_added),
            "tags_added": tags_added,
            "primary_last_activity_at": previous_activity.isoformat(),
            "primary_last_activity_after": a.last_activity_at.isoformat(),
        },
    )
    # The primary's score must now count the duplicate's events too.
    leads_mark_dirty(lead_ids=[a.pk])
    primary.refresh_from_db()
    duplicate.refresh_from_db()
    return merge


@transaction.atomic
def lead_merge_undo(*, merge: LeadMerge, by: User | None) -> LeadMerge:
    """Undo a merge: moved rows go back, filled fields are emptied again, the duplicate is a lead again.

    A field someone has edited since the merge keeps its new value: undo restores the merge, not the
    edits made after it.
    """
    merge = LeadMerge.objects.select_for_update().get(pk=merge.pk)
    if merge.undone_at is not None:
        raise ValidationError({"merge": [_("This merge was already undone.")]})
    locked = _lock_pair(merge.primary_id, merge.merged_id)
    a, b = locked[merge.primary_id], locked[merge.merged_id]
    if a.merged_into_id is not None:
        raise ValidationError({"merge": [_("The primary lead was merged again since; undo that merge first.")]})
    snapshot = merge.snapshot
    for key, model in MOVED.items():
        ids = snapshot.get("moved", {}).get(key, [])
        model._default_manager.filter(pk__in=ids, lead=a).update(lead=b)
    update_fields = ["updated_at", "last_activity_at"]
    for name, value in snapshot.get("filled", {}).items():
        if getattr(a, name) == value:
            setattr(a, name, None if name.endswith("_id") else "")
            update_fields.append(name)
    added_keys = [k for k in snapshot.get("attributes_added", []) if k in a.attributes]
    if added_keys:
        a.attributes = {k: v for k, v in a.attributes.items() if k not in added_keys}
        update_fields.append("attributes")
    a.tags.remove(*snapshot.get("tags_added", []))
    # Activity that reached the primary after the merge moved the stamp on; then it stays.
    if a.last_activity_at == datetime.fromisoformat(snapshot["primary_last_activity_after"]):
        a.last_activity_at = datetime.fromisoformat(snapshot["primary_last_activity_at"])
    a.save(update_fields=update_fields)
    b.merged_into = None
    b.save(update_fields=["merged_into", "updated_at"])
    merge.undone_at = timezone.now()
    merge.undone_by = by
    merge.save(update_fields=["undone_at", "undone_by"])
    leads_mark_dirty(lead_ids=[a.pk, b.pk])
    return merge
