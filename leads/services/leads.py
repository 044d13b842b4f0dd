"""Writes for leads: create, update, change stage, assign an owner, record an interaction."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import DateTimeField, F, Value
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone
from django.utils.translation import gettext as _

from common.normalize import normalize_email, normalize_phone, normalize_text
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


def _normalized(data: Mapping[str, Any]) -> dict[str, Any]:
    """Normalize contact fields; raise one ValidationError naming every bad field."""
    clean = dict(data)
    errors: dict[str, list[str]] = {}
    for field in TEXT_FIELDS:
        if field in clean:
            clean[field] = normalize_text(clean[field])
    if "country" in clean:
        clean["country"] = normalize_text(clean["country"]).upper()
    for field, normalizer in (("email", normalize_email), ("phone", normalize_phone)):
        if field in clean:
            try:
                clean[field] = normalizer(clean[field])
            except ValidationError as exc:
                errors[field] = exc.messages
    if errors:
        raise ValidationError(errors)
    return clean


def _tags_for(names: Iterable[str]) -> list[Tag]:
    wanted = sorted({normalize_text(n) for n in names if normalize_text(n)})
    existing = {t.name: t for t in Tag.objects.filter(name__in=wanted)}
    missing = [Tag(name=n) for n in wanted if n not in existing]
    if missing:
        Tag.objects.bulk_create(missing, ignore_conflicts=True)
        existing = {t.name: t for t in Tag.objects.filter(name__in=wanted)}
    return list(existing.values())


def _apply_owner_team(lead: Lead) -> None:
    """An owned lead belongs to its owner's team unless a team was set explicitly."""
    if lead.owner_id is not None and lead.team_id is None and lead.owner is not None:
        lead.team_id = lead.owner.team_id


@transaction.atomic
def lead_create(
    *, created_by: User | None = None, tags: Iterable[str] = (), stage: str = Stage.NEW, **fields: Any
) -> Lead:
    """Create a lead from normalized fields and write its first stage-history row."""
    unknown = set(fields) - EDITABLE_FIELDS
    if unknown:
        raise TypeError(f"lead_create() got unexpected fields: {sorted(unknown)}")
    data = _normalized(fields)
    if not data.get("name"):
        raise ValidationError({"name": [_("This field is required.")]})
    now = timezone.now()
    lead = Lead(**data, created_by=created_by, created_at=now, last_activity_at=now, stage=Stage.NEW)
    _apply_owner_team(lead)
    lead.full_clean(exclude=CLEAN_EXCLUDE)
    lead.save()
    LeadStageChange.objects.create(lead=lead, from_stage="", to_stage=Stage.NEW, changed_by=created_by, changed_at=now)
    if stage != Stage.NEW:
        lead_change_stage(lead=lead, stage=stage, changed_by=created_by, reason=data.get("lost_reason", ""))
    if tags:
        lead.tags.set(_tags_for(tags))
    return lead


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
    unknown = set(fields) - EDITABLE_FIELDS
    if unknown:
        raise TypeError(f"lead_update() got unexpected fields: {sorted(unknown)}")
    data = _normalized(fields)
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
    if stage is not None and stage != lead.stage:
        lead_change_stage(lead=lead, stage=stage, changed_by=changed_by, reason=data.get("lost_reason", ""))
    if tags is not None:
        lead.tags.set(_tags_for(tags))
    return lead


@transaction.atomic
def lead_change_stage(
    *, lead: Lead, stage: str, changed_by: User | None = None, reason: str = ""
) -> LeadStageChange | None:
    """Move the lead to ``stage``, stamp the lifecycle time the first time, and record who did it."""
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

    One UPDATE does both, and it locks the lead row: if a pipeline worker is writing a batch that
    holds the lead we wait for that short write, so its flag-clearing cannot hide this event (see
    ``leads.services.pipeline``). Processing is enqueued on commit.
    """
    now = timezone.now()
    when = occurred_at or now
    interaction = Interaction.objects.create(
        lead=lead,
        type=type,
        occurred_at=when,
        properties=dict(properties or {}),
        external_id=external_id or None,
        created_by=created_by,
        created_at=now,
    )
    Lead.objects.filter(pk=lead.pk).update(
        last_activity_at=Greatest(F("last_activity_at"), Value(when, output_field=DateTimeField())),
        dirty_since=Coalesce(F("dirty_since"), Value(now, output_field=DateTimeField())),
    )
    pipeline_enqueue_on_commit()
    return interaction


def lead_delete(*, lead: Lead) -> None:
    lead.delete()
