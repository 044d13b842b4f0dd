"""``/api/v1/scoring/rule-sets/``: copy, edit a draft, preview, apply; who may; applied versions stay as they were."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from rest_framework.test import APIClient

from leads import services as lead_services
from leads.models import Lead
from scoring.models import RescoreJob, ScoringRuleSet
from tests.conftest import Org
from tests.factories import InteractionFactory, LeadFactory
from users.models import User

ClientFor = Callable[[User], APIClient]
BASE = "/api/v1/scoring/rule-sets/"


def active() -> ScoringRuleSet:
    return ScoringRuleSet.objects.get(is_active=True)


def draft_for(client: APIClient) -> dict[str, Any]:
    response = client.post(f"{BASE}{active().pk}/copy/")
    assert response.status_code == 201, response.content
    return response.json()


@pytest.mark.parametrize("who", ["marketing", "manager", "admin"])
def test_marketing_and_managers_copy_and_edit_a_draft(org: Org, client_for: ClientFor, who: str) -> None:
    client = client_for(getattr(org, who))
    draft = draft_for(client)
    assert draft["editable"] is True
    assert not draft["is_active"]
    assert draft["version"] == active().version + 1
    assert len(draft["rules"]) == active().rules.count()

    added = client.post(
        f"{BASE}{draft['id']}/rules/",
        {
            "name": "Pricing page",
            "kind": "behaviour",
            "points": 6,
            "cap": 18,
            "event_type": "page_view",
            "event_filters": [{"path": "url", "operator": "contains", "value": "/pricing"}],
        },
        format="json",
    )
    assert added.status_code == 201, added.content
    changed = client.patch(f"{BASE}{draft['id']}/rules/{added.json()['id']}/", {"points": 7}, format="json")
    assert changed.json()["points"] == 7
    assert client.patch(f"{BASE}{draft['id']}/", {"mql_threshold": 40}, format="json").json()["mql_threshold"] == 40


def test_a_rep_may_not_read_or_change_scoring_rules(org: Org, client_for: ClientFor) -> None:
    client = client_for(org.rep)
    assert client.get(BASE).status_code == 403
    assert client.post(f"{BASE}{active().pk}/copy/").status_code == 403


def test_errors_are_field_level_and_change_nothing(org: Org, client_for: ClientFor) -> None:
    client = client_for(org.manager)
    draft = draft_for(client)
    before = ScoringRuleSet.objects.get(pk=draft["id"]).rules.count()

    bad_rule = client.post(
        f"{BASE}{draft['id']}/rules/",
        {"kind": "fit", "points": 5, "field": "no_such_field", "operator": "regex", "value": "("},
        format="json",
    )
    bad_negative = client.post(
        f"{BASE}{draft['id']}/rules/", {"kind": "negative", "points": 5, "event_type": "unsubscribe"}, format="json"
    )
    bad_thresholds = client.patch(f"{BASE}{draft['id']}/", {"mql_threshold": 90, "sql_threshold": 80}, format="json")
    bad_bands = client.put(f"{BASE}{draft['id']}/bands/", {"bands": [{"key": "hot", "min_score": 80}]}, format="json")

    assert bad_rule.status_code == 400
    assert set(bad_rule.json()) >= {"field", "value"}
    assert bad_negative.status_code == 400
    assert "points" in bad_negative.json()
    assert bad_thresholds.status_code == 400
    assert "sql_threshold" in bad_thresholds.json()
    assert bad_bands.status_code == 400
    assert "bands" in bad_bands.json()
    assert ScoringRuleSet.objects.get(pk=draft["id"]).rules.count() == before
    assert ScoringRuleSet.objects.get(pk=draft["id"]).mql_threshold == 50


def test_the_active_version_cannot_be_edited(org: Org, client_for: ClientFor) -> None:
    client = client_for(org.manager)
    rule = active().rules.first()
    assert rule is not None
    response = client.patch(f"{BASE}{active().pk}/rules/{rule.pk}/", {"points": 99}, format="json")
    assert response.status_code == 400
    assert "rule_set" in response.json()
    rule.refresh_from_db()
    assert rule.points != 99


def test_preview_then_apply_through_the_api_rescore_every_lead(
    org: Org, client_for: ClientFor, django_capture_on_commit_callbacks: Any
) -> None:
    lead = LeadFactory.create(owner=org.rep, team=org.north)
    InteractionFactory.create(lead=lead, type="page_view", properties={"url": "/pricing"})
    InteractionFactory.create(lead=lead, type="page_view", properties={"url": "/pricing/enterprise"})
    lead_services.leads_mark_dirty(lead_ids=[lead.pk])
    lead_services.pipeline_process_dirty()
    lead.refresh_from_db()
    client = client_for(org.marketing)
    draft = draft_for(client)
    client.post(
        f"{BASE}{draft['id']}/rules/",
        {
            "name": "Pricing page",
            "kind": "behaviour",
            "points": 6,
            "event_type": "page_view",
            "event_filters": [{"path": "url", "operator": "contains", "value": "/pricing"}],
        },
        format="json",
    )

    # The tasks run eagerly once the request's transaction commits.
    # Applying before a preview is refused: nobody rescores every lead without having seen the effect.
    refused = client.post(f"{BASE}{draft['id']}/apply/")
    assert refused.status_code == 400
    assert "Preview this version first" in refused.json()["rule_set"][0]

    with django_capture_on_commit_callbacks(execute=True):
        preview = client.post(f"{BASE}{draft['id']}/preview/")
    assert preview.status_code == 202
    job = client.get(f"/api/v1/scoring/rescore-jobs/{preview.json()['id']}/").json()
    assert job["status"] == "done"
    assert job["percent"] == 100
    assert job["changed_scores"] == 1
    assert Lead.objects.get(pk=lead.pk).score == lead.score  # a preview writes nothing

    with django_capture_on_commit_callbacks(execute=True):
        applied = client.post(f"{BASE}{draft['id']}/apply/")
    assert applied.status_code == 202
    assert RescoreJob.objects.get(pk=applied.json()["id"]).changed_scores == 1
    assert Lead.objects.get(pk=lead.pk).score == lead.score + 12
    assert client.get(f"{BASE}{draft['id']}/").json()["is_active"] is True

    # The lead's breakdown after a bulk rescore still reads in words.
    body = client_for(org.rep).get(f"/api/v1/leads/{lead.pk}/score/").json()
    assert "+12 Pricing page ×2" in [item["reason"] for item in body["breakdown"]]
    # And the applied version is now read-only.
    assert client.patch(f"{BASE}{draft['id']}/", {"name": "x"}, format="json").status_code == 400
