"""Web-to-lead forms: manage forms, take public submissions (dedup, idempotency, spam quarantine), release them."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from leads.models import FormSubmission, Lead, SubmissionStatus, WebForm
from leads.services.events import visitor_link
from leads.services.intake import lead_upsert
from leads.services.leads import interaction_record
from users.models import User

# Lead fields a form field may fill; anything else goes to a custom attribute ("attr:<key>").
LEAD_TARGETS = (
    "name", "email", "phone", "company", "job_title", "website",
    "industry", "company_size", "country", "region", "city",
)  # fmt: skip
ATTR_PREFIX = "attr:"
ATTR_KEY_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")
UTM_FIELDS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
# Names the endpoint reads itself: where the form was, who the visitor is, when the page was rendered.
PAGE_URL_FIELD, REFERRER_FIELD, VISITOR_FIELD, RENDERED_AT_FIELD = "page_url", "referrer", "visitor_id", "_ts"
RESERVED_FIELDS = frozenset({PAGE_URL_FIELD, REFERRER_FIELD, VISITOR_FIELD, RENDERED_AT_FIELD, *UTM_FIELDS})
MAX_FIELDS = 100
MAX_VALUE_CHARS = 10_000
MIN_SECONDS_TO_FILL = 2.0
MAX_LINKS = 3
URL_RE = re.compile(r"https?://|www\.", re.IGNORECASE)
# Throwaway-mailbox providers: a lead with one of these is almost never a buyer.
DISPOSABLE_DOMAINS = frozenset(
    {
        "mailinator.com", "guerrillamail.com", "guerrillamail.net", "sharklasers.com", "10minutemail.com",
        "tempmail.com", "temp-mail.org", "yopmail.com", "trashmail.com", "getnada.com", "dispostable.com",
        "maildrop.cc", "throwawaymail.com", "fakeinbox.com", "mailnesia.com", "emailondeck.com",
        "spamgourmet.com", "mintemail.com", "mytemp.email", "tempail.com", "moakt.com", "linshiyouxiang.net",
    }
)  # fmt: skip
FORM_SUBMIT = "form_submit"
WEBFORM_FIELDS = frozenset(
    {
        "name", "slug", "field_mapping", "default_source", "default_campaign", "default_tags",
        "allowed_origins", "success_url", "honeypot_field", "rate_limit_per_minute", "is_active",
    }
)  # fmt: skip


@dataclass(frozen=True)
class SubmissionOutcome:
    """What the endpoint answers: the status and JSON body (replayed verbatim for the same Idempotency-Key)."""

    status_code: int
    body: dict[str, Any]
    submission: FormSubmission | None = None
    replayed: bool = False
    quarantined: bool = False


@dataclass
class MappedSubmission:
    lead_fields: dict[str, Any] = field(default_factory=dict)
    attributes: dict[str, str] = field(default_factory=dict)
    # Lead field (or "attributes") → the form field that filled it, to name errors as the form knows them.
    origin: dict[str, str] = field(default_factory=dict)


# --- Rules (pure) ------------------------------------------------------------------------------


def field_mapping_errors(mapping: Any) -> list[str]:
    """Why a field mapping ({form field: lead field | "attr:<key>"}) is unusable; empty when it is fine."""
    if not isinstance(mapping, dict):
        return [_("The field mapping must be an object of form field → target.")]
    errors = []
    for source, target in mapping.items():
        if not isinstance(source, str) or not source.strip() or len(source) > 100:
            errors.append(_("“%(field)s”: a form field name is 1 to 100 characters.") % {"field": source})
        elif source in RESERVED_FIELDS:
            errors.append(_("“%(field)s” is read by the endpoint itself and cannot be mapped.") % {"field": source})
        if not isinstance(target, str):
            errors.append(_("“%(field)s”: the target must be text.") % {"field": source})
        elif target.startswith(ATTR_PREFIX):
            if not ATTR_KEY_RE.match(target[len(ATTR_PREFIX) :]):
                errors.append(
                    _("“%(field)s”: “%(target)s” is not a valid attribute key (letters, digits, _ . -).")
                    % {"field": source, "target": target}
                )
        elif target not in LEAD_TARGETS:
            errors.append(
                _("“%(field)s”: unknown target “%(target)s”; use one of %(targets)s or attr:<key>.")
                % {"field": source, "target": target, "targets": ", ".join(LEAD_TARGETS)}
            )
    return errors


def field_mapping_parse(text: str) -> dict[str, str]:
    """Parse ``form field = target`` lines (the page's textarea); raise ValidationError naming bad lines."""
    mapping: dict[str, str] = {}
    errors = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        source, sep, target = line.partition("=")
        if not sep or not source.strip() or not target.strip():
            errors.append(_("Line %(number)d: write “form field = target”.") % {"number": number})
            continue
        mapping[source.strip()] = target.strip()
    errors += field_mapping_errors(mapping)
    if errors:
        raise ValidationError(errors)
    return mapping


def field_mapping_format(mapping: Mapping[str, str]) -> str:
    return "\n".join(f"{source} = {target}" for source, target in mapping.items())


def spam_reasons(
    *, honeypot_value: str, rendered_at: str, texts: Iterable[str], email: str, now: datetime
) -> list[str]:
    """Why a submission looks like spam (empty: it does not). Pure: no database, no request."""
    reasons = []
    if honeypot_value.strip():
        reasons.append("honeypot")
    if rendered_at:
        try:
            stamp = float(rendered_at)
            seconds = stamp / 1000 if stamp > 1e11 else stamp  # JavaScript's Date.now() is milliseconds
            if now.timestamp() - seconds < MIN_SECONDS_TO_FILL:
                reasons.append("too fast")
        except ValueError:
            reasons.append("bad timestamp")
    if sum(len(URL_RE.findall(text)) for text in texts) > MAX_LINKS:
        reasons.append("too many links")
    domain = email.rpartition("@")[2].strip().lower()
    if domain and domain in DISPOSABLE_DOMAINS:
        reasons.append("disposable e-mail")
    return reasons


def _flatten(data: Mapping[str, Any]) -> dict[str, str]:
    """The submission as flat text; a nested value is a field error (the payload is kept as received)."""
    if len(data) > MAX_FIELDS:
        raise ValidationError({"non_field_errors": [_("Too many fields (at most %(n)d).") % {"n": MAX_FIELDS}]})
    flat: dict[str, str] = {}
    errors: dict[str, list[str]] = {}
    for key, value in data.items():
        if isinstance(value, bool):
            flat[key] = "true" if value else "false"
        elif value is None:
            flat[key] = ""
        elif isinstance(value, str | int | float):
            flat[key] = str(value)
        else:
            errors[key] = [_("Send text, a number or a boolean.")]
            continue
        if len(flat[key]) > MAX_VALUE_CHARS:
            errors[key] = [_("At most %(n)d characters.") % {"n": MAX_VALUE_CHARS}]
    if errors:
        raise ValidationError(errors)
    return flat


def _map(form: WebForm, flat: Mapping[str, str]) -> MappedSubmission:
    """Apply the form's mapping; unmapped fields named like a lead field fill that field."""
    mapped = MappedSubmission()
    mapping = form.field_mapping or {}
    for key, value in flat.items():
        if key in RESERVED_FIELDS or key == form.honeypot_field:
            continue
        target = mapping.get(key) or (key if key in LEAD_TARGETS else None)
        if target is None or not value.strip():
            continue
        if target.startswith(ATTR_PREFIX):
            mapped.attributes[target[len(ATTR_PREFIX) :]] = value.strip()
            mapped.origin["attributes"] = key
        else:
            mapped.lead_fields[target] = value
            mapped.origin[target] = key
    return mapped


def _utm(flat: Mapping[str, str], page_url: str) -> dict[str, str]:
    """UTM parameters from the submission, else from the page URL's query string."""
    query = parse_qs(urlsplit(page_url).query) if page_url else {}
    utm = {}
    for name in UTM_FIELDS:
        value = (flat.get(name) or (query.get(name) or [""])[0]).strip()[:200]
        if value:
            utm[name] = value
    return utm


# --- Writes ------------------------------------------------------------------------------------


def _check_form_fields(fields: Mapping[str, Any]) -> None:
    unknown = set(fields) - WEBFORM_FIELDS
    if unknown:
        raise TypeError(f"unexpected web form fields: {sorted(unknown)}")
    errors: dict[str, list[str]] = {}
    if "field_mapping" in fields and (mapping_errors := field_mapping_errors(fields["field_mapping"])):
        errors["field_mapping"] = mapping_errors
    origins = fields.get("allowed_origins", [])
    bad = [o for o in origins if not re.match(r"^https?://[^/\s?#]+$", str(o))]
    if bad:
        errors["allowed_origins"] = [
            _("Write each origin as scheme://host[:port], without a path: %(bad)s") % {"bad": ", ".join(map(str, bad))}
        ]
    if errors:
        raise ValidationError(errors)


@transaction.atomic
def webform_create(*, created_by: User | None, **fields: Any) -> WebForm:
    _check_form_fields(fields)
    form = WebForm(**fields, created_by=created_by)
    form.full_clean()
    form.save()
    return form


@transaction.atomic
def webform_update(*, form: WebForm, **fields: Any) -> WebForm:
    _check_form_fields(fields)
    for name, value in fields.items():
        setattr(form, name, value)
    form.full_clean()
    form.save()
    return form


def webform_delete(*, form: WebForm) -> None:
    form.delete()


def _errors_as_form_fields(exc: ValidationError, mapped: MappedSubmission) -> ValidationError:
    """Name each error after the form field that caused it: the external site knows its own names."""
    if not hasattr(exc, "error_dict"):
        return exc
    renamed: dict[str, list[str]] = {}
    for name, messages in exc.message_dict.items():
        key = mapped.origin.get(name, name)
        renamed.setdefault(key, []).extend(messages)
    return ValidationError(renamed)


def _accept(
    *, form: WebForm, submission: FormSubmission, flat: Mapping[str, str], by: User | None
) -> tuple[Lead, bool]:
    """Create or match the lead of a submission and put the submission on its timeline."""
    mapped = _map(form, flat)
    email_key = next((k for k, target in (form.field_mapping or {}).items() if target == "email"), "email")
    if not mapped.lead_fields.get("email") and not mapped.lead_fields.get("phone"):
        raise ValidationError({email_key: [_("Give an e-mail address or a phone number.")]})
    page_url = flat.get(PAGE_URL_FIELD, "") or submission.referrer
    utm = _utm(flat, page_url)
    fields: dict[str, Any] = {**mapped.lead_fields, **utm, "source": form.default_source}
    if form.default_campaign_id:
        fields["campaign"] = form.default_campaign
    if mapped.attributes:
        fields["attributes"] = mapped.attributes
    # A name is required for a new lead; a form that asks only for an e-mail names the lead after it.
    fields.setdefault("name", "")
    try:
        lead, created = lead_upsert(
            source_label=f"form:{form.slug}",
            created_by=by,
            tags=form.default_tags or (),
            fallback_name=mapped.lead_fields.get("email") or mapped.lead_fields.get("phone") or "",
            **fields,
        )
    except ValidationError as exc:
        raise _errors_as_form_fields(exc, mapped) from None
    interaction_record(
        lead=lead,
        type=FORM_SUBMIT,
        occurred_at=submission.received_at,
        properties={
            "form": form.slug,
            "form_name": form.name,
            "submission": submission.pk,
            "page_url": page_url[:1000],
            "referrer": (flat.get(REFERRER_FIELD) or submission.referrer)[:1000],
            **utm,
        },
        # No external_id: a guessable global id could be claimed first through the events API, making
        # this insert fail; the submission (in properties) already identifies the row.
        external_id=None,
        created_by=by,
    )
    visitor_id = flat.get(VISITOR_FIELD, "").strip()[:100]
    if visitor_id:
        visitor_link(visitor_id=visitor_id, lead=lead)
    return lead, created


def _replay(submission: FormSubmission) -> SubmissionOutcome:
    return SubmissionOutcome(
        status_code=submission.response_status or 200,
        body=dict(submission.response_body or {}),
        submission=submission,
        replayed=True,
        quarantined=submission.status == SubmissionStatus.QUARANTINED,
    )


def webform_submit(
    *,
    form: WebForm,
    data: Mapping[str, Any],
    ip_address: str | None = None,
    user_agent: str = "",
    referrer: str = "",
    idempotency_key: str | None = None,
    now: datetime | None = None,
) -> SubmissionOutcome:
    """Take one public submission: 201 new lead, 200 matched lead, 201-looking answer for quarantined spam.

    Raises ValidationError keyed by the *form's* field names; nothing is written then. The same
    ``idempotency_key`` (per form) replays the first answer and writes nothing, also when two requests
    with the key race: the partial unique constraint lets one in, the other replays its answer.
    """
    key = (idempotency_key or "").strip()[:200] or None
    if key is not None:
        previous = FormSubmission.objects.filter(form=form, idempotency_key=key).first()
        if previous is not None:
            return _replay(previous)
    if not form.is_active:
        raise ValidationError({"non_field_errors": [_("This form no longer accepts submissions.")]})
    flat = _flatten(data)
    now = now or timezone.now()
    mapped = _map(form, flat)
    reasons = spam_reasons(
        honeypot_value=flat.get(form.honeypot_field, ""),
        rendered_at=flat.get(RENDERED_AT_FIELD, ""),
        texts=[v for k, v in flat.items() if k not in (PAGE_URL_FIELD, REFERRER_FIELD) and k != "website"],
        email=str(mapped.lead_fields.get("email", "")),
        now=now,
    )
    submission = FormSubmission(
        form=form,
        received_at=now,
        status=SubmissionStatus.QUARANTINED if reasons else SubmissionStatus.ACCEPTED,
        spam_reason=", ".join(reasons)[:200],
        payload=dict(flat),
        ip_address=ip_address or None,
        user_agent=user_agent[:500],
        referrer=referrer[:1000],
        idempotency_key=key,
    )
    with transaction.atomic():
        if key is None:
            submission.save()  # nothing to collide with: no savepoint needed
        else:
            try:
                with transaction.atomic():
                    submission.save()
            except IntegrityError:
                # Another request with this key committed first (PostgreSQL made us wait for it): replay its answer.
                return _replay(FormSubmission.objects.get(form=form, idempotency_key=key))
        if reasons:
            # Looks like success to a bot; a marketer reviews it in the quarantine.
            body: dict[str, Any] = {"submission_id": submission.pk, "lead_id": None, "created": True}
            status_code = 201
        else:
            lead, created = _accept(form=form, submission=submission, flat=flat, by=None)
            submission.lead = lead
            body = {"submission_id": submission.pk, "lead_id": lead.pk, "created": created}
            status_code = 201 if created else 200
        submission.response_status = status_code
        submission.response_body = body
        submission.save(update_fields=["lead", "response_status", "response_body"])
    return SubmissionOutcome(status_code, body, submission, quarantined=bool(reasons))


@transaction.atomic
def submission_release(*, submission: FormSubmission, by: User) -> Lead:
    """Let a quarantined submission in: create or match its lead now, as if it had passed the filters."""
    locked = FormSubmission.objects.select_for_update().select_related("form").get(pk=submission.pk)
    if locked.status != SubmissionStatus.QUARANTINED:
        raise ValidationError({"status": [_("Only a quarantined submission can be released.")]})
    lead, _created = _accept(form=locked.form, submission=locked, flat=locked.payload, by=by)
    locked.status = SubmissionStatus.RELEASED
    locked.lead = lead
    locked.save(update_fields=["status", "lead"])
    submission.refresh_from_db()
    return lead


@transaction.atomic
def submission_reject(*, submission: FormSubmission, by: User) -> FormSubmission:
    """Reject a quarantined submission: it stays on record as rejected, and no lead is made from it."""
    locked = FormSubmission.objects.select_for_update().get(pk=submission.pk)
    if locked.status != SubmissionStatus.QUARANTINED:
        raise ValidationError({"status": [_("Only a quarantined submission can be rejected.")]})
    locked.status = SubmissionStatus.REJECTED
    locked.save(update_fields=["status"])
    submission.refresh_from_db()
    return locked
