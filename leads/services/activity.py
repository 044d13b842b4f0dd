"""Sales activity a person logs on a lead (call, e-mail, meeting, note), and the first touch it may count as."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from leads.models import EventType, Interaction, Lead, Stage
from leads.services.leads import interaction_record, lead_change_stage
from users.models import User

# The event-type keys a person may log by hand; each is a row of the EventType catalogue.
ACTIVITY_KINDS = ("call", "email", "meeting", "note")
NOTE_MAX_LENGTH = 10_000
# Clocks differ a little between a laptop and the server; a log dated later than this is a typo.
FUTURE_TOLERANCE = timedelta(minutes=5)


class ActivityOutcome(models.TextChoices):
    CONNECTED = "connected", gettext_lazy("Connected")
    LEFT_VOICEMAIL = "left_voicemail", gettext_lazy("Left voicemail")
    NO_ANSWER = "no_answer", gettext_lazy("No answer")
    BUSY = "busy", gettext_lazy("Busy")
    WRONG_NUMBER = "wrong_number", gettext_lazy("Wrong number")
    REPLIED = "replied", gettext_lazy("Replied")
    HELD = "held", gettext_lazy("Held")
    NO_SHOW = "no_show", gettext_lazy("No-show")


def _clean_note(note: str) -> str:
    # Notes are prose: keep the writer's punctuation (no NFKC, which would turn ，into ,) and line breaks.
    text = "\n".join(line.rstrip() for line in (note or "").replace("\r\n", "\n").split("\n")).strip()
    return "".join(ch for ch in text if ch in "\n\t" or ch.isprintable())


@transaction.atomic
def activity_log(
    *,
    lead: Lead,
    kind: str,
    note: str = "",
    outcome: str = "",
    occurred_at: datetime | None = None,
    by: User,
) -> Interaction:
    """Record a call, e-mail, meeting or note on the lead; the owner's first touch moves a new lead to contacted."""
    errors: dict[str, list[str]] = {}
    event_type = EventType.objects.filter(key=kind, is_active=True).first() if kind in ACTIVITY_KINDS else None
    if event_type is None:
        errors["kind"] = [_("Choose one of: call, email, meeting, note.")]
    clean_note = _clean_note(note)
    if len(clean_note) > NOTE_MAX_LENGTH:
        errors["note"] = [_("A note may have at most %(max)d characters.") % {"max": NOTE_MAX_LENGTH}]
    if outcome and outcome not in ActivityOutcome.values:
        errors["outcome"] = [_("Unknown outcome “%(outcome)s”.") % {"outcome": outcome}]
    if kind == "note" and not clean_note:
        errors["note"] = [_("Write the note.")]
    if occurred_at is not None and occurred_at > timezone.now() + FUTURE_TOLERANCE:
        errors["occurred_at"] = [_("An activity cannot be logged in the future.")]
    if errors:
        raise ValidationError(errors)
    assert event_type is not None

    # Lock the lead before writing so "still new" cannot change between the check and the move.
    current_stage = Lead.objects.select_for_update().values_list("stage", flat=True).get(pk=lead.pk)
    properties = {"note": clean_note} if clean_note else {}
    if outcome:
        properties["outcome"] = outcome
    interaction = interaction_record(
        lead=lead, type=kind, occurred_at=occurred_at, properties=properties, created_by=by
    )
    if event_type.is_touch and lead.owner_id == by.pk and current_stage == Stage.NEW:
        lead_change_stage(
            lead=lead,
            stage=Stage.CONTACTED,
            changed_by=by,
            reason=_("First touch: %(kind)s") % {"kind": event_type.name},
        )
    return interaction
