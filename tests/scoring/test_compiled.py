"""The bulk evaluator gives the rules engine's score and grade, on random facts and every rule feature."""

from __future__ import annotations

import random
from typing import Any

import pytest

from scoring.compiled import CompiledRuleSet
from scoring.rules import (
    BEHAVIOUR,
    CONTAINS,
    DAYS_INACTIVE,
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
    score_from_facts,
)

TYPES = ("page_view", "pricing_page_view", "content_download", "email_open", "demo_request", "unsubscribe", "call")
TITLES = ("Sales Director", "销售总监", "Engineer", "Student", "学生", "VP Marketing", "", None)
INDUSTRIES = ("manufacturing", "Manufacturing", "software", "", None)
SIZES = ("1-10", "11-50", "501-1000", "5000+", "", None, 750)
URLS = ("/pricing", "/pricing/enterprise", "/blog/a", None)
ASSETS = ("whitepaper", "ebook", None)


def _kitchen_sink() -> RuleSet:
    """Every operator, negation, attributes, derived facts, filters, windows, once-only, caps, half-lives."""
    return RuleSet(
        rules=(
            Rule("title", FIT, 10, condition=Condition("job_title", REGEX, r"director|总监|\bvp\b")),
            Rule("industry", FIT, 10, condition=Condition("industry", EQUALS, "manufacturing")),
            Rule("size", FIT, 8, condition=Condition("company_size", RANGE, {"min": 500})),
            Rule("region", FIT, 5, condition=Condition("region", IN, ["Shanghai", "Beijing", "广东"])),
            Rule("no-company", NEGATIVE, -3, condition=Condition("company", EMPTY)),
            Rule("has-company", FIT, 1, condition=Condition("company", EMPTY, negate=True)),
            Rule("student", NEGATIVE, -15, condition=Condition("job_title", CONTAINS, ["student", "学生"])),
            Rule("free-mail", NEGATIVE, -5, condition=Condition(EMAIL_DOMAIN, IN, ["gmail.com", "qq.com"])),
            Rule("dormant", NEGATIVE, -7, condition=Condition(DAYS_INACTIVE, RANGE, {"min": 60})),
            Rule("plan", FIT, 6, condition=Condition("attr.plan", IN, ["enterprise", "pro"])),
            Rule("seats", FIT, 4, condition=Condition("attr.seats", RANGE, {"min": 50, "max": 500})),
            Rule("topics", FIT, 2, condition=Condition("attr.topics", CONTAINS, "erp")),
            Rule("pv", BEHAVIOUR, 1, event_type="page_view", cap=10),
            Rule(
                "pricing",
                BEHAVIOUR,
                5,
                event_type="page_view",
                event_filters=(Condition("url", CONTAINS, "/pricing"),),
                half_life_days=7,
            ),
            Rule("pricing-page", BEHAVIOUR, 5, event_type="pricing_page_view", window_days=30, cap=12.5),
            Rule(
                "paper",
                BEHAVIOUR,
                8,
                event_type="content_download",
                event_filters=(Condition("asset", EQUALS, "whitepaper"),),
                once=True,
            ),
            Rule("not-paper", BEHAVIOUR, 3, event_type="content_download", event_filters=(Condition("asset", EMPTY),)),
            Rule("open", BEHAVIOUR, 1, event_type="email_open", half_life_days=0, cap=5),
            Rule("demo", BEHAVIOUR, 30, event_type="demo_request", once=True, window_days=60),
            Rule("unsub", NEGATIVE, -20, event_type="unsubscribe"),
            Rule("calls", BEHAVIOUR, 2.5, event_type="call", half_life_days=3.3),
        ),
        bands=(GradeBand("hot", 80), GradeBand("warm", 50), GradeBand("cold", 10)),
        half_life_days=30,
    )


def _random_facts(rng: random.Random, ruleset: RuleSet) -> LeadFacts:
    paths = ruleset.property_paths()
    events = []
    for _ in range(rng.randint(0, 12)):
        type_ = rng.choice(TYPES)
        values = {"url": rng.choice(URLS), "asset": rng.choice(ASSETS)}
        properties = tuple(sorted((path, values.get(path)) for path in paths.get(type_, ())))
        events.append(EventBucket(type_, rng.randint(0, 400), rng.randint(0, 4), properties))
    attributes: dict[str, Any] = {}
    if rng.random() < 0.5:
        attributes["plan"] = rng.choice(["enterprise", "free", "PRO", None])
    if rng.random() < 0.5:
        attributes["seats"] = rng.choice([10, 50, 120.5, "300", "a lot", None, True])
    if rng.random() < 0.3:
        attributes["topics"] = rng.choice([["erp", "crm"], ["crm"], "ERP", {"nested": "erp"}, []])
    return LeadFacts(
        fields={
            "job_title": rng.choice(TITLES),
            "industry": rng.choice(INDUSTRIES),
            "company_size": rng.choice(SIZES),
            "region": rng.choice(["Shanghai", "shanghai", "广东", "Texas", ""]),
            "company": rng.choice(["Acme", "", " ", None]),
            "email": rng.choice(["a@gmail.com", "b@acme.com", "C@QQ.COM", "", None]),
        },
        attributes=attributes,
        events=tuple(events),
        days_inactive=rng.choice([None, 0, 5, 59, 60, 365]),
    )


KITCHEN_SINK = _kitchen_sink()


@pytest.mark.parametrize("ruleset", [KITCHEN_SINK, DEFAULT_RULE_SET], ids=["every-feature", "default"])
def test_compiled_rule_set_scores_like_the_engine(ruleset: RuleSet) -> None:
    rng = random.Random(20261122)
    compiled = CompiledRuleSet(ruleset)
    fired_somewhere: set[int] = set()
    for _ in range(4000):
        facts = _random_facts(rng, ruleset)
        expected = score_from_facts(facts, ruleset)
        score, grade, fired = compiled.evaluate_facts(facts)
        assert (score, grade) == (expected.score, expected.grade), facts
        # The same rules fire, with the same points and counts (what the history keeps).
        by_key = {ruleset.rules[index].key: (points, count) for index, points, count in fired}
        assert by_key == {c.rule: (c.points, c.count) for c in expected.breakdown}, facts
        fired_somewhere |= {index for index, _, _ in fired}
    if ruleset is KITCHEN_SINK:
        # The random facts exercised every rule, so the equality above covers each feature.
        assert fired_somewhere == set(range(len(ruleset.rules)))
    else:
        assert len(fired_somewhere) >= 5


def test_memoized_facts_do_not_leak_between_types() -> None:
    """1, 1.0 and True are one dict key in Python; the memo must still tell them apart."""
    ruleset = RuleSet(rules=(Rule("one", FIT, 10, condition=Condition("x", EQUALS, "1")),))
    compiled = CompiledRuleSet(ruleset)
    for value in (1, True, 1.0, "1", "true"):
        facts = LeadFacts(fields={"x": value})
        assert compiled.evaluate_facts(facts)[0] == score_from_facts(facts, ruleset).score, value
