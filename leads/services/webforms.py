"""Web-to-lead forms: manage forms, take public submissions (dedup, idempotency, spam quarantine), release them."""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models.signals import post_delete, post_save
from django.utils import timezone
from django.utils.translation import gettext as _

from leads.models import FormSubmission, Lead, SubmissionStatus, Tag, WebForm
from leads.services.events import visitor_link
from leads.services.intake import Upsert, _upsert_match_or_insert, _upsert_write
from leads.services.leads import NewInteraction, _insert_instance, _normalized, tag_ids_get_or_create
from users.models import User

logger = logging.getLogger(__name__)

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
# A spam reason: the form as a whole is over its ceiling (many clients at once); kept for review, not dropped.
FORM_CEILING_REASON = "form ceiling"
# The public endpoint reads forms from a per-process cache for this long at most; a change to any form
# (or tag) empties it at once in this process and, through the shared version below, in every other one.
FORM_CACHE_SECONDS = 10.0
FORMS_VERSION_KEY = "leadcrm-webforms-version"
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


# --- The forms the public endpoint serves (per-process cache) -------------------------------------


@dataclass(frozen=True)
class LiveForm:
    """A form as the submit endpoint uses it: the row and the ids of its default tags (resolved once)."""

    form: WebForm
    tag_ids: tuple[int, ...]


@dataclass
class _Cached:
    entry: LiveForm | None  # None: no such form
    expires: float
    version: Any  # the shared version it was confirmed against; _UNCONFIRMED until the first check


_UNCONFIRMED = object()
_live_forms: dict[str, _Cached] = {}
_live_forms_lock = threading.Lock()


def _live_load(slug: str) -> LiveForm | None:
    form = WebForm.objects.select_related("default_campaign").filter(slug=slug).first()
    if form is None:
        return None
    return LiveForm(form=form, tag_ids=tuple(tag_ids_get_or_create(form.default_tags or ())))


def _caching() -> bool:
    # Inside a transaction we may be looking at uncommitted rows (a test, an admin action): read them
    # directly and cache nothing that a rollback could take back.
    return not connection.in_atomic_block


def webform_live(*, slug: str) -> tuple[LiveForm | None, Any]:
    """The form behind a public URL and the shared forms version it was last confirmed against.

    From the per-process cache while it is younger than ``FORM_CACHE_SECONDS``; the caller confirms
    it with ``webform_live_confirm`` once it has read the shared version (the throttle reads it in the
    same Redis round trip). Loading a form resolves its default tags, creating missing ones.
    """
    if not _caching():
        return _live_load(slug), _UNCONFIRMED
    now = time.monotonic()
    cached = _live_forms.get(slug)
    if cached is None or cached.expires <= now:
        cached = _Cached(entry=_live_load(slug), expires=now + FORM_CACHE_SECONDS, version=_UNCONFIRMED)
        with _live_forms_lock:
            _live_forms[slug] = cached
    return cached.entry, cached.version


def webform_live_confirm(*, slug: str, version: Any) -> LiveForm | None:
    """The cached form if it was loaded under ``version`` (the current shared one), else a fresh load."""
    cached = _live_forms.get(slug) if _caching() else None
    if cached is None:
        return webform_live(slug=slug)[0]
    if cached.version is _UNCONFIRMED:
        cached.version = version
    elif cached.version != version:
        cached = _Cached(entry=_live_load(slug), expires=time.monotonic() + FORM_CACHE_SECONDS, version=version)
        with _live_forms_lock:
            _live_forms[slug] = cached
    return cached.entry


def webforms_version() -> Any:
    """The shared forms version (changes whenever a form or a tag changes); None before the first change."""
    return cache.get(FORMS_VERSION_KEY)


def _forms_changed(**kwargs: Any) -> None:
    """A form or tag changed: forget cached forms here now, and everywhere else once the change is committed."""
    with _live_forms_lock:
        _live_forms.clear()
    transaction.on_commit(_forms_version_bump)


def _forms_version_bump() -> None:
    with _live_forms_lock:
        _live_forms.clear()
    cache.set(FORMS_VERSION_KEY, time.time_ns(), timeout=None)


for _signal in (post_save, post_delete):
    for _model in (WebForm, Tag):
        _signal.connect(_forms_changed, sender=_model, dispatch_uid=f"webform-cache-{_signal}-{_model.__name__}")


# --- Writes ------------------------------------------------------------------------------------


def _check_form_fields(fields: Mapping[str, Any], form: WebForm | None = None) -> None:
    """Field-level errors for a form's new values (``form``: the one being updated, for what is unchanged)."""
    unknown = set(fields) - WEBFORM_FIELDS
    if unknown:
        raise TypeError(f"unexpected web form fields: {sorted(unknown)}")
    errors: dict[str, list[str]] = {}
    if "field_mapping" in fields and (mapping_errors := field_mapping_errors(fields["field_mapping"])):
        errors["field_mapping"] = mapping_errors
    if "honeypot_field" in fields or "field_mapping" in fields:
        honeypot = fields.get(
            "honeypot_field", form.honeypot_field if form else WebForm._meta.get_field("honeypot_field").get_default()
        )
        mapping = fields.get("field_mapping", form.field_mapping if form else {})
        # A honeypot that people or the embed script fill would send every submission to the quarantine.
        if honeypot in RESERVED_FIELDS:
            errors["honeypot_field"] = [
                _("“%(field)s” is filled in by the form's own script; name a field nobody fills, e.g. website_url.")
                % {"field": honeypot}
            ]
        elif isinstance(mapping, Mapping) and honeypot in mapping:
            errors["honeypot_field"] = [
                _("“%(field)s” is a mapped field that people fill in; the honeypot must be a field nobody sees.")
                % {"field": honeypot}
            ]
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
    _check_form_fields(fields, form)
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


@dataclass
class _Acceptance:
    """A submission's lead, matched or inserted, and what its ``form_submit`` event will say."""

    upsert: Upsert
    page_url: str
    referrer: str
    utm: dict[str, str]


def _accept_lead(
    *, form: WebForm, submission: FormSubmission, flat: Mapping[str, str], by: User | None, tag_ids: Sequence[int]
) -> _Acceptance:
    """Create or match the lead of a submission; its timeline is written by ``_accept_record``."""
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
        upsert = _upsert_match_or_insert(
            data=_normalized(fields),
            source_label=f"form:{form.slug}",
            created_by=by,
            tag_ids=tag_ids,
            fallback_name=mapped.lead_fields.get("email") or mapped.lead_fields.get("phone") or "",
            mark_dirty=True,  # the form_submit event follows in this transaction
        )
    except ValidationError as exc:
        raise _errors_as_form_fields(exc, mapped) from None
    # A referrer field sent by the page (the snippet's document.referrer) wins, even empty (a direct visit);
    # without one the Referer header is the best we have, though for a form post it names the form's page.
    referrer = flat.get(REFERRER_FIELD, submission.referrer).strip()[:1000]
    return _Acceptance(upsert=upsert, page_url=page_url, referrer=referrer, utm=utm)


def _accept_record(
    acceptance: _Acceptance, *, form: WebForm, submission: FormSubmission, flat: Mapping[str, str], by: User | None
) -> None:
    """Write the lead's fills and conflicts and the ``form_submit`` event (the submission is saved by now)."""
    event = NewInteraction(
        type=FORM_SUBMIT,
        occurred_at=submission.received_at,
        properties={
            "form": form.slug,
            "form_name": form.name,
            "submission": submission.pk,
            "page_url": acceptance.page_url[:1000],
            "referrer": acceptance.referrer,
            **acceptance.utm,
        },
        # No external_id: a guessable global id could be claimed first through the events API, making
        # this insert fail; the submission (in properties) already identifies the row.
    )
    _upsert_write(acceptance.upsert, created_by=by, events=[event])
    visitor_id = flat.get(VISITOR_FIELD, "").strip()[:100]
    if visitor_id:
        visitor_link(visitor_id=visitor_id, lead=acceptance.upsert.lead)


def _replay(submission: FormSubmission) -> SubmissionOutcome:
    return SubmissionOutcome(
        status_code=submission.response_status or 200,
        # The stored answer leaves out the submission's own id (it is the row's id).
        body={"submission_id": submission.pk, **(submission.response_body or {})},
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
    tag_ids: Sequence[int] | None = None,
    over_form_ceiling: bool = False,
) -> SubmissionOutcome:
    """Take one public submission: 201 new lead, 200 matched lead, 201-looking answer for quarantined spam.

    Raises ValidationError keyed by the *form's* field names; nothing is written then. The same
    ``idempotency_key`` (per form) replays the first answer and writes nothing, also when two requests
    with the key race: the partial unique constraint lets one in, the other replays its answer.
    ``tag_ids``: the form's default tags, already resolved (``webform_live``). ``over_form_ceiling``: the
    form as a whole receives more than its ceiling, so the submission waits in the quarantine.
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
    if over_form_ceiling:
        reasons.append(FORM_CEILING_REASON)
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
        if key is not None:
            # Claim the key first, so that a racing retry waits for us and then replays our answer.
            try:
                with transaction.atomic():
                    submission.save()
            except IntegrityError:
                # Another request with this key committed first (PostgreSQL made us wait for it): replay its answer.
                return _replay(FormSubmission.objects.get(form=form, idempotency_key=key))
        acceptance = None
        if reasons:
            # Looks like success to a bot; a marketer reviews it in the quarantine.
            status_code, created = 201, True
        else:
            if tag_ids is None:
                tag_ids = tag_ids_get_or_create(form.default_tags or ())
            acceptance = _accept_lead(form=form, submission=submission, flat=flat, by=None, tag_ids=tag_ids)
            submission.lead = acceptance.upsert.lead
            created = acceptance.upsert.created
            status_code = 201 if created else 200
        # Stored without its own id, so that a submission without a key is written in one INSERT.
        submission.response_status = status_code
        submission.response_body = {"lead_id": submission.lead_id, "created": created}
        if submission.pk is None:
            _insert_instance(submission)
        else:
            submission.save(update_fields=["lead", "response_status", "response_body"])
        if acceptance is not None:
            _accept_record(acceptance, form=form, submission=submission, flat=flat, by=None)
    body = {"submission_id": submission.pk, **submission.response_body}
    return SubmissionOutcome(status_code, body, submission, quarantined=bool(reasons))


@transaction.atomic
def submission_release(*, submission: FormSubmission, by: User) -> Lead:
    """Let a quarantined submission in: create or match its lead now, as if it had passed the filters."""
    locked = FormSubmission.objects.select_for_update().select_related("form").get(pk=submission.pk)
    if locked.status != SubmissionStatus.QUARANTINED:
        raise ValidationError({"status": [_("Only a quarantined submission can be released.")]})
    form = locked.form
    tag_ids = tag_ids_get_or_create(form.default_tags or ())
    acceptance = _accept_lead(form=form, submission=locked, flat=locked.payload, by=by, tag_ids=tag_ids)
    locked.status = SubmissionStatus.RELEASED
    locked.lead = acceptance.upsert.lead
    locked.save(update_fields=["status", "lead"])
    _accept_record(acceptance, form=form, submission=locked, flat=locked.payload, by=by)
    submission.refresh_from_db()
    return acceptance.upsert.lead


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


# Statuses whose submission made no lead: only these may be erased (an accepted or released one is the
# record of how its lead arrived).
DELETABLE_STATUSES = (SubmissionStatus.QUARANTINED, SubmissionStatus.REJECTED)


@transaction.atomic
def submission_delete(*, submission: FormSubmission, by: User) -> None:
    """Erase a quarantined or rejected submission for good: the row, and with it the payload, IP and browser.

    Unlike a rejection nothing stays on record but a log line with the ids. Deleting a submission that is
    already gone changes nothing.
    """
    locked = FormSubmission.objects.select_for_update().filter(pk=submission.pk).first()
    if locked is None:
        return
    if locked.status not in DELETABLE_STATUSES:
        raise ValidationError(
            {"status": [_("Only a quarantined or rejected submission can be deleted; this one is its lead’s record.")]}
        )
    locked.delete()
    logger.info("submission %s of form %s deleted by user %s", submission.pk, locked.form_id, by.pk)
