"""Leads written in the Django admin are normalized and deduplicated like every other entry point."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from leads.models import Interaction, Lead, LeadStageChange
from tests.factories import LeadFactory

pytestmark = pytest.mark.django_db

ADD_URL = "/admin/leads/lead/add/"
INLINE = {  # the read-only stage-history inline's management form
    "stage_changes-TOTAL_FORMS": "0",
    "stage_changes-INITIAL_FORMS": "0",
    "stage_changes-MIN_NUM_FORMS": "0",
    "stage_changes-MAX_NUM_FORMS": "1000",
}


def lead_form(**fields: Any) -> dict[str, Any]:
    return {"name": "", "source": "other", "stage": "new", "attributes": "{}", "interests": "[]", **INLINE, **fields}


def test_a_lead_added_in_the_admin_is_stored_normalized_with_its_history(admin_client: Client) -> None:
    response = admin_client.post(
        ADD_URL, lead_form(name="Ｊｏｈｎ　Ｓｍｉｔｈ", email=" Ann@Example.COM ", phone="138 0013 8000")
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    lead = Lead.objects.get()
    assert (lead.name, lead.email, lead.phone) == ("John Smith", "ann@example.com", "+8613800138000")
    assert lead.created_by is not None
    assert LeadStageChange.objects.filter(lead=lead, to_stage="new").count() == 1


def test_a_bad_phone_or_e_mail_is_a_field_error_and_nothing_is_saved(admin_client: Client) -> None:
    response = admin_client.post(ADD_URL, lead_form(name="Ann", email="not-an-address", phone="12345"))

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert set(errors) == {"email", "phone"}
    assert not Lead.objects.exists()


def test_adding_a_known_person_updates_that_lead_instead_of_making_a_duplicate(admin_client: Client) -> None:
    existing = LeadFactory.create(name="Ann", email="ann@example.com", phone="", company="")

    response = admin_client.post(
        ADD_URL, lead_form(name="Ann Lee", email="ANN@example.com", company="Acme"), follow=True
    )

    assert response.status_code == 200
    assert Lead.objects.count() == 1
    existing.refresh_from_db()
    assert existing.company == "Acme"  # an empty field is filled
    assert existing.name == "Ann"  # a differing one is kept, and the other value goes on the timeline
    assert Interaction.objects.filter(lead=existing, type="field_conflict").exists()
    assert any("updated instead" in str(message) for message in response.context["messages"])


def test_a_stage_change_in_the_admin_is_recorded_in_the_history(admin_client: Client) -> None:
    lead = LeadFactory.create(name="Ann", email="ann@example.com", stage="new")

    response = admin_client.post(
        f"/admin/leads/lead/{lead.pk}/change/",
        lead_form(name="Ann", email=" ANN@example.com", stage="contacted"),
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    lead.refresh_from_db()
    assert (lead.stage, lead.email) == ("contacted", "ann@example.com")
    change = LeadStageChange.objects.get(lead=lead, to_stage="contacted")
    assert change.from_stage == "new"
    assert change.changed_by is not None
