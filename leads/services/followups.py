"""Follow-up tasks on a lead: create, edit, complete, reopen."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from common.normalize import normalize_text
from leads.models import Lead, Task, TaskKind
from leads.selectors import lead_visible_to
from leads.services.activity import NOTE_MAX_LENGTH, activity_log
from users.models import User

# Completing one of these with a note is the activity itself: it is logged on the timeline.
LOGGED_ON_COMPLETION = frozenset({TaskKind.CALL, TaskKind.MEETING})
TITLE_MAX_LENGTH = 200


def _check_assignee(*, lead: Lead, assignee: User | None, errors: dict[str, list[str]]) -> None:
    if assignee is None:
        errors["assignee"] = [_("This field is required.")]
    elif not assignee.is_active or not lead_visible_to(assignee).filter(pk=lead.pk).exists():
        # Not named in the message: the API takes any user id, and an error must not reveal who it is.
        errors["assignee"] = [_("This person cannot see this lead; choose someone who can.")]


def _check_fields(data: dict[str, Any], errors: dict[str, list[str]]) -> dict[str, Any]:
    clean = dict(data)
    if "title" in clean:
        clean["title"] = normalize_text(clean["title"])
        if not clean["title"]:
            errors["title"] = [_("This field is required.")]
        elif len(clean["title"]) > TITLE_MAX_LENGTH:
            errors["title"] = [_("At most %(max)d characters.") % {"max": TITLE_MAX_LENGTH}]
    if "kind" in clean and clean["kind"] not in TaskKind.values:
        errors["kind"] = [_("Choose one of: %(kinds)s.") % {"kinds": ", ".join(TaskKind.values)}]
    if "due_at" in clean and not isinstance(clean["due_at"], datetime):
        errors["due_at"] = [_("This field is required.")]
    if "notes" in clean:
        clean["notes"] = (clean["notes"] or "").strip()
        if len(clean["notes"]) > NOTE_MAX_LENGTH:
            errors["notes"] = [_("At most %(max)d characters.") % {"max": NOTE_MAX_LENGTH}]
    return clean


@transaction.atomic
def task_create(
    *,
    lead: Lead,
    title: str,
    due_at: datetime,
    assignee: User,
    created_by: User,
    kind: str = TaskKind.TODO,
    notes: str = "",
) -> Task:
    """A follow-up on ``lead`` for ``assignee``, who must be able to see the lead."""
    errors: dict[str, list[str]] = {}
    data = _check_fields({"title": title, "kind": kind, "due_at": due_at, "notes": notes}, errors)
    _check_assignee(lead=lead, assignee=assignee, errors=errors)
    if errors:
        raise ValidationError(errors)
    return Task.objects.create(lead=lead, assignee=assignee, created_by=created_by, **data)


@transaction.atomic
def task_update(
    *,
    task: Task,
    by: User,
    title: str | None = None,
    kind: str | None = None,
    due_at: datetime | None = None,
    assignee: User | None = None,
    notes: str | None = None,
) -> Task:
    """Change what was given (None = leave as is); a new assignee must be able to see the lead."""
    given = {
        name: value
        for name, value in (("title", title), ("kind", kind), ("due_at", due_at), ("notes", notes))
        if value is not None
    }
    errors: dict[str, list[str]] = {}
    data = _check_fields(given, errors)
    if assignee is not None and assignee.pk != task.assignee_id:
        _check_assignee(lead=task.lead, assignee=assignee, errors=errors)
        data["assignee"] = assignee
    if errors:
        raise ValidationError(errors)
    changed = [name for name, value in data.items() if getattr(task, name) != value]
    for name in changed:
        setattr(task, name, data[name])
    if changed:
        task.save(update_fields=changed)
    return task


@transaction.atomic
def task_complete(*, task: Task, by: User, note: str = "") -> Task:
    """Mark the task done (once: completing it again changes nothing and logs nothing).

    A call or meeting completed with a note is logged as that activity on the lead; other tasks only
    appear on the timeline as done.
    """
    locked = Task.objects.select_for_update().get(pk=task.pk)
    if locked.done_at is not None:
        task.done_at = locked.done_at
        return task
    note = (note or "").strip()
    if len(note) > NOTE_MAX_LENGTH:
        raise ValidationError({"note": [_("At most %(max)d characters.") % {"max": NOTE_MAX_LENGTH}]})
    task.done_at = timezone.now()
    update_fields = ["done_at"]
    if note:
        task.notes = f"{task.notes}\n\n{note}".strip() if task.notes else note
        update_fields.append("notes")
    task.save(update_fields=update_fields)
    if note and task.kind in LOGGED_ON_COMPLETION:
        activity_log(lead=task.lead, kind=task.kind, note=note, by=by)
    return task


@transaction.atomic
def task_reopen(*, task: Task, by: User) -> Task:
    """Put a done task back on the list (its logged activity, if any, stays: it happened)."""
    if task.done_at is not None:
        task.done_at = None
        task.save(update_fields=["done_at"])
    return task
