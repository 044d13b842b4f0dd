"""Placeholder scoring rules, tested without a database."""

import pytest

from scoring.rules import EventBucket, LeadFacts, Thresholds, decay, score_from_facts

T = Thresholds(half_life_days=30, hot=80, warm=50)


@pytest.mark.parametrize(
    ("age_days", "expected"),
    [(0, 1.0), (30, 0.5), (60, 0.25), (15, 0.7071067811865476), (90, 0.125), (-3, 1.0)],
)
def test_decay_halves_every_half_life(age_days: float, expected: float) -> None:
    assert decay(age_days, 30) == pytest.approx(expected)


def test_engagement_is_decayed_points_per_event() -> None:
    # demo request today (30) + content download 30 days ago (8 × ½ = 4) + pricing view 60 days ago (5 × ¼)
    facts = LeadFacts(
        events=(
            EventBucket("demo_request", 0, 1),
            EventBucket("content_download", 30, 1),
            EventBucket("pricing_page_view", 60, 1),
        )
    )
    result = score_from_facts(facts, T)
    assert result.score == round(30 + 4 + 1.25)  # 35
    assert result.grade == "cold"


def test_page_views_are_capped_so_they_alone_never_make_a_lead_hot() -> None:
    facts = LeadFacts(events=(EventBucket("page_view", 0, 500),))
    assert score_from_facts(facts, T).score == 10


def test_fit_points_for_senior_title_and_large_company() -> None:
    for title in ("Sales Director", "VP Marketing", "市场总监", "销售经理"):
        assert score_from_facts(LeadFacts(job_title=title), T).score == 10, title
    assert score_from_facts(LeadFacts(job_title="Engineer", company_size="201-500"), T).score == 10
    assert score_from_facts(LeadFacts(job_title="Engineer", company_size="51-200"), T).score == 0


def test_grade_thresholds_and_clamp() -> None:
    hot = LeadFacts(
        job_title="Director",
        company_size="5000+",
        events=(EventBucket("demo_request", 0, 2), EventBucket("trial_signup", 0, 1)),
    )
    result = score_from_facts(hot, T)
    assert result.score == 100  # 10 + 10 + 60 + 25 = 105, clamped
    assert result.grade == "hot"
    warm = LeadFacts(events=(EventBucket("demo_request", 0, 1), EventBucket("form_submit", 0, 2)))
    assert (score_from_facts(warm, T).score, score_from_facts(warm, T).grade) == (50, "warm")


def test_negative_signals_never_push_below_zero_and_explain_themselves() -> None:
    result = score_from_facts(LeadFacts(events=(EventBucket("unsubscribe", 0, 1),)), T)
    assert result.score == 0
    assert any("unsubscribe" in c.reason for c in result.breakdown)


def test_order_of_buckets_does_not_change_the_score() -> None:
    buckets = (EventBucket("email_click", 3, 2), EventBucket("webinar_attended", 45, 1), EventBucket("call", 1, 1))
    forward = score_from_facts(LeadFacts(events=buckets), T)
    backward = score_from_facts(LeadFacts(events=tuple(reversed(buckets))), T)
    assert forward == backward
