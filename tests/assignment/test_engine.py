"""The pure engine: each strategy's choice, conditions and rule order, capacity and availability, reasons."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime

import pytest

from assignment.rules import (
    BULK,
    GRADE_UP,
    NEW,
    POOL_REPS,
    POOL_TEAM,
    QUEUE,
    LeadSnapshot,
    RepSnapshot,
    RuleSpec,
    decide,
    smoothed_rate,
)
from assignment.rules.validation import validate_conditions, validate_options
from scoring.rules import Condition

# A Monday, 10:00 in Shanghai (02:00 UTC).
NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
OFFICE = {day: [["09:00", "18:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}


def rep(user_id: int, **kw) -> RepSnapshot:
    return RepSnapshot(user_id=user_id, name=kw.pop("name", f"rep{user_id}"), **kw)


def lead(**fields) -> LeadSnapshot:
    attributes = fields.pop("attributes", {})
    team_id = fields.pop("team_id", None)
    return LeadSnapshot(
        id=1, fields={"score": 0, "grade": "cold", "stage": "new", **fields}, attributes=attributes, team_id=team_id
    )


def rule(strategy: str, **kw) -> RuleSpec:
    return RuleSpec(id=kw.pop("id", 1), name=kw.pop("name", "R"), strategy=strategy, **kw)


def run(strategy_rule: RuleSpec, reps: list[RepSnapshot], the_lead: LeadSnapshot | None = None, **kw):
    return decide(
        lead=the_lead or lead(),
        rules=[strategy_rule],
        reps=reps,
        trigger=kw.get("trigger", NEW),
        now=kw.get("now", NOW),
        rng=kw.get("rng", random.Random(7)),
    )


def test_random_is_reproducible_with_a_seeded_rng():
    reps = [rep(1), rep(2), rep(3)]
    first = run(rule("random"), reps, rng=random.Random(42)).winner_id
    again = run(rule("random"), reps, rng=random.Random(42)).winner_id
    assert first == again
    assert first == random.Random(42).choice(reps).user_id


@pytest.mark.parametrize(("last", "expected"), [(None, 1), (1, 2), (2, 3), (3, 1)])
def test_round_robin_takes_the_next_rep_after_the_cursor_and_wraps(last, expected):
    decision = run(rule("round_robin", last_user_id=last), [rep(3), rep(1), rep(2)])
    assert decision.winner_id == expected


def test_round_robin_skips_a_rep_at_capacity():
    reps = [rep(1), rep(2, daily_capacity=5, assigned_today=5), rep(3)]
    decision = run(rule("round_robin", last_user_id=1), reps)
    assert decision.winner_id == 3
    excluded = {c.user_id: c.excluded for c in decision.candidates}
    assert "already received 5 of 5 leads today" in excluded[2]


def test_load_balanced_picks_lowest_open_to_capacity_ratio():
    reps = [
        rep(1, open_leads=5, max_open_leads=10),
        rep(2, open_leads=6, max_open_leads=20),
        rep(3, open_leads=1, max_open_leads=2),
    ]
    decision = run(rule("load_balanced"), reps)
    assert decision.winner_id == 2  # 30 % beats 50 % and 50 %
    assert "6 of 20 open leads (30%)" in decision.reason


def test_performance_prefers_the_better_converter_but_smooths_a_newcomer():
    veteran = rep(1, won=2, lost=18)  # 10 %
    star = rep(2, won=12, lost=8)  # 60 %
    newcomer = rep(3)  # no history: gets the pool's rate, not zero
    decision = run(rule("performance"), [veteran, star, newcomer])
    assert decision.winner_id == 2
    weights = {c.user_id: c.weight for c in decision.candidates}
    pooled = 14 / 40
    assert weights[3] == pytest.approx(pooled)
    assert weights[1] < weights[3] < weights[2]


def test_smoothed_rate_moves_from_prior_to_own_rate():
    assert smoothed_rate(rep(1), 0.3, 10) == pytest.approx(0.3)
    assert smoothed_rate(rep(1, won=100, lost=0), 0.3, 10) == pytest.approx(103 / 110)


def test_potential_sends_hot_leads_to_senior_reps():
    reps = [rep(1, tier="junior"), rep(2, tier="senior", open_leads=9), rep(3, tier="mid")]
    options = {"grades": {"hot": "senior", "warm": "mid"}, "default": "junior"}
    hot = run(rule("potential", options=options), reps, lead(score=90, grade="hot"))
    assert hot.winner_id == 2
    assert "calls for a Senior rep; rep1 is Junior" in {c.user_id: c.excluded for c in hot.candidates}[1]
    warm = run(
        rule("potential", options=options),
        [rep(1, tier="junior"), rep(3, tier="mid", open_leads=3)],
        lead(grade="warm"),
    )
    assert warm.winner_id == 3


def test_potential_by_score_bands():
    options = {"scores": [{"min": 80, "tier": "senior"}, {"min": 0, "tier": "junior"}]}
    decision = run(
        rule("potential", options=options), [rep(1, tier="mid"), rep(2, tier="senior")], lead(score=85, grade="")
    )
    assert decision.winner_id == 2


def test_territory_matches_the_lead_region_case_insensitively():
    reps = [rep(1, territories=("North",)), rep(2, territories=("east", "south"))]
    decision = run(rule("territory"), reps, lead(region="East"))
    assert decision.winner_id == 2
    assert "covers North, not the lead's region east" in decision.candidates[0].excluded


def test_territory_can_match_a_custom_attribute():
    reps = [rep(1, territories=("APAC",)), rep(2, territories=("EMEA",))]
    decision = run(rule("territory", options={"field": "attr.territory"}), reps, lead(attributes={"territory": "EMEA"}))
    assert decision.winner_id == 2


def test_industry_matches_the_lead_industry():
    reps = [rep(1, industries=("Retail",)), rep(2, industries=("Manufacturing", "Energy"))]
    assert run(rule("industry"), reps, lead(industry="manufacturing")).winner_id == 2


def test_availability_uses_working_hours_in_the_reps_time_zone():
    shanghai = rep(1, time_zone="Asia/Shanghai", working_hours=OFFICE)  # 10:00 there
    berlin = rep(2, time_zone="Europe/Berlin", working_hours=OFFICE)  # 03:00 there
    decision = run(rule("availability"), [berlin, shanghai])
    assert decision.winner_id == 1
    assert "Outside rep2's working hours (mon 09:00–18:00 (Europe/Berlin))" in decision.candidates[1].excluded


def test_out_of_office_and_the_switch_exclude_with_reasons():
    reps = [
        rep(1, is_available=False),
        rep(2, out_of_office=((date(2026, 11, 20), date(2026, 11, 27)),)),
        rep(3, open_leads=20, max_open_leads=20),
        rep(4),
    ]
    decision = run(rule("round_robin"), reps)
    assert decision.winner_id == 4
    reasons = [c.excluded for c in decision.candidates]
    assert "switched availability off" in reasons[0]
    assert "out of office until 2026-11-27" in reasons[1]
    assert "has 20 open leads; the limit is 20" in reasons[2]
    assert reasons[3] == ""


def test_team_strategy_adds_supporting_members_by_skill():
    reps = [rep(1, open_leads=1), rep(2, open_leads=5, skills=("presales",)), rep(3, open_leads=0, skills=("legal",))]
    options = {"support": [{"role": "sales_engineer", "skill": "presales"}, {"role": "specialist"}]}
    decision = run(rule("team", options=options), reps)
    assert decision.winner_id == 3
    assert decision.supporting == ((2, "sales_engineer"), (1, "specialist"))


def test_first_matching_rule_wins_and_earlier_misses_are_explained():
    rules = [
        rule(
            "round_robin",
            id=1,
            name="China",
            conditions=(Condition("country", "equals", "CN"),),
            pool=POOL_REPS,
            rep_ids=frozenset({1}),
        ),
        rule(
            "round_robin",
            id=2,
            name="Big",
            conditions=(Condition("company_size", "range", {"min": 500}),),
            pool=POOL_REPS,
            rep_ids=frozenset({2}),
        ),
        rule("round_robin", id=3, name="Rest", pool=POOL_REPS, rep_ids=frozenset({3})),
    ]
    decision = decide(
        lead=lead(country="US", company_size="1001-5000"),
        rules=rules,
        reps=[rep(1), rep(2), rep(3)],
        trigger=NEW,
        now=NOW,
    )
    assert decision.rule is not None
    assert decision.rule.name == "Big"
    assert decision.winner_id == 2
    assert decision.rules_skipped == ("China: condition “country is CN” does not hold.",)


def test_conditions_read_custom_attributes_score_and_source():
    only_hot_ads = rule(
        "round_robin",
        conditions=(
            Condition("attr.budget", "range", {"min": 10000}),
            Condition("score", "range", {"min": 50}),
            Condition("source", "in", ["online_ads"]),
        ),
    )
    matching = lead(score=60, source="online_ads", attributes={"budget": "20000"})
    assert run(only_hot_ads, [rep(1)], matching).winner_id == 1
    assert run(only_hot_ads, [rep(1)], lead(score=60, source="referral", attributes={"budget": 20000})).rule is None


def test_triggers_select_rules_and_the_queue_uses_new_lead_rules():
    senior = rule(
        "round_robin",
        id=1,
        name="SQL to seniors",
        triggers=frozenset({GRADE_UP}),
        pool=POOL_REPS,
        rep_ids=frozenset({9}),
    )
    default = rule("round_robin", id=2, name="Default", triggers=frozenset({NEW}))
    reps = [rep(1), rep(9)]
    assert decide(lead=lead(), rules=[senior, default], reps=reps, trigger=GRADE_UP, now=NOW).winner_id == 9
    assert decide(lead=lead(), rules=[senior, default], reps=reps, trigger=QUEUE, now=NOW).rule == default
    assert decide(lead=lead(), rules=[senior, default], reps=reps, trigger=BULK, now=NOW).rule is None


def test_team_pool_defaults_to_the_leads_team():
    reps = [rep(1, team_id=10), rep(2, team_id=20)]
    assert run(rule("round_robin", pool=POOL_TEAM), reps, lead(team_id=20)).winner_id == 2


def test_nobody_eligible_gives_no_winner_and_a_reason():
    decision = run(rule("round_robin", name="Default"), [rep(1, is_available=False)])
    assert decision.winner_id is None
    assert decision.rule is not None
    assert "none of its 1 reps can take the lead now" in decision.reason


def test_working_hours_only_applies_to_any_strategy():
    night_owl = rep(1, time_zone="Europe/Berlin", working_hours=OFFICE)
    decision = run(rule("round_robin", options={"working_hours_only": True}), [night_owl])
    assert decision.winner_id is None


def test_validation_names_unknown_options_fields_and_bad_values():
    assert validate_options("round_robin", {"weighted": True})
    assert validate_options("performance", {"prior_rate": 2})
    assert validate_options("potential", {"grades": {"hot": "guru"}})
    assert validate_options("potential", {"grades": {"hot": "senior"}}) == []
    assert validate_conditions([{"field": "nope", "operator": "equals", "value": 1}], known_fields={"region"})
    assert validate_conditions([{"field": "attr.x", "operator": "in", "value": []}], known_fields=set())
    assert (
        validate_conditions([{"field": "region", "operator": "equals", "value": "East"}], known_fields={"region"}) == []
    )
