"""Normalization of contact data at every entry point: e-mail, phone (E.164), free text (NFKC); duplicate keys."""

from __future__ import annotations

import re
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


# --- Duplicate keys: a name or company as the duplicate suggestions compare it ------------------------
# The patterns are regular expressions that PostgreSQL (leads.selectors, in SQL) and Python's re (SQLite,
# tests) read alike: characters are code-point ranges, not [[:punct:]] or \s, whose meaning depends on
# the database's locale. Text is NFKC-folded on write, so full-width forms are mostly ASCII by now.

# Spaces and punctuation: ASCII, Latin-1, general punctuation, CJK punctuation and brackets (、。《》【】「」
# …), the katakana middle dot and full-width ASCII punctuation. Letters and digits of any script stay.
KEY_SEPARATORS = (
    r"[\u0009-\u000d\u0020-\u002f\u003a-\u0040\u005b-\u0060\u007b-\u007e\u00a0-\u00bf\u2000-\u206f"
    r"\u3000-\u3003\u3008-\u3011\u3014-\u301f\u30fb\uff01-\uff0f\uff1a-\uff20\uff3b-\uff40\uff5b-\uff65]+"
)
# Legal forms at the end of a lower-cased company name, any number of them (", Co., Ltd.", "集团有限公司").
# A Latin one must follow a space or punctuation, or be the whole name: "Costco" keeps its "co".
COMPANY_SUFFIXES = (
    r"(?:(?:\A|" + KEY_SEPARATORS + r")(?:incorporated|corporation|company|limited|inc|ltd|llc|corp|co|gmbh|plc)"
    r"|股份有限公司|有限责任公司|有限公司|集团|公司|" + KEY_SEPARATORS + r")+\Z"
)
_separators = re.compile(KEY_SEPARATORS)
_company_suffixes = re.compile(COMPANY_SUFFIXES)


def name_key(value: str | None) -> str:
    """A person's name for duplicate suggestions: lower-cased, without spaces or punctuation ("john smith")."""
    return _separators.sub("", (value or "").lower())


def company_key(value: str | None) -> str:
    """A company for duplicate suggestions: ``name_key`` of it without trailing legal forms ("acme")."""
    return _separators.sub("", _company_suffixes.sub("", (value or "").lower(), count=1))
