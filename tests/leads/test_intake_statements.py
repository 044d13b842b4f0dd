"""The intake's hand-written SQL: one-statement lead insert, locks taken with the match, prepared statements."""

from __future__ import annotations

import pytest
from django.db import connection, transaction
from pytest_django.fixtures import Settings
from rest_framework.test import APIClient

from leads.models import Interaction, Lead, LeadStageChange, WebForm
from leads.services import lead_create, webform_create
from leads.services.intake import _match
from tests.conftest import Org

URL = "/api/v1/forms/{slug}/submit/"


pytestmark = pytest.mark.usefixtures("fresh_throttles")


@pytest.fixture
def form(org: Org) -> WebForm:
    return webform_create(
        created_by=org.marketing,
        name="Contact us",
        slug="contact",
        field_mapping={"full_name": "name", "mail": "email", "mobile": "phone"},
        default_tags=["website", "inbound"],
        rate_limit_per_minute=100,
    )


def post(data: dict[str, object]):
    return APIClient().post(URL.format(slug="contact"), data, format="json")


@pytest.fixture(params=[True, False], ids=["prepared", "client-bound"])
def prepared(request: pytest.FixtureRequest, settings: Settings) -> bool:
    settings.LEADCRM_DB_PREPARED_STATEMENTS = request.param
    return bool(request.param)


def test_a_new_lead_is_written_whole_with_history_and_tags(form: WebForm, prepared: bool) -> None:
    # when a new person submits, then submits again under another e-mail spelling
    first = post({"full_name": "Zhang Wei", "mail": "Zhang@Example.com", "mobile": "13800138001", "company": "ACME"})
    second = post({"full_name": "Zhang Wei", "mail": "zhang@example.com", "company": "Other"})

    # then one lead exists, exactly as the ORM would have written it
    assert (first.status_code, second.status_code) == (201, 200)
    lead = Lead.objects.get()
    assert first.json()["lead_id"] == second.json()["lead_id"] == lead.pk
    assert (lead.name, lead.email, lead.phone, lead.company) == (
        "Zhang Wei",
        "zhang@example.com",
        "+8613800138001",
        "ACME",
    )
    assert lead.stage == "new"
    assert lead.created_by is None
    assert lead.updated_at is not None
    assert lead.search_text == "zhang wei zhang@example.com +8613800138001 acme"
    # with its first stage-history row and the form's tags
    history = list(LeadStageChange.objects.filter(lead=lead).values_list("from_stage", "to_stage", "changed_by"))
    assert history == [("", "new", None)]
    assert sorted(lead.tags.values_list("name", flat=True)) == ["inbound", "website"]
    # and the repeat kept the first company and recorded the other one as a conflict
    conflict = Interaction.objects.get(lead=lead, type="field_conflict")
    assert conflict.properties["received"] == "Other"


def test_a_lead_created_by_a_user_records_who_created_it(org: Org, prepared: bool) -> None:
    lead = lead_create(created_by=org.manager, name="Li Na", email="li@example.com", tags=["vip"])

    stored = Lead.objects.get(pk=lead.pk)
    assert stored.created_by == org.manager
    assert stored.search_text == "li na li@example.com  "
    change = LeadStageChange.objects.get(lead=lead)
    assert (change.to_stage, change.changed_by) == ("new", org.manager)
    assert change.changed_at == stored.created_at
    assert list(stored.tags.values_list("name", flat=True)) == ["vip"]


@pytest.mark.postgres
def test_the_match_holds_the_persons_advisory_locks_until_the_transaction_ends(db: None, prepared: bool) -> None:
    with transaction.atomic():
        _match(email="lock@example.com", phone="+8613800138002", lock=True, identity_lock=True)
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND granted"
            )
            (held,) = cursor.fetchone()
    # one lock per key (e-mail and phone): a concurrent submission of this person waits for this one
    assert held == 2


@pytest.mark.postgres
def test_hot_statements_are_prepared_once_per_connection_unless_turned_off(form: WebForm, prepared: bool) -> None:
    for i in range(3):
        assert post({"full_name": f"P {i}", "mail": f"p{i}@example.com"}).status_code == 201

    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements WHERE statement LIKE '%%leads_lead%%'")
        statements = [row[0] for row in cursor.fetchall()]
    if prepared:
        assert any("WITH new_lead AS" in s for s in statements)
        assert any('"merged_into_id" IS NULL' in s for s in statements)
    else:
        assert statements == []
