"""The scoring service with a database: rule sets as rows, set-based facts, history, stage thresholds."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from leads import services as lead_services
from leads.models import Lead, LeadStageChange, Stage
from scoring import rules
from scoring import services as scoring
from scoring.models import ScoreHistory, ScoringRule, ScoringRuleSet
from tests.factories import InteractionFactory, LeadFactory

pytestmark = pytest.mark.django_db


def active() -> ScoringRuleSet:
    return ScoringRuleSet.objects.get(is_active=True)


def process(*leads: Lead) -> None:
    lead_services.leads_mark_dirty(lead_ids=[lead.pk for lead in leads])
    lead_services.pipeline_process_dirty()
    for lead in leads:
        lead.refresh_from_db()


def test_the_migration_seeds_an_active_default_rule_set_equal_to_the_built_in_one() -> None:
    row = active()
    assert (row.mql_threshold, row.sql_threshold) == (50, 80)
    assert sorted(row.bands.values_list("key", "min_score")) == [("cold", 0), ("hot", 80), ("warm", 50)]
    loaded = scoring.rule_set_active()
    # Same rules, same order (keys differ: rows are keyed by id).
    strip = [(r.kind, r.points, r.condition, r.event_type, r.cap) for r in loaded.rules]
    assert strip == [(r.kind, r.points, r.condition, r.event_type, r.cap) for r in rules.DEFAULT_RULE_SET.rules]
    assert ScoringRule.objects.filter(rule_set=row, is_active=False).count() == len(rules.DEFAULT_INACTIVE)


def test_without_an_active_rule_set_the_built_in_defaults_apply() -> None:
    ScoringRuleSet.objects.update(is_active=False)
    assert scoring.rule_set_active() == rules.DEFAULT_RULE_SET


def test_behaviour_rule_with_a_property_filter_and_a_custom_attribute_fit_rule() -> None:
    # given a manager's rule set: pricing page views +5 each (cap 15), budget ≥ 100k +20
    row = active()
    row.rules.all().delete()
    ScoringRule.objects.create(
        rule_set=row,
        kind=rules.BEHAVIOUR,
        points=5,
        cap=15,
        event_type="page_view",
        event_filters=[{"path": "url", "operator": "contains", "value": "/pricing"}],
        half_life_days=0,
    )
    ScoringRule.objects.create(
        rule_set=row, kind=rules.FIT, points=20, name="budget ≥ 100k", field="attr.budget", operator="range",
        value={"min": 100000},
    )  # fmt: skip
    lead = LeadFactory.create(attributes={"budget": 250000})
    for url in ("/pricing", "/pricing?plan=pro", "/blog/a", "/blog/b"):
        InteractionFactory.create(lead=lead, type="page_view", properties={"url": url})
    InteractionFactory.create(lead=lead, type="page_view", properties={"ref": "x"})

    # when the pipeline scores the lead
    process(lead)

    # then two pricing views count (+10) and the budget (+20); the history row explains it
    assert lead.score == 30
    entry = ScoreHistory.objects.get(lead=lead)
    assert (entry.score, entry.grade) == (30, "cold")
    assert [item["reason"] for item in entry.breakdown] == [
        "+10 page_view where url contains /pricing ×2",
        "+20 budget ≥ 100k",
    ]
    assert entry.rule_set_version == row.version


def test_nested_property_paths_and_numeric_property_values() -> None:
    row = active()
    row.rules.all().delete()
    ScoringRule.objects.create(
        rule_set=row, kind=rules.BEHAVIOUR, points=7, event_type="form_submit", half_life_days=0,
        event_filters=[{"path": "form.seats", "operator": "range", "value": {"min": 50}}],
    )  # fmt: skip
    lead = LeadFactory.create()
    InteractionFactory.create(lead=lead, type="form_submit", properties={"form": {"seats": 120}})
    InteractionFactory.create(lead=lead, type="form_submit", properties={"form": {"seats": 10}})
    assert scoring.lead_score_recompute(lead=lead, now=timezone.now()).score == 7


def test_facts_are_gathered_in_a_constant_number_of_queries() -> None:
    row = active()
    ScoringRule.objects.create(
        rule_set=row, kind=rules.BEHAVIOUR, points=2, event_type="page_view",
        event_filters=[{"path": "url", "operator": "contains", "value": "/pricing"}],
    )  # fmt: skip
    ruleset = scoring.rule_set_active()

    def queries_for(n: int) -> int:
        leads = LeadFactory.create_batch(n)
        for lead in leads:
            InteractionFactory.create(lead=lead, type="page_view", properties={"url": "/pricing"})
            InteractionFactory.create(lead=lead, type="call")
        with CaptureQueriesContext(connection) as queries:
            facts, _ = scoring.lead_facts_for_batch(leads=leads, now=timezone.now(), rule_set=ruleset)
        assert all(sum(b.count for b in facts[lead.pk].events) == 2 for lead in leads)
        return len(queries)

    assert queries_for(2) == queries_for(25) == 1


def test_history_is_written_only_when_score_or_grade_changes() -> None:
    lead = LeadFactory.create()
    InteractionFactory.create(lead=lead, type="form_submit")
    process(lead)
    process(lead)  # nothing new: same score, no second row
    InteractionFactory.create(lead=lead, type="demo_request")
    process(lead)

    history = list(ScoreHistory.objects.filter(lead=lead).order_by("at", "id"))
    assert [(h.score, h.grade) for h in history] == [(10, "cold"), (40, "cold")]
    assert {item["rule"] for item in history[-1].breakdown} == {
        str(pk)
        for pk in ScoringRule.objects.filter(event_type__in=["form_submit", "demo_request"]).values_list(
            "pk", flat=True
        )
    }


def test_thresholds_and_grades_are_data_and_stages_move_forward_only() -> None:
    # given a manager who lowers MQL to 20 and SQL to 35, with an "A" band at 35
    row = active()
    row.mql_threshold, row.sql_threshold = 20, 35
    row.save()
    row.bands.create(key="a", label="A", min_score=35)
    lead = LeadFactory.create(stage=Stage.NEW)
    InteractionFactory.create_batch(2, lead=lead, type="form_submit")

    process(lead)
    assert (lead.score, lead.stage, lead.grade) == (20, Stage.MQL, "cold")
    assert lead.mql_at is not None
    assert "20" in LeadStageChange.objects.get(lead=lead, to_stage=Stage.MQL).reason

    InteractionFactory.create(lead=lead, type="email_click", occurred_at=timezone.now() - timedelta(hours=1))
    InteractionFactory.create_batch(2, lead=lead, type="call")
    process(lead)
    assert (lead.score, lead.stage, lead.grade) == (33, Stage.MQL, "cold")

    InteractionFactory.create(lead=lead, type="email_click")
    process(lead)
    assert (lead.score, lead.stage, lead.grade) == (36, Stage.SQL, "a")
    assert lead.sql_at is not None

    # when the score falls back under both thresholds, the stage stays
    InteractionFactory.create(lead=lead, type="unsubscribe")
    process(lead)
    assert lead.score == 16
    assert lead.stage == Stage.SQL
    assert LeadStageChange.objects.filter(lead=lead).count() == 2


def test_a_converted_lead_is_never_moved_by_its_score() -> None:
    lead = LeadFactory.create(stage=Stage.CONVERTED)
    InteractionFactory.create_batch(3, lead=lead, type="demo_request")
    process(lead)
    assert (lead.score, lead.stage) == (90, Stage.CONVERTED)
    assert not LeadStageChange.objects.filter(lead=lead).exists()


@pytest.mark.parametrize(
    ("fields", "error_field"),
    [
        ({"kind": rules.NEGATIVE, "points": 5, "field": "job_title", "operator": "contains", "value": "x"}, "points"),
        ({"kind": rules.FIT, "points": 5, "field": "shoe_size", "operator": "equals", "value": "x"}, "field"),
        ({"kind": rules.FIT, "points": 5, "field": "industry", "operator": "in", "value": []}, "value"),
        ({"kind": rules.FIT, "points": 5, "field": "industry", "operator": "regex", "value": "("}, "value"),
        ({"kind": rules.BEHAVIOUR, "points": 5}, "event_type"),
        (
            {"kind": rules.BEHAVIOUR, "points": 5, "event_type": "page_view", "event_filters": [{"path": "a__b"}]},
            "event_filters",
        ),
    ],
)
def test_invalid_rules_get_field_level_errors(fields: dict[str, Any], error_field: str) -> None:
    rule = ScoringRule(rule_set=active(), **fields)
    with pytest.raises(ValidationError) as excinfo:
        rule.full_clean()
    assert error_field in excinfo.value.message_dict


def test_a_valid_negative_event_rule_passes_validation() -> None:
    rule = ScoringRule(
        rule_set=active(), kind=rules.NEGATIVE, points=-10, event_type="email_bounce",
        event_filters=[{"path": "bounce", "operator": "equals", "value": "hard"}],
    )  # fmt: skip
    rule.full_clean()


def test_a_copied_version_can_be_edited_and_activated() -> None:
    # given a copy of the active set with the demo request worth 50
    original = active()
    copy = scoring.rule_set_copy(rule_set=original)
    assert (copy.version, copy.is_active) == (original.version + 1, False)
    assert copy.rules.count() == original.rules.count()
    assert copy.bands.count() == original.bands.count()
    copy.rules.filter(event_type="demo_request").update(points=50, cap=None)
    lead = LeadFactory.create()
    InteractionFactory.create(lead=lead, type="demo_request")
    assert scoring.lead_score_recompute(lead=lead, now=timezone.now()).score == 30  # still the original

    # when it is activated
    scoring.rule_set_activate(rule_set=copy)

    # then it scores, and exactly one set is active
    assert scoring.lead_score_recompute(lead=lead, now=timezone.now()).score == 50
    assert list(ScoringRuleSet.objects.filter(is_active=True)) == [copy]
    process(lead)
    assert ScoreHistory.objects.get(lead=lead).rule_set_version == copy.version


def test_a_flush_reseeds_the_default_rule_set() -> None:
    from scoring.apps import ensure_default_rule_set

    ScoringRuleSet.objects.all().delete()
    ensure_default_rule_set(using="default")
    ensure_default_rule_set(using="default")  # idempotent
    assert ScoringRuleSet.objects.get().is_active
    assert scoring.rule_set_active().thresholds == rules.DEFAULT_RULE_SET.thresholds
