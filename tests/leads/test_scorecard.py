"""Every lead has exactly one score card (leads.LeadScore), however the lead was written."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from leads.models import Lead, LeadScore
from tests.factories import LeadFactory

pytestmark = pytest.mark.django_db


def test_a_lead_saved_through_the_orm_gets_a_default_card() -> None:
    lead = Lead.objects.create(name="王伟", email="ww@example.com")

    card = LeadScore.objects.get(lead=lead)
    assert (card.score, card.grade, card.score_updated_at, card.conversion_probability) == (0, "", None, None)
    assert card.priority == 0
    assert Lead.objects.get(pk=lead.pk).score == 0


def test_bulk_created_and_raw_sql_leads_get_one_card_each() -> None:
    now = timezone.now()
    bulk = Lead.objects.bulk_create([Lead(name=f"Bulk {i}", created_at=now, last_activity_at=now) for i in range(25)])
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO leads_lead (name, email, phone, company, job_title, website, industry, company_size, country,"
            " region, city, interests, attributes, source, utm_source, utm_medium, utm_campaign, utm_term,"
            " utm_content, stage, lost_reason, last_activity_at, do_not_contact, created_at, updated_at)"
            " VALUES ('Raw', '', '', '', '', '', '', '', '', '', '', '[]', '{}', 'other', '', '', '', '', '', 'new',"
            " '', %s, %s, %s, %s)",
            [now, False, now, now],
        )
    ids = {lead.pk for lead in bulk} | set(Lead.objects.filter(name="Raw").values_list("pk", flat=True))

    assert len(ids) == 26
    assert set(LeadScore.objects.filter(lead_id__in=ids).values_list("lead_id", flat=True)) == ids


def test_the_card_goes_with_its_lead() -> None:
    kept, gone = LeadFactory.create(score=40), LeadFactory.create(score=70)

    gone.delete()

    assert list(LeadScore.objects.values_list("lead_id", "score")) == [(kept.pk, 40)]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the database-level cascade is PostgreSQL's")
def test_a_raw_delete_of_a_lead_deletes_its_card_in_the_database() -> None:
    lead = LeadFactory.create(score=55)
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM leads_lead WHERE id = %s", [lead.pk])

    assert not LeadScore.objects.filter(lead_id=lead.pk).exists()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="constraints read from PostgreSQL's catalogue")
def test_a_card_insert_is_checked_once_per_statement_not_by_a_row_level_key() -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_constraint WHERE conrelid = 'leads_leadscore'::regclass AND contype = 'f'"
        )
        (row_keys,) = cursor.fetchone()

    assert row_keys == 0  # the set-checked key (common/setfk.py) replaces it
    with pytest.raises(IntegrityError, match="leads_leadscore_lead_id_fk"):
        _insert_card(lead_id=987654321)  # no such lead


def _insert_card(*, lead_id: int) -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("INSERT INTO leads_leadscore (lead_id, score, grade) VALUES (%s, 0, '')", [lead_id])


def test_priority_is_score_plus_the_probability_in_points() -> None:
    lead = LeadFactory.create(score=50, conversion_probability=0.25)
    unscored = LeadFactory.create(score=50)

    assert LeadScore.objects.get(lead=lead).priority == pytest.approx(75.0)
    # No model yet: the score stands in for the probability, so the order is the score order.
    assert LeadScore.objects.get(lead=unscored).priority == pytest.approx(100.0)
