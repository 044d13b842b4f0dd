"""Features for the predictive model, learned from the data: no field, attribute or event type is hard-coded.

Pure Python and NumPy, no ORM: a ``LeadRecord`` holds what is known about a lead (its columns, custom
attributes and event counts), and a ``FeatureSpace`` fitted on the training leads decides which facts
become columns and how (numeric, or categorical with the levels seen often enough). The same fitted
space turns any later lead into the same columns, so it is stored with the model.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from scoring.rules import FREE_MAIL_DOMAINS, to_number

# Lead columns read as categories (normalized text); every organization has them, whatever it puts in them.
CATEGORICAL_FIELDS = (
    "source",
    "industry",
    "country",
    "region",
    "city",
    "campaign_id",
    "utm_source",
    "utm_medium",
    "utm_campaign",
)
# Lead columns the records carry (the service reads exactly these).
RECORD_FIELDS = (*CATEGORICAL_FIELDS, "company_size", "email", "phone", "company", "website", "job_title", "interests")

NUMERIC, CATEGORICAL = "numeric", "categorical"
# Levels per categorical feature (HistGradientBoosting allows up to 255 with missing values apart).
MAX_LEVELS = 60
MAX_ATTRIBUTES = 200
MAX_EVENT_TYPES = 40
MAX_TITLE_WORDS = 30
MAX_INTERESTS = 20
# A custom attribute is numeric when at least this share of its non-missing values reads as a number.
NUMERIC_SHARE = 0.95

SENIORITY = (
    ("c_level", re.compile(r"\b(chief|ceo|cto|cfo|coo|cmo|founder|owner|president|partner)\b|总裁|董事|创始人|总经理")),
    ("vp", re.compile(r"\bvp\b|vice president|副总")),
    ("director", re.compile(r"director|head of|总监")),
    ("manager", re.compile(r"manager|\blead\b|经理|主管")),
    ("student", re.compile(r"student|intern|学生|实习")),
)
TITLE_WORD = re.compile(r"[^\W\d_]{3,}|[\u4e00-\u9fff]{2,}")


@dataclass(frozen=True)
class LeadRecord:
    """What the model may know about a lead: columns, custom attributes, and per event type
    ``(total, recent)`` counts up to the lead's outcome (or now, for an open lead)."""

    fields: Mapping[str, Any]
    attributes: Mapping[str, Any]
    events: Mapping[str, tuple[int, int]]


@dataclass(frozen=True)
class Feature:
    """One column of the model's input; ``label`` says what it is in words (the factors show it)."""

    key: str
    label: str
    kind: str
    levels: tuple[str, ...] = ()  # categorical: code i is levels[i]; len(levels) is the "other" code


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, bool | dict | list):
        return None
    text = " ".join(str(value).split()).casefold()
    return text or None


def seniority(title: str) -> str | None:
    """A coarse seniority level from a job title (English or Chinese), or None without a title."""
    text = title.casefold()
    if not text.strip():
        return None
    return next((level for level, pattern in SENIORITY if pattern.search(text)), "staff")


def email_domain_type(email: str) -> str | None:
    domain = email.rpartition("@")[2].strip().casefold() if "@" in email else ""
    if not domain:
        return None
    if domain in FREE_MAIL_DOMAINS:
        return "free"
    return "education" if re.search(r"\.edu(\.|$)|\.ac\.", domain) else "company"


def raw_facts(record: LeadRecord) -> dict[str, Any]:
    """Every candidate fact of a lead under a stable key; a missing fact is simply absent."""
    f = record.fields
    facts: dict[str, Any] = {}
    for name in CATEGORICAL_FIELDS:
        if (text := _text(f.get(name))) is not None:
            facts[f"field:{name}"] = text
    if (size := to_number(f.get("company_size"))) is not None:
        facts["field:company_size"] = size
    if (domain := email_domain_type(str(f.get("email") or ""))) is not None:
        facts["derived:email_domain"] = domain
    title = str(f.get("job_title") or "")
    if (level := seniority(title)) is not None:
        facts["derived:seniority"] = level
    for word in set(TITLE_WORD.findall(title.casefold())):
        facts[f"title:{word}"] = 1.0
    for name in ("phone", "company", "website"):
        facts[f"has:{name}"] = 1.0 if str(f.get(name) or "").strip() else 0.0
    interests = f.get("interests")
    for item in interests if isinstance(interests, list) else ():
        if (text := _text(item)) is not None:
            facts[f"interest:{text}"] = 1.0
    for key, value in record.attributes.items():
        if isinstance(value, bool):
            facts[f"attr:{key}"] = float(value)
        elif value is not None and not isinstance(value, dict | list) and str(value).strip() != "":
            facts[f"attr:{key}"] = value
    for type_, (total, recent) in record.events.items():
        facts[f"events:{type_}"] = float(total)
        facts[f"recent:{type_}"] = float(recent)
    return facts


def _label(key: str) -> str:
    prefix, _, name = key.partition(":")
    return {
        "field": name.removesuffix("_id"),
        "derived": {"email_domain": "e-mail domain type", "seniority": "title seniority"}.get(name, name),
        "title": f"job title has “{name}”",
        "has": f"has {name}",
        "interest": f"interest “{name}”",
        "attr": f"attribute “{name}”",
        "events": f"{name} events",
        "recent": f"{name} events (last 30 days)",
    }.get(prefix, key)


def _as_number(value: Any) -> float | None:
    number = value if isinstance(value, float) else to_number(value)
    return None if number is None or not math.isfinite(number) else float(number)


@dataclass
class FeatureSpace:
    """The columns learned from the training leads; ``transform`` gives any lead the same columns."""

    features: list[Feature] = field(default_factory=list)

    @classmethod
    def fit(cls, records: Sequence[LeadRecord]) -> FeatureSpace:
        facts = [raw_facts(r) for r in records]
        n = len(facts)
        min_count = max(3, n // 200)  # rarer values cannot be learned from; they read as "other"
        values: dict[str, list[Any]] = {}
        for row in facts:
            for key, value in row.items():
                values.setdefault(key, []).append(value)
        space = cls()
        by_prefix: dict[str, list[str]] = {}
        for key in values:
            by_prefix.setdefault(key.partition(":")[0], []).append(key)

        def most_present(keys: Iterable[str], limit: int) -> list[str]:
            present = [k for k in keys if len(values[k]) >= min_count]
            return sorted(present, key=lambda k: (-len(values[k]), k))[:limit]

        for key in sorted(by_prefix.get("field", []) + by_prefix.get("derived", [])):
            space._add(key, values[key], n, min_count)
        for key in sorted(by_prefix.get("has", [])):
            space._add(key, values[key], n, min_count, kind=NUMERIC)
        for key in sorted(most_present(by_prefix.get("title", []), MAX_TITLE_WORDS)):
            space.features.append(Feature(key, _label(key), NUMERIC))
        for key in sorted(most_present(by_prefix.get("interest", []), MAX_INTERESTS)):
            space.features.append(Feature(key, _label(key), NUMERIC))
        for key in sorted(most_present(by_prefix.get("attr", []), MAX_ATTRIBUTES)):
            space._add(key, values[key], n, min_count)
        event_types = most_present(by_prefix.get("events", []), MAX_EVENT_TYPES)
        for key in sorted(event_types):
            type_ = key.partition(":")[2]
            space.features.append(Feature(key, _label(key), NUMERIC))
            space.features.append(Feature(f"recent:{type_}", _label(f"recent:{type_}"), NUMERIC))
        return space

    def _add(self, key: str, seen: list[Any], n: int, min_count: int, kind: str | None = None) -> None:
        """Add ``key`` as numeric when its values read as numbers, else as a categorical; skip it when it
        cannot tell leads apart (one value and never missing)."""
        numbers = [x for x in (_as_number(v) for v in seen) if x is not None]
        if kind == NUMERIC or (key != "field:campaign_id" and len(numbers) >= NUMERIC_SHARE * len(seen)):
            if len(set(numbers)) > 1 or (numbers and len(seen) < n):
                self.features.append(Feature(key, _label(key), NUMERIC))
            return
        counts = Counter(str(v) if not isinstance(v, str) else v for v in seen)
        levels = tuple(sorted(v for v, c in counts.most_common(MAX_LEVELS) if c >= min_count))
        if len(levels) + (len(seen) < n) + (len(levels) < len(counts)) > 1:
            self.features.append(Feature(key, _label(key), CATEGORICAL, levels))

    @property
    def categorical_mask(self) -> np.ndarray:
        return np.array([f.kind == CATEGORICAL for f in self.features], dtype=bool)

    def transform(self, records: Sequence[LeadRecord]) -> np.ndarray:
        """A float matrix, one row per record: NaN where a fact is missing, category codes for categoricals."""
        matrix = np.full((len(records), len(self.features)), np.nan)
        codes = [{level: i for i, level in enumerate(f.levels)} for f in self.features]
        for i, record in enumerate(records):
            facts = raw_facts(record)
            for j, feature in enumerate(self.features):
                value = facts.get(feature.key)
                if feature.kind == NUMERIC:
                    if value is not None:
                        matrix[i, j] = _as_number(value) if not isinstance(value, float) else value
                    elif feature.key.partition(":")[0] in ("title", "interest", "events", "recent"):
                        matrix[i, j] = 0.0  # no such word or event is a known zero, not a missing value
                elif value is not None:
                    text = value if isinstance(value, str) else str(value)
                    matrix[i, j] = codes[j].get(text, len(feature.levels))
        return matrix

    def value_text(self, record: LeadRecord, index: int) -> str:
        """The lead's value of feature ``index`` as shown next to a factor."""
        value = raw_facts(record).get(self.features[index].key)
        if value is None:
            return "—"
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        return str(value)
