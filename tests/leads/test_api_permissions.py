"""Who may list, read, change and delete which lead through /api/v1/leads/."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from rest_framework.test import APIClient

from leads.models import Lead
from tests.conftest import Org
from tests.factories import LeadFactory
from tests.leads.conftest import KINDS, OWN, POOL, TEAMMATE, LeadSet
from users.models import User

LIST_URL = "/api/v1/leads/"
ROLES = ("rep", "manager", "marketing", "admin")

# The kinds of lead each role can see; everything else answers 404 as if it did not exist.
VISIBLE = {
    "rep": {OWN, POOL},
    "manager": {OWN, TEAMMATE, POOL},
    "marketing": set(KINDS),
    "admin": set(KINDS),
}
CAN_DELETE = {"rep": False, "manager": True, "marketing": True, "admin": True}

MATRIX = [(role, kind) for role in ROLES for kind in KINDS]


def detail_url(lead: Lead) -> str:
    return f"{LIST_URL}{lead.pk}/"


@pytest.mark.parametrize("role", ROLES)
def test_list_shows_exactly_the_leads_the_role_may_see(
    org: Org, leads_for: Callable[[User], LeadSet], client_for: Callable[[User], APIClient], role: str
) -> None:
    user = getattr(org, role)
    leads = leads_for(user)

    response = client_for(user).get(LIST_URL)

    assert response.status_code == 200
    assert {row["id"] for row in response.json()["results"]} == {leads[kind].pk for kind in VISIBLE[role]}


@pytest.mark.parametrize(("role", "kind"), MATRIX)
def test_retrieve_answers_404_without_the_name_for_invisible_leads(
    org: Org, leads_for: Callable[[User], LeadSet], client_for: Callable[[User], APIClient], role: str, kind: str
) -> None:
    user = getattr(org, role)
    lead = leads_for(user)[kind]

    response = client_for(user).get(detail_url(lead))

    if kind in VISIBLE[role]:
        assert response.status_code == 200
        assert response.json()["name"] == lead.name
    else:
        assert response.status_code == 404
        assert response["Content-Type"].startswith("application/json")
        assert lead.name not in response.content.decode()


@pytest.mark.parametrize(("role", "kind"), MATRIX)
def test_update_succeeds_on_visible_leads_and_404s_on_the_rest(
    org: Org, leads_for: Callable[[User], LeadSet], client_for: Callable[[User], APIClient], role: str, kind: str
) -> None:
    user = getattr(org, role)
    lead = leads_for(user)[kind]

    response = client_for(user).patch(detail_url(lead), {"company": "Renamed Co"})

    lead.refresh_from_db()
    if kind in VISIBLE[role]:
        assert response.status_code == 200, response.json()
        assert response.json()["company"] == "Renamed Co"
        assert lead.company == "Renamed Co"
    else:
        assert response.status_code == 404
        assert lead.name not in response.content.decode()
        assert lead.company != "Renamed Co"


@pytest.mark.parametrize(("role", "kind"), MATRIX)
def test_delete_by_role_and_kind(
    org: Org, leads_for: Callable[[User], LeadSet], client_for: Callable[[User], APIClient], role: str, kind: str
) -> None:
    user = getattr(org, role)
    lead = leads_for(user)[kind]

    response = client_for(user).delete(detail_url(lead))

    if kind not in VISIBLE[role]:
        # An invisible lead must look exactly like a missing one, whatever the verb.
        assert response.status_code == 404
        assert lead.name not in response.content.decode()
        assert Lead.objects.filter(pk=lead.pk).exists()
    elif CAN_DELETE[role]:
        assert response.status_code == 204
        assert not Lead.objects.filter(pk=lead.pk).exists()
    else:
        assert response.status_code == 403
        assert "detail" in response.json()
        assert Lead.objects.filter(pk=lead.pk).exists()


def test_delete_of_a_missing_lead_answers_like_an_invisible_one(
    org: Org, client_for: Callable[[User], APIClient]
) -> None:
    # A rep must not learn whether an id exists: missing and invisible both answer 404.
    response = client_for(org.rep).delete(f"{LIST_URL}999999/")

    assert response.status_code == 404


@pytest.mark.parametrize("kind", [OWN, POOL])
def test_rep_cannot_hand_a_lead_to_someone_else(
    org: Org, leads_for: Callable[[User], LeadSet], client_for: Callable[[User], APIClient], kind: str
) -> None:
    lead = leads_for(org.rep)[kind]
    owner_before = lead.owner_id

    response = client_for(org.rep).patch(detail_url(lead), {"owner": org.rep2.pk})

    assert response.status_code == 400
    assert "owner" in response.json()
    lead.refresh_from_db()
    assert lead.owner_id == owner_before


def test_rep_cannot_create_a_lead_owned_by_someone_else(org: Org, client_for: Callable[[User], APIClient]) -> None:
    response = client_for(org.rep).post(LIST_URL, {"name": "Gift Lead", "owner": org.rep2.pk})

    assert response.status_code == 400
    assert "owner" in response.json()
    assert not Lead.objects.filter(name="Gift Lead").exists()


def test_rep_takes_a_pool_lead_and_keeps_seeing_it(
    org: Org, leads_for: Callable[[User], LeadSet], client_for: Callable[[User], APIClient]
) -> None:
    lead = leads_for(org.rep)[POOL]
    client = client_for(org.rep)

    response = client.patch(detail_url(lead), {"owner": org.rep.pk})

    assert response.status_code == 200
    assert response.json()["owner"] == org.rep.pk
    assert response.json()["team"] == org.north.pk
    # The teammate no longer sees it in the pool; the rep still does.
    assert client_for(org.rep2).get(detail_url(lead)).status_code == 404
    assert client.get(detail_url(lead)).status_code == 200


def test_rep_can_return_an_own_lead_to_the_pool(
    org: Org, leads_for: Callable[[User], LeadSet], client_for: Callable[[User], APIClient]
) -> None:
    lead = leads_for(org.rep)[OWN]

    response = client_for(org.rep).patch(detail_url(lead), {"owner": None})

    assert response.status_code == 200
    assert response.json()["owner"] is None
    # Back in North's pool, where the whole team sees it.
    assert client_for(org.rep2).get(detail_url(lead)).status_code == 200


def test_manager_assigns_within_the_team_but_not_outside(
    org: Org, leads_for: Callable[[User], LeadSet], client_for: Callable[[User], APIClient]
) -> None:
    lead = leads_for(org.manager)[POOL]
    client = client_for(org.manager)

    outside = client.patch(detail_url(lead), {"owner": org.rep_south.pk})
    inside = client.patch(detail_url(lead), {"owner": org.rep2.pk})

    assert outside.status_code == 400
    assert "owner" in outside.json()
    assert inside.status_code == 200
    assert inside.json()["owner"] == org.rep2.pk
    assert client_for(org.rep2).get(detail_url(lead)).status_code == 200


@pytest.mark.parametrize("actor", ["rep", "manager"])
def test_reps_and_managers_cannot_push_a_lead_into_another_teams_pool(
    org: Org, leads_for: Callable[[User], LeadSet], client_for: Callable[[User], APIClient], actor: str
) -> None:
    user = getattr(org, actor)
    lead = leads_for(user)[POOL]

    response = client_for(user).patch(detail_url(lead), {"team": org.south.pk})

    assert response.status_code == 400
    assert "team" in response.json()
    lead.refresh_from_db()
    assert lead.team_id == org.north.pk
    assert client_for(org.rep_south).get(detail_url(lead)).status_code == 404


def test_rep_cannot_create_a_lead_in_another_teams_pool(org: Org, client_for: Callable[[User], APIClient]) -> None:
    response = client_for(org.rep).post("/api/v1/leads/", {"name": "Stray", "owner": None, "team": org.south.pk})

    assert response.status_code == 400
    assert "team" in response.json()
    assert not Lead.objects.filter(name="Stray").exists()


@pytest.mark.parametrize("role", ["marketing", "admin"])
def test_marketing_and_admin_assign_to_anyone(
    org: Org, leads_for: Callable[[User], LeadSet], client_for: Callable[[User], APIClient], role: str
) -> None:
    lead = leads_for(getattr(org, role))[POOL]

    response = client_for(getattr(org, role)).patch(detail_url(lead), {"owner": org.rep_south.pk})

    assert response.status_code == 200
    assert response.json()["owner"] == org.rep_south.pk
    assert response.json()["team"] == org.south.pk
    assert client_for(org.rep_south).get(detail_url(lead)).status_code == 200


def test_user_without_a_role_sees_nothing(org: Org, client_for: Callable[[User], APIClient]) -> None:
    LeadFactory.create(name="Anybody's Lead", team=org.north)
    nobody = User.objects.create_user(username="nobody", password="pw-for-tests-1")

    response = client_for(nobody).get(LIST_URL)

    assert response.status_code == 403
    assert "Anybody's Lead" not in response.content.decode()


@pytest.mark.parametrize(
    ("method", "path_kind", "body"),
    [
        ("get", "list", None),
        ("post", "list", {"name": "Anonymous Lead"}),
        ("get", "detail", None),
        ("patch", "detail", {"company": "Hijacked"}),
        ("put", "detail", {"name": "Hijacked"}),
        ("delete", "detail", None),
    ],
)
def test_unauthenticated_requests_are_refused_with_json(
    org: Org, api_client: APIClient, method: str, path_kind: str, body: dict[str, str] | None
) -> None:
    lead = LeadFactory.create(name="Guarded Lead", company="Guarded Co", team=org.north)
    url = LIST_URL if path_kind == "list" else detail_url(lead)

    response = getattr(api_client, method)(url, body)

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Api-Key"
    assert response["Content-Type"].startswith("application/json")
    assert "detail" in response.json()
    assert "Guarded Lead" not in response.content.decode()
    lead.refresh_from_db()
    assert lead.company == "Guarded Co"
    assert Lead.objects.count() == 1
