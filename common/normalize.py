"""Normalization of contact data at every entry point: e-mail, phone (E.164), free text (NFKC)."""

from __future__ import annotations

import unicodedata

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils.translation import gettext as _


def normalize_text(value: str | None) -> str:
    """Fold full-width characters (NFKC), collapse inner whitespace, trim."""
    if not value:
        return ""
    return " ".join(unicodedata.normalize("NFKC", value).split())


def normalize_email(value: str | None) -> str:
    """Trim, fold and lower-case an address; raise ValidationError when it is not an address."""
    email = normalize_text(value).lower()
    if not email:
        return ""
    validate_email(email)
    return email


def normalize_phone(value: str | None, *, region: str | None = None) -> str:
    """Return the number in E.164 (+8613800138000); raise ValidationError when it is not a phone number."""
    raw = normalize_text(value)
    if not raw:
        return ""
    try:
        number = phonenumbers.parse(raw, region or settings.LEADCRM_DEFAULT_PHONE_REGION)
    except phonenumbers.NumberParseException:
        raise ValidationError(_("Enter a valid phone number."), code="invalid_phone") from None
    # is_valid_number also checks the prefix plan (a +86 mobile starts 13–19), not just the length.
    if not phonenumbers.is_valid_number(number):
        raise ValidationError(_("Enter a valid phone number."), code="invalid_phone")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
