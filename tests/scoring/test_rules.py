"""The scoring rules engine, tested without a database: operators, rule kinds, decay, caps, breakdown."""

from __future__ import annotations

import random
from typing import Any

import pytest

from scoring.rules import (
    BEHAVIOUR,
    CONTAINS,
    DAYS_INACTIVE,
    DEFAULT_INACTIVE,
    DEFAULT_RULE_SET,
    EMAIL_DOMAIN,
    EMPTY,
    EQUALS,
    FIT,
    IN,
    NEGATIVE,
    RANGE,
    REGEX,
    Condition,
    EventBucket,
    GradeBand,
    LeadFacts,
    Rule,
    RuleSet,
    Thresholds,
    decay,
    grade_for,
    score_from_facts,
    stage_threshold_reached,
    to_number,
    validate_condition,
)


def fit(condition: Condition, points: float = 10, label: str = "") -> RuleSet:
    return RuleSet(rules=(Rule("r", FIT if points >= 0 else NEGATIVE, points, label, condition),))


def behaviour(event_type: str, points: float, **options: Any) -> Rule:
    return Rule(event_type, BEHAVIOUR if points >= 0 else NEGATIVE, points, event_type=event_type, **options)


def events(*buckets: tuple[Any, ...]) -> LeadFacts:
    return LeadFacts(events=tuple(EventBucket(*b) for b in buckets))


# --- Operators -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("operator", "value", "fact", "fires"),
    [
        (EQUALS, "Manufacturing", "manufacturing", True),  # case-insensitive
        (EQUALS, "Manufacturing", "Retail", False),
        (EQUALS, 500, 500, True),
        (EQUALS, "x", None, False),
        (IN, ["华东", "华南"], "华东", True),
        (IN, ["华东", "华南"], "华北", False),
        (IN, ["crm", "api"], ["analytics", "API"], True),  # a list fact: any element
        (CONTAINS, "Director", "Sales director", True),
        (CONTAINS, ["Director", "总监"], "市场总监", True),
        (CONTAINS, "Director", "Engineer", False),
        (RANGE, {"min": 500}, 650, True),
        (RANGE, {"min": 500}, 499, False),
        (RANGE, {"min": 500}, "501-1000", True),  # a size band counts from its lower bound
        (RANGE, {"min": 500}, "201-500", False),
        (RANGE, {"min": 1, "max": 10}, 10, True),  # both bounds inclusive
        (RANGE, {"min": 1, "max": 10}, 10.5, False),
        (RANGE, {"max": 3}, "n/a", False),  # not a number: never in range
        (EMPTY, None, "", True),
        (EMPTY, None, None, True),
        (EMPTY, None, [], True),
        (EMPTY, None, "  ", True),
        (EMPTY, None, "Acme", False),
        (REGEX, r"^vp\b|总监$", "VP Sales", True),
        (REGEX, r"^vp\b|总监$", "Developer", False),
        (REGEX, r"(unclosed", "anything", False),  # an invalid pattern never matches (and fails validation)
    ],
)
def test_each_operator(operator: str, value: Any, fact: Any, fires: bool) -> None:
    result = score_from_facts(LeadFacts(fields={"f": fact}), fit(Condition("f", operator, value)))
    assert result.score == (10 if fires else 0)


def test_negate_inverts_a_condition() -> None:
    ruleset = fit(Condition("industry", IN, ["education", "government"], negate=True), 5)
    assert score_from_facts(LeadFacts(fields={"industry": "Retail"}), ruleset).score == 5
    assert score_from_facts(LeadFacts(fields={"industry": "education"}), ruleset).score == 0


def test_custom_attributes_and_derived_facts() -> None:
    facts = LeadFacts(fields={"email": "Li.Wei@QQ.com"}, attributes={"budget": "120000"}, days_inactive=200)
    assert score_from_facts(facts, fit(Condition("attr.budget", RANGE, {"min": 100000}), 8)).score == 8
    assert score_from_facts(facts, fit(Condition("attr.missing", EMPTY), 3)).score == 3
    assert score_from_facts(facts, fit(Condition(EMAIL_DOMAIN, EQUALS, "qq.com"), 4)).score == 4
    assert score_from_facts(facts, fit(Condition(DAYS_INACTIVE, RANGE, {"min": 180}), 6)).score == 6


@pytest.mark.parametrize(
    ("value", "expected"), [(7, 7.0), ("12.5", 12.5), ("501-1000", 501.0), ("5000+", 5000.0), ("abc", None)]
)
def test_to_number(value: Any, expected: float | None) -> None:
    assert to_number(value) == expected


@pytest.mark.parametrize(
    ("operator", "value", "ok"),
    [
        (IN, [], False),
        (IN, ["a"], True),
        (RANGE, {"min": "x"}, False),
        (RANGE, 5, False),
        (RANGE, {"max": 3}, True),
        (REGEX, "(", False),
        (EQUALS, "", False),
        (EMPTY, None, True),
        ("between", 1, False),
    ],
)
def test_condition_validation(operator: str, value: Any, ok: bool) -> None:
    assert (validate_condition(operator, value) == []) is ok


# --- Decay -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("age_days", "expected"),
    [(0, 1.0), (30, 0.5), (60, 0.25), (15, 0.7071067811865476), (90, 0.125), (-3, 1.0)],
)
def test_decay_halves_every_half_life(age_days: float, expected: float) -> None:
    assert decay(age_days, 30) == pytest.approx(expected)


def test_behaviour_points_decay_by_age_against_hand_computed_values() -> None:
    # given a download rule worth 8 with a 30-day half-life (the rule set's default)
    ruleset = RuleSet(rules=(behaviour("content_download", 8),), half_life_days=30)
    # when downloads happened today, 30 days ago (×2) and 45 days ago
    facts = events(("content_download", 0, 1), ("content_download", 30, 2), ("content_download", 45, 1))
    result = score_from_facts(facts, ruleset)
    # then 8 + 2 × 8 × 0.5 + 8 × 0.5^1.5 = 8 + 8 + 2.828… = 18.83 → 19
    (contribution,) = result.breakdown
    assert contribution.points == pytest.approx(8 + 8 + 8 * 0.5**1.5)
    assert contribution.count == 4
    assert result.score == 19


def test_a_rule_half_life_overrides_the_rule_set_and_zero_means_no_decay() -> None:
    facts = events(("webinar_attended", 20, 1))
    own = RuleSet(rules=(behaviour("webinar_attended", 12, half_life_days=10),), half_life_days=30)
    none = RuleSet(rules=(behaviour("webinar_attended", 12, half_life_days=0),), half_life_days=30)
    assert score_from_facts(facts, own).breakdown[0].points == pytest.approx(3.0)  # 12 × ¼
    assert score_from_facts(facts, none).breakdown[0].points == 12


# --- Behaviour: filters, caps, once-only, time window ----------------------------------------


def test_property_filters_select_the_events_a_rule_counts() -> None:
    pricing = behaviour("page_view", 5, event_filters=(Condition("url", CONTAINS, "/pricing"),), half_life_days=0)
    facts = events(
        ("page_view", 0, 3, (("url", "https://acme.cn/pricing?plan=pro"),)),
        ("page_view", 0, 10, (("url", "https://acme.cn/blog"),)),
        ("page_view", 1, 1, (("url", None),)),
    )
    result = score_from_facts(facts, RuleSet(rules=(pricing,)))
    assert result.score == 15
    assert result.breakdown[0].count == 3
    assert "url contains /pricing" in result.breakdown[0].reason


def test_cap_limits_a_rule_after_decay() -> None:
    ruleset = RuleSet(rules=(behaviour("page_view", 1, cap=10, half_life_days=0),))
    result = score_from_facts(events(("page_view", 0, 500)), ruleset)
    assert result.score == 10
    assert "(capped)" in result.breakdown[0].reason
    under = score_from_facts(events(("page_view", 0, 4)), ruleset)
    assert under.score == 4


def test_once_only_counts_the_latest_event() -> None:
    # given a demo request worth 30 once only, half-life 30 days
    ruleset = RuleSet(rules=(behaviour("demo_request", 30, once=True),), half_life_days=30)
    # when requested three times: 60 days ago, 30 days ago and 30 days ago again
    result = score_from_facts(events(("demo_request", 60, 1), ("demo_request", 30, 2)), ruleset)
    # then only the latest counts, decayed: 30 × ½
    assert result.breakdown[0].points == pytest.approx(15)
    assert result.breakdown[0].count == 1
    repeatable = RuleSet(rules=(behaviour("demo_request", 30),), half_life_days=30)
    assert score_from_facts(events(("demo_request", 60, 1), ("demo_request", 30, 2)), repeatable).score == 38


def test_time_window_ignores_older_events() -> None:
    ruleset = RuleSet(rules=(behaviour("email_click", 3, window_days=7, half_life_days=0),))
    facts = events(("email_click", 0, 1), ("email_click", 7, 1), ("email_click", 8, 5))
    result = score_from_facts(facts, ruleset)
    assert result.score == 6  # today and 7 days ago; the five 8-day-old clicks are outside
    assert "in the last 7 days" in result.breakdown[0].reason


def test_events_of_other_types_or_no_rule_score_nothing() -> None:
    ruleset = RuleSet(rules=(behaviour("trial_signup", 25),))
    assert score_from_facts(events(("legacy_crm_ping", 0, 9)), ruleset).score == 0


# --- Negative rules --------------------------------------------------------------------------


def test_negative_rules_take_points_away_and_explain_themselves() -> None:
    ruleset = RuleSet(
        rules=(
            Rule("title", FIT, 40, "senior title", Condition("job_title", CONTAINS, "director")),
            behaviour("unsubscribe", -20, half_life_days=0),
            behaviour(
                "email_bounce", -10, label="hard bounce", event_filters=(Condition("bounce", EQUALS, "hard"),), cap=10
            ),
            Rule("free", NEGATIVE, -5, "free-mail domain", Condition(EMAIL_DOMAIN, IN, ["gmail.com", "163.com"])),
            Rule("student", NEGATIVE, -15, "", Condition("job_title", REGEX, r"student|学生")),
            Rule("dormant", NEGATIVE, -7, "no activity for 90 days", Condition(DAYS_INACTIVE, RANGE, {"min": 90})),
        ),
        half_life_days=0,
    )
    facts = LeadFacts(
        fields={"job_title": "Director (former student rep)", "email": "ann@163.com"},
        events=(
            EventBucket("unsubscribe", 3, 1),
            EventBucket("email_bounce", 1, 2, (("bounce", "hard"),)),
            EventBucket("email_bounce", 1, 4, (("bounce", "soft"),)),
        ),
        days_inactive=95,
    )
    result = score_from_facts(facts, ruleset)
    reasons = [c.reason for c in result.breakdown]
    assert reasons == [
        "+40 senior title",
        "−20 unsubscribe ×1",
        "−10 hard bounce ×2 (capped)",  # two hard bounces (−20) capped at 10; soft bounces ignored
        "−5 free-mail domain",
        "−15 job_title matches student|学生",
        "−7 no activity for 90 days",
    ]
    assert result.score == 0  # 40 − 57 clamps at zero


def test_breakdown_reasons_for_fit_rules_read_like_the_design() -> None:
    result = score_from_facts(LeadFacts(fields={"title": "Director"}), fit(Condition("title", CONTAINS, "Director")))
    assert result.breakdown[0].reason == "+10 title contains Director"
    ranged = fit(Condition("attr.employees", RANGE, {"min": 500}), 8)
    assert score_from_facts(LeadFacts(attributes={"employees": 800}), ranged).breakdown[0].reason == (
        "+8 attr.employees ≥ 500"
    )


# --- Totals, grades, thresholds, determinism -------------------------------------------------


def test_grade_bands_are_data() -> None:
    bands = (GradeBand("A", 90), GradeBand("B", 60), GradeBand("C", 20))
    assert [grade_for(s, bands) for s in (95, 90, 61, 20, 5)] == ["A", "A", "B", "C", ""]
    ruleset = RuleSet(rules=(Rule("r", FIT, 65, condition=Condition("x", EMPTY)),), bands=bands)
    assert score_from_facts(LeadFacts(), ruleset).grade == "B"


def test_stage_thresholds() -> None:
    t = Thresholds(mql=40, sql=70)
    assert [stage_threshold_reached(s, t) for s in (39, 40, 69, 70, 100)] == [None, "mql", "mql", "sql", "sql"]


def test_score_is_clamped_to_0_100() -> None:
    ruleset = RuleSet(rules=(behaviour("demo_request", 30, half_life_days=0),))
    assert score_from_facts(events(("demo_request", 0, 5)), ruleset).score == 100


def test_order_of_events_does_not_change_the_result() -> None:
    ruleset = RuleSet(
        rules=(
            behaviour("page_view", 1.3, event_filters=(Condition("url", CONTAINS, "/p"),)),
            behaviour("email_click", 3.7, once=True),
            behaviour("call", 5.1, cap=9),
        ),
        half_life_days=17,
    )
    buckets = [EventBucket("page_view", age, 1 + age % 3, (("url", f"/p{age}"),)) for age in range(0, 90, 7)] + [
        EventBucket("email_click", 3, 2),
        EventBucket("email_click", 45, 1),
        EventBucket("call", 1, 1),
        EventBucket("page_view", 5, 2, (("url", None),)),
    ]
    expected = score_from_facts(LeadFacts(events=tuple(buckets)), ruleset)
    rng = random.Random(5)
    for _ in range(20):
        rng.shuffle(buckets)
        assert score_from_facts(LeadFacts(events=tuple(buckets)), ruleset) == expected


# --- The default rule set (what a fresh install scores with) ---------------------------------


def test_default_rule_set_scores_fit_and_engagement() -> None:
    # demo request today (30) + content download 30 days ago (8 × ½ = 4) + pricing view 60 days ago (5 × ¼)
    facts = LeadFacts(
        fields={"job_title": "市场总监", "company_size": "5000+"},
        events=(
            EventBucket("demo_request", 0, 1),
            EventBucket("content_download", 30, 1),
            EventBucket("pricing_page_view", 60, 1),
        ),
    )
    result = score_from_facts(facts, DEFAULT_RULE_SET)
    assert result.score == round(10 + 10 + 30 + 4 + 1.25)  # 55
    assert result.grade == "warm"
    assert [c.reason for c in result.breakdown][:2] == ["+10 senior title", "+10 company size 201+"]


def test_default_rule_set_caps_page_views_and_small_companies_get_no_size_points() -> None:
    assert score_from_facts(events(("page_view", 0, 500)), DEFAULT_RULE_SET).score == 10
    small = LeadFacts(fields={"job_title": "Engineer", "company_size": "51-200"})
    assert score_from_facts(small, DEFAULT_RULE_SET).score == 0
    assert DEFAULT_RULE_SET.thresholds == Thresholds(mql=50, sql=80)
    assert {r.key for r in DEFAULT_INACTIVE} == {"free_mail", "student", "dormant"}
