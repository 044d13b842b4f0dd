"""Routing with the database: owner written with a decision record, queue then later assignment, triggers."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from assignment import services
from assignment.models import AssignmentDecision, LeadTeamMember, Outcome, QueueEntry, RepProfile, RuleCursor, Trigger
from leads.models import Stage
from tests.assignment.conftest import make_rule
from tests.factories import LeadFactory

pytestmark = pytest.mark.django_db


def test_new_lead_gets_an_owner_and_a_decision_record(org, reps):
    make_rule(reps=[org.rep, org.rep2])
    lead = LeadFactory.create()

    result = services.lead_route(lead=lead, trigger=Trigger.NEW)

    lead.refresh_from_db()
    assert lead.owner == org.rep  # first in the rotation (lowest id)
    assert lead.team == org.north  # the owner's team
    record = AssignmentDecision.objects.get(lead=lead)
    assert result.record == record
    assert record.outcome == Outcome.ASSIGNED
    assert record.rule_name == "Default"
    assert record.strategy == "round_robin"
    assert record.winner == org.rep
    assert "First in the rotation of 2 eligible reps" in record.reason
    assert [c["user"] for c in record.candidates] == [org.rep.pk, org.rep2.pk]
    assert RuleCursor.objects.get(rule__name="Default").last_user == org.rep


def test_round_robin_alternates_across_leads(org, reps):
    make_rule(reps=[org.rep, org.rep2])
    owners = []
    for _ in range(4):
        lead = LeadFactory.create()
        services.lead_route(lead=lead, trigger=Trigger.NEW)
        lead.refresh_from_db()
        owners.append(lead.owner)
    assert owners == [org.rep, org.rep2, org.rep, org.rep2]


def test_a_lead_with_an_owner_is_not_rerouted_as_new(org, reps):
    make_rule(reps=[org.rep2])
    lead = LeadFactory.create(owner=org.rep)
    assert services.lead_route(lead=lead, trigger=Trigger.NEW).record is None
    lead.refresh_from_db()
    assert lead.owner == org.rep
    assert not AssignmentDecision.objects.exists()


def test_daily_capacity_counts_todays_assignments(org, reps):
    org.rep.rep_profile.daily_capacity = 1
    services.profile_save(profile=org.rep.rep_profile)
    make_rule(reps=[org.rep, org.rep2], strategy="load_balanced")
    first, second = LeadFactory.create(), LeadFactory.create()
    services.lead_route(lead=first, trigger=Trigger.NEW)
    services.lead_route(lead=second, trigger=Trigger.NEW)
    second.refresh_from_db()
    assert second.owner == org.rep2
    record = AssignmentDecision.objects.get(lead=second)
    excluded = {c["user"]: c["excluded"] for c in record.candidates}
    assert "already received 1 of 1 leads today" in excluded[org.rep.pk]


def test_open_lead_limit_skips_a_full_rep(org, reps):
    org.rep.rep_profile.max_open_leads = 2
    services.profile_save(profile=org.rep.rep_profile)
    LeadFactory.create_batch(2, owner=org.rep)
    LeadFactory.create(owner=org.rep, stage=Stage.CONVERTED)  # closed leads do not count
    make_rule(reps=[org.rep, org.rep2])
    lead = LeadFactory.create()
    services.lead_route(lead=lead, trigger=Trigger.NEW)
    lead.refresh_from_db()
    assert lead.owner == org.rep2


def test_out_of_office_rep_is_skipped(org, reps):
    today = timezone.now().date()
    org.rep.rep_profile.out_of_office = [
        {"start": str(today - timedelta(days=1)), "end": str(today + timedelta(days=2))}
    ]
    services.profile_save(profile=org.rep.rep_profile)
    make_rule(reps=[org.rep, org.rep2])
    lead = LeadFactory.create()
    services.lead_route(lead=lead, trigger=Trigger.NEW)
    lead.refresh_from_db()
    assert lead.owner == org.rep2


def test_nobody_eligible_queues_the_lead_then_drain_assigns_it(org, reps, django_capture_on_commit_callbacks):
    services.availability_set(user=org.rep, available=False)
    make_rule(reps=[org.rep], pool_team=org.north)
    lead = LeadFactory.create(team=org.north)

    services.lead_route(lead=lead, trigger=Trigger.NEW)

    lead.refresh_from_db()
    assert lead.owner is None
    entry = QueueEntry.objects.get(lead=lead)
    assert entry.team == org.north
    queued = AssignmentDecision.objects.get(lead=lead)
    assert queued.outcome == Outcome.QUEUED
    assert "none of its 1 reps can take the lead now" in queued.reason
    assert "switched availability off" in queued.candidates[0]["excluded"]

    # A drain while still unavailable changes nothing and logs nothing new.
    assert services.queue_drain() == 0
    assert AssignmentDecision.objects.filter(lead=lead).count() == 1

    # Switching on drains the queue once committed (the task runs eagerly in tests).
    with django_capture_on_commit_callbacks(execute=True):
        services.availability_set(user=org.rep, available=True)

    lead.refresh_from_db()
    assert lead.owner == org.rep
    assert not QueueEntry.objects.exists()
    latest = AssignmentDecision.objects.filter(lead=lead).first()
    assert latest is not None
    assert (latest.outcome, latest.trigger) == (Outcome.ASSIGNED, Trigger.QUEUE)


def test_no_rule_applies_queues_a_new_lead_with_the_reason(org, reps):
    make_rule(conditions=[{"field": "country", "operator": "equals", "value": "CN"}], reps=[org.rep])
    lead = LeadFactory.create(country="US")
    services.lead_route(lead=lead, trigger=Trigger.NEW)
    record = AssignmentDecision.objects.get(lead=lead)
    assert record.outcome == Outcome.QUEUED
    assert "No enabled rule applies" in record.reason
    assert "country is CN" in record.reason
    assert QueueEntry.objects.filter(lead=lead).exists()


def test_grade_crossing_moves_the_lead_to_a_senior_rep(org, reps):
    org.rep2.rep_profile.tier = "senior"
    services.profile_save(profile=org.rep2.rep_profile)
    make_rule("SQL to seniors", strategy="potential", options={"grades": {"hot": "senior"}}, triggers=["grade_up"])
    lead = LeadFactory.create(owner=org.rep, score=85, grade="hot", stage=Stage.SQL)

    services.lead_route(lead=lead, trigger=Trigger.GRADE_UP)

    lead.refresh_from_db()
    assert lead.owner == org.rep2
    record = AssignmentDecision.objects.get(lead=lead)
    assert record.previous_owner == org.rep
    assert record.trigger == Trigger.GRADE_UP


def test_grade_crossing_without_a_rule_for_it_changes_nothing(org, reps):
    make_rule(reps=[org.rep2])  # new/manual/bulk only
    lead = LeadFactory.create(owner=org.rep, score=85, grade="hot")
    assert services.lead_route(lead=lead, trigger=Trigger.GRADE_UP).record is None
    assert not AssignmentDecision.objects.exists()


def test_pipeline_hook_routes_new_leads_and_crossings(org, reps):
    make_rule(reps=[org.rep])
    lead = LeadFactory.create()
    services.pipeline_hook(lead=lead, result=None, previous_score=0, previous_stage=Stage.NEW)
    lead.refresh_from_db()
    assert lead.owner == org.rep
    # Already owned, no crossing: left alone.
    services.pipeline_hook(lead=lead, result=None, previous_score=0, previous_stage=Stage.NEW)
    assert AssignmentDecision.objects.filter(lead=lead).count() == 1


def test_pipeline_hook_sends_a_lead_becoming_sql_to_a_senior_rep(org, reps):
    senior = RepProfile.objects.get(user=org.rep2)
    senior.tier = "senior"
    services.profile_save(profile=senior)
    make_rule("SQL to seniors", strategy="potential", options={"grades": {"hot": "senior"}}, triggers=["grade_up"])
    lead = LeadFactory.create(owner=org.rep, score=85, grade="hot", stage=Stage.SQL)

    services.pipeline_hook(lead=lead, result=None, previous_score=60, previous_stage=Stage.MQL)

    lead.refresh_from_db()
    assert lead.owner == org.rep2
    # A later event that crosses nothing leaves the lead where it is.
    services.pipeline_hook(lead=lead, result=None, previous_score=85, previous_stage=Stage.SQL)
    assert AssignmentDecision.objects.filter(lead=lead).count() == 1


def test_pipeline_hook_does_nothing_without_rules(org, reps):
    lead = LeadFactory.create()
    services.pipeline_hook(lead=lead, result=None, previous_score=0, previous_stage=Stage.NEW)
    assert not AssignmentDecision.objects.exists()
    assert not QueueEntry.objects.exists()


def test_collaborative_rule_writes_owner_and_supporting_members(org, reps):
    org.rep2.rep_profile.skills = ["presales"]
    services.profile_save(profile=org.rep2.rep_profile)
    make_rule(
        strategy="team",
        reps=[org.rep, org.rep2],
        options={"support": [{"role": "sales_engineer", "skill": "presales"}]},
    )
    lead = LeadFactory.create()
    services.lead_route(lead=lead, trigger=Trigger.NEW)
    members = {(m.user_id, m.role) for m in LeadTeamMember.objects.filter(lead=lead)}
    assert members == {(org.rep.pk, "owner"), (org.rep2.pk, "sales_engineer")}


def test_bulk_reassignment_to_a_person_records_each_lead(org, reps):
    leads = LeadFactory.create_batch(3, owner=org.rep)
    counts = services.leads_reassign(lead_ids=[lead.pk for lead in leads], by=org.manager, owner=org.rep2)
    assert counts == {"assigned": 3, "kept": 0, "queued": 0, "unchanged": 0}
    for lead in leads:
        lead.refresh_from_db()
        assert lead.owner == org.rep2
        record = AssignmentDecision.objects.get(lead=lead)
        assert (record.previous_owner, record.decided_by, record.trigger) == (org.rep, org.manager, Trigger.BULK)


def test_rule_test_decides_without_writing(org, reps):
    make_rule(reps=[org.rep, org.rep2])
    lead = LeadFactory.create()
    decision = services.rule_test(lead=lead, trigger=Trigger.NEW)
    assert decision.winner_id == org.rep.pk
    lead.refresh_from_db()
    assert lead.owner is None
    assert not AssignmentDecision.objects.exists()


def test_candidate_snapshots_are_read_in_a_fixed_number_of_queries(org, reps, django_assert_max_num_queries):
    LeadFactory.create_batch(5, owner=org.rep)
    with django_assert_max_num_queries(1):
        snapshots = services.rep_snapshots(now=timezone.now())
    assert {s.user_id: s.open_leads for s in snapshots}[org.rep.pk] == 5


def test_profile_validation_names_fields(org):
    bad = RepProfile(user=org.rep, time_zone="Mars/Olympus", working_hours={"mon": [["18:00", "09:00"]]})
    with pytest.raises(ValidationError) as caught:
        services.profile_save(profile=bad)
    assert set(caught.value.message_dict) == {"time_zone", "working_hours"}
    assert not RepProfile.objects.exists()
