"""The per-rep fairness and feedback view: received vs capacity, score sum, conversion, speed to first touch."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from assignment import services
from assignment.models import RepProfile, Trigger
from leads.models import Lead, Stage
from tests.assignment.conftest import make_rule
from tests.factories import LeadFactory

pytestmark = pytest.mark.django_db
URL = "/api/v1/assignment/reps/stats/"


def test_stats_show_received_capacity_scores_conversion_and_touch_speed(org, reps, client_for):
    capped = RepProfile.objects.get(user=org.rep)
    capped.daily_capacity = 10
    services.profile_save(profile=capped)
    make_rule(reps=[org.rep, org.rep2])
    start = timezone.now() - timedelta(hours=2)
    leads = [LeadFactory.create(score=score) for score in (90, 10, 70)]
    for lead in leads:  # rep, rep2, rep
        services.lead_route(lead=lead, trigger=Trigger.NEW, now=start)
    # rep contacts the first lead 30 minutes after it arrived and later wins it; rep2 loses theirs.
    Lead.objects.filter(pk=leads[0].pk).update(first_contacted_at=start + timedelta(minutes=30), stage=Stage.CONVERTED)
    Lead.objects.filter(pk=leads[1].pk).update(stage=Stage.LOST)

    response = client_for(org.manager).get(URL, {"days": 7})

    assert response.status_code == 200
    rows = {row["user"]["id"]: row for row in response.json()}
    assert set(rows) == {org.rep.pk, org.rep2.pk}  # the manager's team only
    rep, rep2 = rows[org.rep.pk], rows[org.rep2.pk]
    assert (rep["received"], rep["capacity"], rep["score_sum"]) == (2, 70, 160)
    assert (rep2["received"], rep2["capacity"], rep2["score_sum"]) == (1, None, 10)
    assert (rep["won"], rep["lost"], rep["open_leads"], rep["conversion_rate"]) == (1, 0, 1, 1.0)
    assert rep2["conversion_rate"] == 0.0
    assert rep["minutes_to_first_touch"] == 30.0
    assert rep2["minutes_to_first_touch"] is None


def test_reps_cannot_read_the_stats(org, reps, client_for):
    assert client_for(org.rep).get(URL).status_code == 403
