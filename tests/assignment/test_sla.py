"""First-touch deadlines: counted in working time, touched in time, breach → manager told and lead reassigned."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from django.utils import timezone

from assignment import services
from assignment.models import AssignmentDecision, Notification, SlaClock, SlaPolicy, Trigger
from assignment.rules import RepSnapshot
from assignment.rules.availability import add_working_minutes
from leads import services as lead_services
from tests.assignment.conftest import make_rule
from tests.factories import LeadFactory

OFFICE = {day: [["09:00", "18:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}
SHANGHAI = RepSnapshot(user_id=1, name="rep", time_zone="Asia/Shanghai", working_hours=OFFICE)


def test_deadline_runs_only_in_working_hours_and_skips_the_weekend():
    friday_late = datetime(2026, 11, 27, 9, 50, tzinfo=UTC)  # 17:50 in Shanghai
    due = add_working_minutes(SHANGHAI, friday_late, 15)
    assert due == datetime(2026, 11, 30, 1, 5, tzinfo=UTC)  # Monday 09:05 in Shanghai


def test_deadline_skips_out_of_office_days_and_starts_at_opening_time():
    away_monday = RepSnapshot(
        user_id=1,
        name="rep",
        time_zone="Asia/Shanghai",
        working_hours=OFFICE,
        out_of_office=((date(2026, 11, 30), date(2026, 11, 30)),),
    )
    sunday = datetime(2026, 11, 29, 4, 0, tzinfo=UTC)
    assert add_working_minutes(away_monday, sunday, 240) == datetime(2026, 12, 1, 5, 0, tzinfo=UTC)  # Tue 13:00


def test_no_working_hours_means_plain_minutes():
    start = datetime(2026, 11, 29, 4, 0, tzinfo=UTC)
    assert add_working_minutes(RepSnapshot(user_id=1, name="rep"), start, 15) == start + timedelta(minutes=15)


@pytest.fixture
def hot_rule(org, reps):
    SlaPolicy.objects.create(grade="hot", minutes=15)
    return make_rule(reps=[org.rep, org.rep2], options={"sla_reassign": True})


@pytest.mark.django_db
def test_owner_is_told_and_a_clock_starts(org, hot_rule):
    start = timezone.now()
    lead = LeadFactory.create(grade="hot", name="Acme buyer")
    services.lead_route(lead=lead, trigger=Trigger.NEW, now=start)
    clock = SlaClock.objects.get(lead=lead)
    assert (clock.owner, clock.due_at) == (org.rep, start + timedelta(minutes=15))
    notice = Notification.objects.get(user=org.rep)
    assert notice.kind == "new_lead"
    assert "Acme buyer" in notice.message
    assert "First touch due by" in notice.message


@pytest.mark.django_db
def test_breach_notifies_the_manager_and_reassigns_to_the_next_rep(
    org, hot_rule, mailoutbox, django_capture_on_commit_callbacks
):
    org.manager.email = "boss@example.com"
    org.manager.save(update_fields=["email"])
    start = timezone.now()
    lead = LeadFactory.create(grade="hot", name="Acme buyer")
    services.lead_route(lead=lead, trigger=Trigger.NEW, now=start)

    assert services.sla_check(now=start + timedelta(minutes=14))["breached"] == 0  # not due yet
    with django_capture_on_commit_callbacks(execute=True):
        counts = services.sla_check(now=start + timedelta(minutes=16))

    assert counts == {"touched": 0, "breached": 1, "reassigned": 1, "dropped": 0}
    lead.refresh_from_db()
    assert lead.owner == org.rep2
    record = AssignmentDecision.objects.filter(lead=lead).first()
    assert record is not None
    assert (record.trigger, record.previous_owner, record.winner) == (Trigger.SLA, org.rep, org.rep2)
    assert "missed this lead's first-touch deadline" in record.candidates[0]["excluded"]
    breach = Notification.objects.get(user=org.manager)
    assert "rep missed the first-touch deadline" in breach.message
    assert [mail.to for mail in mailoutbox] == [["boss@example.com"]]
    # The new owner has a clock of their own.
    assert SlaClock.objects.get(lead=lead).owner == org.rep2


@pytest.mark.django_db
def test_a_call_by_the_owner_in_time_is_not_a_breach(org, hot_rule):
    start = timezone.now() - timedelta(minutes=5)
    lead = LeadFactory.create(grade="hot")
    services.lead_route(lead=lead, trigger=Trigger.NEW, now=start)
    lead.refresh_from_db()
    lead_services.activity_log(lead=lead, kind="call", by=org.rep)

    counts = services.sla_check(now=start + timedelta(minutes=16))

    assert counts["touched"] == 1
    assert counts["breached"] == 0
    lead.refresh_from_db()
    assert lead.owner == org.rep
    assert not Notification.objects.filter(user=org.manager).exists()


@pytest.mark.django_db
def test_without_sla_reassign_a_breach_only_notifies(org, reps):
    SlaPolicy.objects.create(grade="hot", minutes=15)
    make_rule(reps=[org.rep, org.rep2])
    start = timezone.now()
    lead = LeadFactory.create(grade="hot")
    services.lead_route(lead=lead, trigger=Trigger.NEW, now=start)
    counts = services.sla_check(now=start + timedelta(minutes=16))
    assert (counts["breached"], counts["reassigned"]) == (1, 0)
    lead.refresh_from_db()
    assert lead.owner == org.rep


@pytest.mark.django_db
def test_notifications_api_lists_only_my_notices(org, hot_rule, client_for):
    lead = LeadFactory.create(grade="hot")
    services.lead_route(lead=lead, trigger=Trigger.NEW)
    mine = client_for(org.rep).get("/api/v1/assignment/notifications/").json()
    assert [n["kind"] for n in mine] == ["new_lead"]
    assert client_for(org.rep2).get("/api/v1/assignment/notifications/").json() == []
    read = client_for(org.rep).post(f"/api/v1/assignment/notifications/{mine[0]['id']}/read/")
    assert read.json()["read_at"] is not None
    assert client_for(org.rep2).post(f"/api/v1/assignment/notifications/{mine[0]['id']}/read/").status_code == 404
