"""Placeholder scoring rules (until issue #5): pure functions over a lead's facts, each with its reason.

The rule set, documented in README ("Scoring placeholder"):

* engagement: each event type is worth ``EVENT_POINTS[type]`` points, decayed with a half-life
  (``LEADCRM_SCORE_HALF_LIFE_DAYS``, 30 days: an event 30 days old counts half, 60 days a quarter),
  capped per type at ``EVENT_CAPS[type]`` (default 3× its points) so page views alone cannot make a lead hot;
* fit: +10 when the job title names a director, VP, 总监 or 经理; +10 when the company has 201+ people;
* the score is rounded and clamped to 0–100; grade hot ≥ 80, warm ≥ 50, else cold.

No ORM here: the scoring service gathers the facts in a few set-based queries, rules only compute.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

EVENT_POINTS: dict[str, float] = {
    "page_view": 1,
    "pricing_page_view": 5,
    "content_download": 8,
    "email_open": 1,
    "email_click": 3,
    "email_reply": 10,
    "email_bounce": -10,
    "webinar_registered": 5,
    "webinar_attended": 10,
    "trial_signup": 25,
    "demo_request": 30,
    "form_submit": 10,
    "call": 5,
    "email": 3,
    "meeting": 15,
    "social_interaction": 2,
    "unsubscribe": -20,
}
EVENT_CAPS: dict[str, float] = {"page_view": 10, "email_open": 5}
SENIOR_TITLE = re.compile(r"director|\bvp\b|vice president|总监|经理", re.IGNORECASE)
LARGE_COMPANY_SIZES = frozenset({"201-500", "501-1000", "1001-5000", "5000+"})
FIT_TITLE_POINTS = 10
FIT_SIZE_POINTS = 10


@dataclass(frozen=True)
class EventBucket:
    """``count`` events of ``type`` that happened ``age_days`` whole days ago."""

    type: str
    age_days: int
    count: int


@dataclass(frozen=True)
class LeadFacts:
    job_title: str = ""
    company_size: str = ""
    events: tuple[EventBucket, ...] = ()


@dataclass(frozen=True)
class Contribution:
    points: float
    reason: str


@dataclass(frozen=True)
class Thresholds:
    half_life_days: float = 30.0
    hot: int = 80
    warm: int = 50


@dataclass(frozen=True)
class ScoreResult:
    score: int
    grade: str
    breakdown: tuple[Contribution, ...] = field(default=())


def decay(age_days: float, half_life_days: float) -> float:
    """The weight of an event ``age_days`` old: 1 today, ½ after one half-life, ¼ after two."""
    if half_life_days <= 0:
        return 1.0
    return math.pow(0.5, max(age_days, 0) / half_life_days)


def engagement_rule(facts: LeadFacts, thresholds: Thresholds) -> list[Contribution]:
    """Decayed points per event type, capped per type; unknown types are worth nothing."""
    weighted: dict[str, float] = {}
    counts: dict[str, int] = {}
    for bucket in facts.events:
        points = EVENT_POINTS.get(bucket.type, 0)
        if not points:
            continue
        weighted[bucket.type] = weighted.get(bucket.type, 0.0) + points * bucket.count * decay(
            bucket.age_days, thresholds.half_life_days
        )
        counts[bucket.type] = counts.get(bucket.type, 0) + bucket.count
    contributions = []
    for type_, value in sorted(weighted.items()):
        cap = EVENT_CAPS.get(type_, 3 * abs(EVENT_POINTS[type_]))
        value = max(-cap, min(cap, value))
        contributions.append(Contribution(value, f"{value:+.1f} {type_} ×{counts[type_]}"))
    return contributions


def fit_rule(facts: LeadFacts) -> list[Contribution]:
    """Senior job title and a large company."""
    contributions = []
    if SENIOR_TITLE.search(facts.job_title or ""):
        contributions.append(Contribution(FIT_TITLE_POINTS, f"+{FIT_TITLE_POINTS} senior title"))
    if facts.company_size in LARGE_COMPANY_SIZES:
        contributions.append(Contribution(FIT_SIZE_POINTS, f"+{FIT_SIZE_POINTS} company size {facts.company_size}"))
    return contributions


def grade_for(score: int, thresholds: Thresholds) -> str:
    if score >= thresholds.hot:
        return "hot"
    if score >= thresholds.warm:
        return "warm"
    return "cold"


def score_from_facts(facts: LeadFacts, thresholds: Thresholds) -> ScoreResult:
    """Total of every rule, rounded and clamped to 0–100, with its grade and breakdown."""
    breakdown = (*fit_rule(facts), *engagement_rule(facts, thresholds))
    score = max(0, min(100, round(sum(c.points for c in breakdown))))
    return ScoreResult(score=score, grade=grade_for(score, thresholds), breakdown=breakdown)
