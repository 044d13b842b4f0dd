"""The scoring rules engine: pure functions over a lead's facts and a rule set, each point with its reason.

A rule set is plain data (loaded from ``ScoringRuleSet``/``ScoringRule``/``GradeBand`` rows by the
service, or built by hand in tests). Three kinds of rule, chosen by a registry keyed on ``kind``:

* **fit** — a condition on a lead field, a custom attribute (``attr.<key>``) or a derived fact
  (``email_domain``, ``days_inactive``): ``points`` when it holds;
* **behaviour** — an event type with optional property filters: ``points`` per occurrence, each
  weighted ``0.5 ** (age_days / half_life)``; once-only or repeatable, an optional time window, a cap;
* **negative** — either of the above with negative points (unsubscribe, hard bounce, free-mail
  domain, student title, no activity for N days).

The score is the sum, rounded and clamped to 0–100; the grade is the highest band whose minimum it
reaches. Conditions use the operators of ``OPERATORS``. No ORM here: the service gathers the facts.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.utils.translation import gettext as _

FIT, BEHAVIOUR, NEGATIVE = "fit", "behaviour", "negative"
KINDS = (FIT, BEHAVIOUR, NEGATIVE)
EQUALS, IN, CONTAINS, RANGE, EMPTY, REGEX = "equals", "in", "contains", "range", "empty", "regex"
MIN_SCORE, MAX_SCORE = 0, 100
ATTR_PREFIX = "attr."
# Facts derived from the lead rather than stored on it.
EMAIL_DOMAIN, DAYS_INACTIVE = "email_domain", "days_inactive"
DERIVED_FIELDS = (EMAIL_DOMAIN, DAYS_INACTIVE)
# A property path in an event filter: keys separated by dots (``page.url``), no SQL-significant characters.
PROPERTY_PATH = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")


# --- Facts and rules (plain data) ------------------------------------------------------------


@dataclass(frozen=True)
class EventBucket:
    """``count`` events of ``type`` that happened ``age_days`` whole days ago, with the property values
    the rule set's filters read (``(path, text or None)`` pairs, sorted by path)."""

    type: str
    age_days: int
    count: int
    properties: tuple[tuple[str, str | None], ...] = ()


@dataclass(frozen=True)
class LeadFacts:
    """What the rules may look at: field values (by field name), custom attributes, event buckets."""

    fields: Mapping[str, Any] = field(default_factory=dict)
    attributes: Mapping[str, Any] = field(default_factory=dict)
    events: tuple[EventBucket, ...] = ()
    # Whole days since the latest activity (event or the lead's own last_activity_at); None when unknown.
    days_inactive: int | None = None


@dataclass(frozen=True)
class Condition:
    """``field`` (or an event property path) ``operator`` ``value``; ``negate`` inverts it."""

    field: str
    operator: str
    value: Any = None
    negate: bool = False


@dataclass(frozen=True)
class Rule:
    key: str
    kind: str
    points: float
    label: str = ""
    condition: Condition | None = None  # fit rules, and negative rules on a field
    event_type: str = ""  # behaviour rules, and negative rules on an event
    event_filters: tuple[Condition, ...] = ()
    cap: float | None = None  # the most this rule may add (or take away), after decay
    once: bool = False  # count only the latest matching event
    window_days: int | None = None  # only events at most this many days old
    half_life_days: float | None = None  # None: the rule set's; 0: no decay

    @property
    def is_behaviour(self) -> bool:
        return bool(self.event_type)


@dataclass(frozen=True)
class GradeBand:
    key: str
    min_score: int
    label: str = ""


@dataclass(frozen=True)
class Thresholds:
    """Stage thresholds: the pipeline moves a lead forward to MQL / SQL when its score reaches them."""

    mql: int = 50
    sql: int = 80


@dataclass(frozen=True)
class RuleSet:
    rules: tuple[Rule, ...] = ()
    bands: tuple[GradeBand, ...] = (GradeBand("hot", 80), GradeBand("warm", 50), GradeBand("cold", 0))
    half_life_days: float = 30.0
    thresholds: Thresholds = Thresholds()
    version: int = 0

    def property_paths(self) -> dict[str, frozenset[str]]:
        """Per event type, the property paths its rules filter on (what the service must read)."""
        paths: dict[str, set[str]] = {}
        for rule in self.rules:
            if rule.event_type and rule.event_filters:
                paths.setdefault(rule.event_type, set()).update(c.field for c in rule.event_filters)
        return {type_: frozenset(p) for type_, p in paths.items()}

    def fields(self) -> frozenset[str]:
        """The lead fields (not attributes, not derived) the fit conditions read."""
        return frozenset(
            rule.condition.field
            for rule in self.rules
            if rule.condition is not None and not rule.condition.field.startswith(ATTR_PREFIX)
        )


@dataclass(frozen=True)
class Contribution:
    """One rule that fired: its points after decay and cap, how many events it counted, and why."""

    points: float
    reason: str
    rule: str = ""
    kind: str = ""
    count: int = 0


@dataclass(frozen=True)
class ScoreResult:
    score: int
    grade: str
    breakdown: tuple[Contribution, ...] = field(default=())


# --- Operators (registry) --------------------------------------------------------------------


def _texts(value: Any) -> list[str]:
    """A fact or rule value as lower-cased strings (a list fact gives each element)."""
    if value is None:
        return []
    items = value if isinstance(value, list | tuple | set | frozenset) else [value]
    return [str(item).strip().casefold() for item in items if item is not None]


def to_number(value: Any) -> float | None:
    """A number from a fact: numbers as they are, ``"12.5"`` → 12.5, a size band ``"501-1000"`` → 501,
    ``"5000+"`` → 5000 (the band's lower bound); anything else → None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value) if math.isfinite(value) else None
    match = re.match(r"^\s*(-?\d+(?:\.\d+)?)\s*(?:[-–+].*)?$", str(value))
    return float(match.group(1)) if match else None


@functools.lru_cache(maxsize=512)
def _compiled(pattern: str) -> re.Pattern[str] | None:
    try:
        return re.compile(pattern, re.IGNORECASE)
    except re.error:
        return None


def op_equals(fact: Any, value: Any) -> bool:
    number, wanted = to_number(fact), to_number(value)
    if number is not None and wanted is not None and not isinstance(value, str):
        return number == wanted
    expected = _texts(value)
    return bool(expected) and any(text == expected[0] for text in _texts(fact))


def op_in(fact: Any, value: Any) -> bool:
    allowed = set(_texts(value))
    return any(text in allowed for text in _texts(fact))


def op_contains(fact: Any, value: Any) -> bool:
    needles = [needle for needle in _texts(value) if needle]
    return any(needle in text for text in _texts(fact) for needle in needles)


def op_range(fact: Any, value: Any) -> bool:
    number = to_number(fact)
    if number is None or not isinstance(value, Mapping):
        return False
    low, high = to_number(value.get("min")), to_number(value.get("max"))
    return (low is None or number >= low) and (high is None or number <= high)


def op_empty(fact: Any, value: Any) -> bool:
    return fact is None or (
        isinstance(fact, str | list | dict | tuple) and not (fact.strip() if isinstance(fact, str) else fact)
    )


def op_regex(fact: Any, value: Any) -> bool:
    pattern = _compiled(str(value or ""))
    return pattern is not None and any(pattern.search(str(item)) for item in _list(fact))


def _list(fact: Any) -> list[Any]:
    if fact is None:
        return []
    return list(fact) if isinstance(fact, list | tuple) else [fact]


OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    EQUALS: op_equals,
    IN: op_in,
    CONTAINS: op_contains,
    RANGE: op_range,
    EMPTY: op_empty,
    REGEX: op_regex,
}


def condition_holds(condition: Condition, fact: Any) -> bool:
    holds = OPERATORS[condition.operator](fact, condition.value)
    return holds != condition.negate


def validate_condition(operator: str, value: Any, prefix: str = "value") -> list[str]:
    """Errors in an operator's value, in words (empty when valid); the admin and the API show them."""
    if operator not in OPERATORS:
        return [_("Unknown operator “%(operator)s”.") % {"operator": operator}]
    if operator == IN and not (isinstance(value, list) and value):
        return [_("“in list” needs a non-empty list of values.")]
    if operator in (EQUALS, CONTAINS) and (value is None or value == "" or value == []):
        return [_("This operator needs a value.")]
    if operator == RANGE:
        if not isinstance(value, dict) or not ({"min", "max"} & set(value)):
            return [_('A number range is written {"min": 500} or {"min": 1, "max": 10}.')]
        bounds = [value.get(k) for k in ("min", "max") if value.get(k) is not None]
        if any(to_number(b) is None for b in bounds):
            return [_("The range bounds must be numbers.")]
    if operator == REGEX and (not isinstance(value, str) or _compiled(value) is None):
        return [_("Not a valid regular expression.")]
    return []


# --- Evaluation ------------------------------------------------------------------------------


def bucket_order(bucket: EventBucket) -> tuple[Any, ...]:
    """A total order on buckets (missing property values sort first), for order-independent sums."""
    properties = tuple((path, value is not None, value or "") for path, value in bucket.properties)
    return (bucket.type, bucket.age_days, properties, bucket.count)


def decay(age_days: float, half_life_days: float) -> float:
    """The weight of an event ``age_days`` old: 1 today, ½ after one half-life, ¼ after two; no decay at 0."""
    if half_life_days <= 0:
        return 1.0
    return math.pow(0.5, max(age_days, 0) / half_life_days)


def field_value(facts: LeadFacts, name: str) -> Any:
    """The fact a fit condition reads: ``attr.<key>``, a derived fact, or a lead field."""
    if name.startswith(ATTR_PREFIX):
        return facts.attributes.get(name[len(ATTR_PREFIX) :])
    if name == EMAIL_DOMAIN:
        email = str(facts.fields.get("email") or "")
        return email.rpartition("@")[2].strip().casefold() if "@" in email else ""
    if name == DAYS_INACTIVE:
        return facts.days_inactive
    return facts.fields.get(name)


def _points_text(points: float) -> str:
    rounded = round(points, 1)
    text = f"{abs(rounded):g}"
    return f"−{text}" if rounded < 0 else f"+{text}"


def _value_text(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    return str(value)


def describe_condition(condition: Condition) -> str:
    """The condition in words, e.g. ``job_title contains Director``."""
    params = {"field": condition.field, "value": _value_text(condition.value)}
    if condition.operator == RANGE and isinstance(condition.value, Mapping):
        low, high = condition.value.get("min"), condition.value.get("max")
        params["low"], params["high"] = str(low), str(high)
        if high is None:
            text = _("%(field)s ≥ %(low)s") % params
        elif low is None:
            text = _("%(field)s ≤ %(high)s") % params
        else:
            text = _("%(field)s between %(low)s and %(high)s") % params
    else:
        template = {
            EQUALS: _("%(field)s is %(value)s"),
            IN: _("%(field)s in %(value)s"),
            CONTAINS: _("%(field)s contains %(value)s"),
            EMPTY: _("%(field)s is empty"),
            REGEX: _("%(field)s matches %(value)s"),
        }[condition.operator]
        text = template % params
    return _("not (%(condition)s)") % {"condition": text} if condition.negate else text


EventIndex = Mapping[str, list[EventBucket]]


def events_by_type(facts: LeadFacts) -> dict[str, list[EventBucket]]:
    """The lead's buckets per type, each list in ``bucket_order`` (so sums never depend on input order)."""
    index: dict[str, list[EventBucket]] = {}
    for bucket in sorted(facts.events, key=bucket_order):
        index.setdefault(bucket.type, []).append(bucket)
    return index


def _fit(rule: Rule, facts: LeadFacts, ruleset: RuleSet, events: EventIndex) -> Contribution | None:
    """A condition on a field or attribute: the rule's points when it holds."""
    condition = rule.condition
    if condition is None or not condition_holds(condition, field_value(facts, condition.field)):
        return None
    return Contribution(rule.points, reason_for(rule, rule.points, 0), rule.key, rule.kind, 0)


def _bucket_matches(rule: Rule, bucket: EventBucket) -> bool:
    if bucket.count <= 0:
        return False
    if rule.window_days is not None and bucket.age_days > rule.window_days:
        return False
    properties = dict(bucket.properties)
    return all(condition_holds(c, properties.get(c.field)) for c in rule.event_filters)


def _behaviour(rule: Rule, facts: LeadFacts, ruleset: RuleSet, events: EventIndex) -> Contribution | None:
    """Points per matching event, decayed by age; once-only counts the latest event; capped."""
    candidates = events.get(rule.event_type)
    if not candidates:
        return None
    # The index is sorted, so the float sum is the same whatever order the buckets came in.
    matching = [b for b in candidates if _bucket_matches(rule, b)]
    if not matching:
        return None
    half_life = ruleset.half_life_days if rule.half_life_days is None else rule.half_life_days
    count = sum(b.count for b in matching)
    if rule.once:
        weight, counted = decay(matching[0].age_days, half_life), 1
    else:
        weight, counted = math.fsum(b.count * decay(b.age_days, half_life) for b in matching), count
    points = rule.points * weight
    capped = rule.cap is not None and abs(points) > abs(rule.cap)
    if capped:
        points = math.copysign(abs(rule.cap or 0), points)
    return Contribution(points, reason_for(rule, points, counted, capped=capped), rule.key, rule.kind, counted)


def reason_for(rule: Rule, points: float, count: int, *, capped: bool | None = None) -> str:
    """A fired rule in words: ``+10 senior title``, ``+4.8 content_download ×2``, ``+10 page_view ×14 (capped)``.

    ``capped`` None (a stored breakdown, which keeps points and count only): capped when the points
    are the cap's, to the two decimals they are stored with.
    """
    if not rule.is_behaviour:
        label = rule.label or (describe_condition(rule.condition) if rule.condition is not None else rule.key)
        return f"{_points_text(points)} {label}"
    if capped is None:
        capped = rule.cap is not None and abs(abs(points) - abs(rule.cap)) < 0.005
    suffix = " " + _("(capped)") if capped else ""
    return f"{_points_text(points)} {rule.label or describe_event(rule)} ×{count}{suffix}"


def describe_event(rule: Rule) -> str:
    """A behaviour rule in words, e.g. ``page_view where url contains /pricing``."""
    text = rule.event_type
    if rule.event_filters:
        text = _("%(event)s where %(filters)s") % {
            "event": text,
            "filters": _(" and ").join(describe_condition(c) for c in rule.event_filters),
        }
    if rule.window_days is not None:
        text = _("%(event)s in the last %(days)s days") % {"event": text, "days": rule.window_days}
    return text


EVALUATORS: dict[str, Callable[[Rule, LeadFacts, RuleSet, EventIndex], Contribution | None]] = {
    FIT: _fit,
    BEHAVIOUR: _behaviour,
}


def rule_evaluate(
    rule: Rule, facts: LeadFacts, ruleset: RuleSet, events: EventIndex | None = None
) -> Contribution | None:
    """The rule's contribution, or None when it does not fire (a negative rule is a fit or behaviour rule)."""
    evaluator = EVALUATORS[BEHAVIOUR if rule.is_behaviour else FIT]
    contribution = evaluator(rule, facts, ruleset, events_by_type(facts) if events is None else events)
    if contribution is None or contribution.points == 0:
        return None
    return contribution


def grade_for(score: int, bands: tuple[GradeBand, ...]) -> str:
    """The key of the highest band whose minimum ``score`` reaches; "" when it reaches none."""
    for band in sorted(bands, key=lambda b: (-b.min_score, b.key)):
        if score >= band.min_score:
            return band.key
    return ""


def score_from_facts(facts: LeadFacts, ruleset: RuleSet) -> ScoreResult:
    """Every rule's contribution, the total rounded and clamped to 0–100, its grade and breakdown.

    Deterministic: rules are evaluated in their given order and summed with ``math.fsum``, and
    each rule sorts its own events, so the order of the facts never changes the result.
    """
    events = events_by_type(facts)
    breakdown = tuple(c for rule in ruleset.rules if (c := rule_evaluate(rule, facts, ruleset, events)) is not None)
    total = math.fsum(c.points for c in breakdown)
    score = max(MIN_SCORE, min(MAX_SCORE, round(total)))
    return ScoreResult(score=score, grade=grade_for(score, ruleset.bands), breakdown=breakdown)


def stage_threshold_reached(score: int, thresholds: Thresholds) -> str | None:
    """``"sql"`` or ``"mql"`` when the score reaches that threshold (SQL first), else None."""
    if score >= thresholds.sql:
        return "sql"
    if score >= thresholds.mql:
        return "mql"
    return None


# --- The default rule set --------------------------------------------------------------------

# (event type, points, cap): the starting rule set, which a manager then edits. Caps default to 3× points.
DEFAULT_EVENT_POINTS: tuple[tuple[str, float, float | None], ...] = (
    ("page_view", 1, 10),
    ("pricing_page_view", 5, None),
    ("content_download", 8, None),
    ("email_open", 1, 5),
    ("email_click", 3, None),
    ("email_reply", 10, None),
    ("webinar_registered", 5, None),
    ("webinar_attended", 10, None),
    ("trial_signup", 25, None),
    ("demo_request", 30, None),
    ("form_submit", 10, None),
    ("call", 5, None),
    ("email", 3, None),
    ("meeting", 15, None),
    ("social_interaction", 2, None),
)
DEFAULT_NEGATIVE_EVENTS: tuple[tuple[str, float, float | None], ...] = (
    ("email_bounce", -10, None),
    ("unsubscribe", -20, None),
)
SENIOR_TITLE_PATTERN = r"director|\bvp\b|vice president|总监|经理"
FREE_MAIL_DOMAINS = (
    "gmail.com", "yahoo.com", "hotmail.com", "outlook.com", "qq.com", "163.com", "126.com", "sina.com", "foxmail.com",
)  # fmt: skip


def default_rules() -> tuple[Rule, ...]:
    """The rule set a fresh install starts with (the migration's data step stores it as rows).

    Only rules that a lead of the demo would not trip unexpectedly are active: the free-mail and
    student rules exist in the seeded rule set but start inactive (see ``DEFAULT_INACTIVE``).
    """
    rules = [
        Rule("senior_title", FIT, 10, "senior title", Condition("job_title", REGEX, SENIOR_TITLE_PATTERN)),
        Rule("large_company", FIT, 10, "company size 201+", Condition("company_size", RANGE, {"min": 201})),
    ]
    for type_, points, cap in DEFAULT_EVENT_POINTS + DEFAULT_NEGATIVE_EVENTS:
        kind = NEGATIVE if points < 0 else BEHAVIOUR
        rules.append(Rule(type_, kind, points, event_type=type_, cap=cap if cap is not None else 3 * abs(points)))
    return tuple(rules)


# Seeded too, but switched off, so that the out-of-the-box scores stay what the demo documents.
DEFAULT_INACTIVE: tuple[Rule, ...] = (
    Rule("free_mail", NEGATIVE, -5, "free-mail domain", Condition(EMAIL_DOMAIN, IN, list(FREE_MAIL_DOMAINS))),
    Rule("student", NEGATIVE, -15, "student title", Condition("job_title", REGEX, r"student|intern|学生|实习")),
    Rule("dormant", NEGATIVE, -10, "no activity for 180 days", Condition(DAYS_INACTIVE, RANGE, {"min": 180})),
)


DEFAULT_RULE_SET = RuleSet(rules=default_rules())


def default_rule_rows() -> list[dict[str, Any]]:
    """The default rules as ``ScoringRule`` field values (the active ones, then the inactive ones)."""
    rows = []
    for position, (rule, active) in enumerate(
        [(r, True) for r in DEFAULT_RULE_SET.rules] + [(r, False) for r in DEFAULT_INACTIVE]
    ):
        condition = rule.condition
        rows.append(
            {
                "name": rule.label,
                "kind": rule.kind,
                "position": position * 10,
                "is_active": active,
                "points": rule.points,
                "field": condition.field if condition else "",
                "operator": condition.operator if condition else "",
                "value": condition.value if condition else None,
                "negate": condition.negate if condition else False,
                "event_type": rule.event_type,
                "event_filters": [
                    {"path": c.field, "operator": c.operator, "value": c.value} for c in rule.event_filters
                ],
                "cap": rule.cap,
                "once": rule.once,
                "window_days": rule.window_days,
                "half_life_days": rule.half_life_days,
            }
        )
    return rows


def default_band_rows() -> list[dict[str, Any]]:
    return [{"key": b.key, "label": b.key.title(), "min_score": b.min_score} for b in DEFAULT_RULE_SET.bands]
