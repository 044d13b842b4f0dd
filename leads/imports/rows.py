"""One row of an import: the mapped cells normalized into lead fields, or the reasons it is rejected.

Pure functions (no database), so the worker can run them on thousands of rows without a query.
Identity fields must be right (a bad e-mail or phone rejects the row); a descriptive value that
does not fit a field (a country name instead of its code, an unknown company size) is kept as a
custom attribute instead, so no data in the file is lost.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from functools import cache, lru_cache
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator, validate_email
from django.utils.translation import gettext as _

from common.normalize import normalize_phone
from leads.imports.mapping import ATTR_PREFIX
from leads.models import CompanySize, Lead, SourceChannel

TEXT_FIELDS = ("name", "company", "job_title", "industry", "region", "city")
PLAIN_FIELDS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
TAG_SPLIT = re.compile(r"[,，;；、|]")
MAX_ATTRIBUTE_BYTES = 64 * 1024
_url = URLValidator()
_sizes = {value: value for value in CompanySize.values} | {
    str(label).replace("–", "-").replace(",", ""): value for value, label in CompanySize.choices
}
_sources = {value: value for value in SourceChannel.values}


# A Chinese mobile number as lists write it: 138 0013 8000, +86-138-0013-8000, (0086)13800138000.
_CN_MOBILE = re.compile(r"(?:\+?86|0086)?(1\d{10})")
_PHONE_NOISE = re.compile(r"[\s\-().]")
# The same characters in ASCII (``\s`` there includes \x1c-\x1f), deleted by ``str.translate`` in one pass.
_ASCII_PHONE_NOISE = str.maketrans("", "", " \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f-().")


def clean_text(value: str) -> str:
    """``normalize_text`` without the NFKC pass for ASCII text, which NFKC leaves unchanged (most cells).

    Inlined rather than calling ``normalize_text``: it runs for every text cell of a list.
    """
    if value.isascii():
        return " ".join(value.split())
    return " ".join(unicodedata.normalize("NFKC", value).split())


@cache
def _email_user_regex() -> re.Pattern[str]:
    # Django's own pattern, compiled once outside its lazy wrapper (each access through it costs a call).
    lazy = validate_email.user_regex
    return re.compile(lazy.pattern, lazy.flags)


@lru_cache(maxsize=65536)
def _email_domain_valid(domain: str) -> bool:
    return domain in validate_email.domain_allowlist or bool(validate_email.validate_domain_part(domain))


def fast_email(value: str) -> str:
    """``normalize_email``, with Django's domain check asked once per domain (a list repeats a few domains).

    The same steps as Django's ``EmailValidator``: length, one ``@``, its user-part pattern, then the
    domain (pattern or address literal, or the allow-list).
    """
    email = clean_text(value).lower()
    if not email:
        return ""
    if len(email) > 320 or "@" not in email:
        raise ValidationError(validate_email.message, code=validate_email.code)
    user, domain = email.rsplit("@", 1)
    if not _email_user_regex().match(user) or not _email_domain_valid(domain):
        raise ValidationError(validate_email.message, code=validate_email.code)
    return email


@cache
def _cn_mobile_prefix_valid(prefix: str) -> bool:
    """Whether 11-digit mobiles starting with these 7 digits are valid (phonenumbers decides, once per prefix)."""
    try:
        normalize_phone(prefix + "0000", region="CN")
    except ValidationError:
        return False
    return True


def fast_phone(value: str, region: str | None = None) -> str:
    """``normalize_phone`` with a fast path for Chinese mobiles, the bulk of Chinese lists.

    Parsing with phonenumbers costs ~100 µs, more than everything else a row needs. A Chinese mobile's
    validity depends only on its leading digits (the length is fixed at 11), so phonenumbers is asked once
    per 7-digit prefix and the answer reused; anything else goes to ``normalize_phone`` unchanged.
    ``region`` is the default region (the setting's when not given; a caller doing many rows reads it once).
    """
    if region is None:
        region = settings.LEADCRM_DEFAULT_PHONE_REGION
    # ASCII has nothing for NFKC to fold: the separators go in one pass.
    compact = value.translate(_ASCII_PHONE_NOISE) if value.isascii() else _PHONE_NOISE.sub("", clean_text(value))
    match = _CN_MOBILE.fullmatch(compact)
    if match is not None and (region == "CN" or compact.startswith(("+86", "0086"))):
        national = match.group(1)
        if _cn_mobile_prefix_valid(national[:7]):
            return "+86" + national
    return normalize_phone(value, region=region)


@cache
def max_length(field_name: str) -> int:
    model_field = Lead._meta.get_field(field_name)
    return int(getattr(model_field, "max_length", 0) or 0)


class Row:
    """One data row: its normalized lead fields, custom attributes, tags and the reasons it is rejected.

    ``raw`` (header → cell, as the file has it, for the error report) is built when first asked for:
    the rows that become leads never need it.
    """

    __slots__ = ("_cells", "_headers", "_raw", "attributes", "data", "errors", "line", "tags")

    def __init__(self, line: int, headers: Sequence[str], cells: Sequence[str]) -> None:
        self.line = line
        self.data: dict[str, Any] = {}
        self.attributes: dict[str, str] = {}
        self.tags: list[str] = []
        self.errors: list[str] = []
        self._headers, self._cells = headers, cells
        self._raw: dict[str, str] | None = None

    @property
    def raw(self) -> dict[str, str]:
        if self._raw is None:
            self._raw = raw_row(self._headers, self._cells)
        return self._raw

    @property
    def has_extra_cells(self) -> bool:
        """Whether the row has non-blank cells beyond the file's header (``raw`` keeps them under labels of their own)."""
        return len(self._cells) > len(self._headers) and any(cell.strip() for cell in self._cells[len(self._headers) :])

    @property
    def email(self) -> str:
        return self.data.get("email", "")  # always text (``RowBuilder``)

    @property
    def phone(self) -> str:
        return self.data.get("phone", "")


def raw_row(headers: Sequence[str], cells: Sequence[str]) -> dict[str, str]:
    """The row as the file has it: header → cell, a missing cell empty, cells beyond the header kept."""
    count = len(cells)
    if count == len(headers):
        return dict(zip(headers, cells, strict=True))
    raw = {header: cells[i] if i < count else "" for i, header in enumerate(headers)}
    # Cells beyond the header are kept so that the error report shows the row as it was.
    for extra, value in enumerate(cells[len(headers) :], start=len(headers) + 1):
        if value.strip():
            label = _("Column %(n)s") % {"n": extra}
            while label in raw:  # a header of the file may read the same
                label += "+"
            raw[label] = value
    return raw


def _too_long(label: str, limit: int) -> str:
    return _("%(field)s: at most %(limit)s characters.") % {"field": label, "limit": limit}


def build_row(line: int, headers: Sequence[str], cells: Sequence[str], mapping: dict[str, str]) -> Row:
    """Map and normalize one row. ``row.errors`` lists every reason it cannot be imported."""
    return RowBuilder(headers, mapping)(line, cells)


_TEXT_TARGETS = frozenset(TEXT_FIELDS)
_TEXT, _EMAIL, _PHONE, _OTHER = range(4)
_TEXT_CACHE_SIZE = 50_000  # distinct cells remembered per file (a few MB); later ones are folded each time


class RowBuilder:
    """``build_row`` for the rows of one file: the mapping is resolved to column positions once.

    The import calls it for every row of a list (~10 µs a row, most of the worker's own CPU), so the
    per-row loop handles the common targets (text, e-mail, phone) inline and the rest in ``_other``;
    what a step needs (its kind, its field's length limit, the phone region) is looked up here, once.
    """

    def __init__(self, headers: Sequence[str], mapping: dict[str, str], *, region: str | None = None) -> None:
        self.headers = list(headers)
        self.region = region or settings.LEADCRM_DEFAULT_PHONE_REGION
        position = {header: i for i, header in enumerate(self.headers)}
        kinds = {"email": _EMAIL, "phone": _PHONE} | dict.fromkeys(_TEXT_TARGETS, _TEXT)
        # (cell index, kind, target, header) in mapping order; a header the file lacks maps an empty cell.
        self.steps = [
            (position[header], kinds.get(target, _OTHER), target, header)
            for header, target in mapping.items()
            if target and header in position
        ]
        # Folded text by cell value: a list repeats its companies, titles, industries and cities.
        self._texts: dict[str, str] = {}

    def __call__(self, line: int, cells: Sequence[str]) -> Row:
        row = Row(line, self.headers, cells)
        data, count, texts = row.data, len(cells), self._texts
        for index, kind, target, header in self.steps:
            value = cells[index] if index < count else ""
            if not value or value.isspace():
                continue
            if kind == _TEXT:
                text = texts.get(value)
                if text is None:
                    text = " ".join((value if value.isascii() else unicodedata.normalize("NFKC", value)).split())
                    if len(texts) < _TEXT_CACHE_SIZE:
                        texts[value] = text
                data[target] = text
            elif kind == _EMAIL:
                try:
                    data["email"] = fast_email(value)
                except ValidationError:
                    row.errors.append(_("e-mail: “%(value)s” is not a valid address.") % {"value": value.strip()[:100]})
            elif kind == _PHONE:
                try:
                    data["phone"] = fast_phone(value, self.region)
                except ValidationError:
                    row.errors.append(_("phone: “%(value)s” is not a valid number.") % {"value": value.strip()[:100]})
            else:
                _other(row, header, target, value)
        return _checked(row)


def _other(row: Row, header: str, target: str, value: str) -> None:
    """The less common targets: custom attributes, website, size, country, source, tags, UTM fields."""
    data = row.data
    if target.startswith(ATTR_PREFIX):
        row.attributes[target[len(ATTR_PREFIX) :]] = value.strip()
    elif target == "website":
        url = clean_text(value)
        candidate = url if "://" in url else f"http://{url}"
        try:
            _url(candidate)
            data["website"] = candidate
        except ValidationError:
            row.attributes[header] = url
    elif target == "company_size":
        size = _sizes.get(clean_text(value).replace("–", "-").replace(",", "").replace(" ", ""))
        if size:
            data["company_size"] = size
        else:
            row.attributes[header] = clean_text(value)
    elif target == "country":
        code = clean_text(value).upper()
        if len(code) == 2 and code.isascii() and code.isalpha():
            data["country"] = code
        else:
            row.attributes[header] = clean_text(value)
    elif target == "source":
        source = _sources.get(clean_text(value).lower().replace(" ", "_"))
        if source:
            data["source"] = source
        else:
            row.attributes[header] = clean_text(value)
    elif target == "tags":
        row.tags = [tag for tag in (clean_text(t) for t in TAG_SPLIT.split(value)) if tag]
    else:  # PLAIN_FIELDS
        data[target] = value.strip()


def _checked(row: Row) -> Row:
    """The row with its name filled in (or an error) and every length limit checked."""
    data = row.data
    if not data.get("name"):
        # A list without names still names its leads: company, then e-mail, then phone (what a rep would type).
        fallback = data.get("company") or data.get("email") or data.get("phone")
        if fallback:
            data["name"] = fallback
        elif not row.errors:
            row.errors.append(_("name: a row needs a name, an e-mail or a phone number."))
    limits = _limits()
    for name, value in data.items():
        limit = limits[name]
        if limit and len(value) > limit:
            row.errors.append(_too_long(str(getattr(Lead._meta.get_field(name), "verbose_name", name)), limit))
    for tag in row.tags:
        if len(tag) > 50:
            row.errors.append(_too_long(_("tag"), 50))
            break
    if row.attributes and sum(len(k) + len(v) for k, v in row.attributes.items()) > MAX_ATTRIBUTE_BYTES:
        row.errors.append(_("custom attributes: at most 64 KB per lead."))
    return row


@cache
def _limits() -> dict[str, int]:
    """``max_length`` of every field a row can fill (0: no limit), as one dict for the per-row check."""
    return {name: max_length(name) for name in (*TEXT_FIELDS, *PLAIN_FIELDS, "email", "phone", "website",
                                                 "company_size", "country", "source")}  # fmt: skip
