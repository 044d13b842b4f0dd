"""Deduplicating intake: one person is one lead, whichever entry point they come through."""

from __future__ import annotations

import threading

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from leads.models import Interaction, Lead, SourceChannel
from leads.services import lead_find_match, lead_upsert
from tests.conftest import Org
from tests.factories import LeadFactory


def test_upsert_creates_a_new_lead_with_normalized_contact(org: Org) -> None:
    # when a new person arrives with a messy e-mail and a local phone number
    lead, created = lead_upsert(
        source_label="api",
        created_by=org.marketing,
        name=" 王伟 ",
        email=" Wang.Wei@Example.COM ",
        phone="138 0013 8000",
    )

    # then one lead exists with normalized contact data
    assert created is True
    assert (lead.name, lead.email, lead.phone) == ("王伟", "wang.wei@example.com", "+8613800138000")


def test_upsert_matching_email_fills_empty_fields_and_keeps_conflicts_on_the_timeline(org: Org) -> None:
    # given a lead with a company but no job title
    existing = LeadFactory.create(name="Ada", email="ada@example.com", company="Analytical", job_title="", phone="")

    # when the same person arrives again with a job title, a phone and a different company
    lead, created = lead_upsert(
        source_label="form:contact",
        created_by=None,
        name="Ada Lovelace",
        email="ADA@example.com",
        phone="+86 138 0013 8001",
        company="Engines Ltd",
        job_title="CTO",
        tags=["webinar"],
    )

    # then the existing lead is updated: empty fields filled, nothing overwritten, tags added
    assert created is False
    assert lead.pk == existing.pk
    assert Lead.objects.count() == 1
    existing.refresh_from_db()
    assert existing.job_title == "CTO"
    assert existing.phone == "+8613800138001"
    assert existing.company == "Analytical"
    assert existing.name == "Ada"
    assert list(existing.tags.values_list("name", flat=True)) == ["webinar"]
    # and each differing value is kept on the timeline
    conflicts = {i.properties["field"]: i.properties for i in Interaction.objects.filter(type="field_conflict")}
    assert conflicts["company"] == {
        "field": "company",
        "kept": "Analytical",
        "received": "Engines Ltd",
        "source": "form:contact",
    }
    assert conflicts["name"]["received"] == "Ada Lovelace"


def test_email_match_wins_over_phone_match_and_merged_leads_are_ignored(org: Org) -> None:
    # given one lead with the phone, another with the e-mail, and a merged lead with both
    by_phone = LeadFactory.create(email="", phone="+8613800138002")
    by_email = LeadFactory.create(email="bo@example.com", phone="")
    LeadFactory.create(email="bo@example.com", phone="+8613800138002", merged_into=by_email)

    # then the e-mail match wins, and the phone alone finds the phone's lead
    assert lead_find_match(email="bo@example.com", phone="+8613800138002") == by_email
    assert lead_find_match(email="", phone="+8613800138002") == by_phone
    assert lead_find_match(email="nobody@example.com", phone="") is None


@pytest.mark.parametrize(
    ("fields", "bad_field"),
    [
        ({"name": "X", "email": "not-an-email"}, "email"),
        ({"name": "X", "phone": "12"}, "phone"),
        ({"name": "", "email": "new@example.com"}, "name"),
        ({"name": "X" * 201, "email": "long@example.com"}, "name"),
    ],
)
def test_upsert_rejects_bad_input_per_field_and_writes_nothing(
    org: Org, fields: dict[str, str], bad_field: str
) -> None:
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as info:
        lead_upsert(source_label="api", created_by=org.marketing, **fields)

    assert bad_field in info.value.message_dict
    assert Lead.objects.count() == 0


def test_a_rejected_upsert_leaves_the_callers_transaction_usable(org: Org) -> None:
    from django.core.exceptions import ValidationError
    from django.db import transaction

    # given a caller that wrote a lead in its own transaction
    with transaction.atomic():
        lead_upsert(source_label="api", created_by=None, name="Kept", email="kept@example.com")

        # when an upsert inside it fails validation
        with pytest.raises(ValidationError):
            lead_upsert(source_label="api", created_by=None, name="X" * 201, email="bad-name@example.com")

        # then the caller carries on, and only the failed upsert was undone
        lead_upsert(source_label="api", created_by=None, name="After", email="after@example.com")

    assert sorted(Lead.objects.values_list("email", flat=True)) == ["after@example.com", "kept@example.com"]


def test_api_create_answers_201_then_200_for_the_same_person(org: Org, client_for) -> None:
    client = client_for(org.marketing)
    first = client.post("/api/v1/leads/", {"name": "李娜", "phone": "13800138003"}, format="json")
    second = client.post(
        "/api/v1/leads/", {"name": "李娜", "phone": "+86 138-0013-8003", "company": "某某科技"}, format="json"
    )

    assert first.status_code == 201
    assert second.status_code == 200
    assert second.json()["id"] == first.json()["id"]
    assert second.json()["company"] == "某某科技"
    assert Lead.objects.count() == 1


def test_api_create_matching_an_invisible_lead_does_not_reveal_it(org: Org, client_for) -> None:
    # given a lead of the South team
    LeadFactory.create(name="Secret Southern", email="south@example.com", owner=org.rep_south, team=org.south)

    # when a North rep enters the same person
    response = client_for(org.rep).post(
        "/api/v1/leads/", {"name": "Guess", "email": "south@example.com"}, format="json"
    )

    # then they learn it exists elsewhere but not what it holds
    assert response.status_code == 200
    assert response.json()["id"] is None
    assert "Secret Southern" not in response.content.decode()
    assert Lead.objects.count() == 1


def test_lead_create_page_redirects_to_the_matched_lead_with_a_message(org: Org) -> None:
    existing = LeadFactory.create(name="Ada", email="ada@example.com")
    client = Client()
    client.force_login(org.marketing)

    response = client.post(
        reverse("leads:create"),
        {"name": "Ada L.", "email": "ada@EXAMPLE.com", "phone": "", "source": SourceChannel.WEB_FORM, "tags": ""},
        follow=True,
    )

    assert response.redirect_chain[-1][0] == reverse("leads:detail", kwargs={"lead_id": existing.pk})
    assert "matched an existing lead" in response.content.decode()
    assert Lead.objects.count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_submissions_of_one_person_make_one_lead() -> None:
    # given eight requests for the same person released at the same moment
    barrier = threading.Barrier(8)
    results: list[bool] = []
    errors: list[BaseException] = []

    def submit(n: int) -> None:
        try:
            barrier.wait()
            # Alternate e-mail-only, phone-only and both: every path must find the same person.
            fields = [
                {"email": "race@example.com", "phone": "+8613800138009"},
                {"email": "race@example.com"},
                {"email": "race@example.com", "phone": "+8613800138009"},
            ][n % 3]
            _lead, created = lead_upsert(source_label="api", created_by=None, name=f"Racer {n}", **fields)
            results.append(created)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=submit, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # then exactly one lead was created and the others matched it
    assert errors == []
    assert results.count(True) == 1
    assert Lead.objects.filter(email="race@example.com").count() == 1
