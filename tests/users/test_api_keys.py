"""Machine access with ``Authorization: Api-Key <key>``: keys from the command, revoked, expired, hashed."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone
from rest_framework.test import APIClient

from leads.models import Lead
from tests.conftest import Org
from tests.factories import LeadFactory
from users.models import User, UserAPIKey
from users.services import api_key_revoke

LIST_URL = "/api/v1/leads/"


def create_key(username: str, name: str = "integration") -> str:
    out = StringIO()
    call_command("create_api_key", "--user", username, "--name", name, stdout=out, stderr=StringIO())
    return out.getvalue().strip().splitlines()[-1]


def key_client(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    return client


@pytest.fixture
def north_and_south(org: Org) -> dict[str, Lead]:
    return {
        "mine": LeadFactory.create(name="Rep's Own Lead", owner=org.rep, team=org.north),
        "pool": LeadFactory.create(name="North Pool Lead", owner=None, team=org.north),
        "teammate": LeadFactory.create(name="Teammate's Lead", owner=org.rep2, team=org.north),
        "south": LeadFactory.create(name="Southern Lead", owner=org.rep_south, team=org.south),
    }


@pytest.mark.parametrize(
    ("role", "visible"),
    [
        ("rep", {"mine", "pool"}),
        ("manager", {"mine", "pool", "teammate"}),
        ("marketing", {"mine", "pool", "teammate", "south"}),
    ],
)
def test_key_sees_exactly_what_its_user_sees(
    org: Org, north_and_south: dict[str, Lead], client_for: Callable[[User], APIClient], role: str, visible: set[str]
) -> None:
    user = getattr(org, role)
    key = create_key(user.username)

    response = key_client(key).get(LIST_URL)

    assert response.status_code == 200
    assert {row["id"] for row in response.json()["results"]} == {north_and_south[kind].pk for kind in visible}
    assert response.json() == client_for(user).get(LIST_URL).json()


def test_key_acts_with_its_users_rights(org: Org, north_and_south: dict[str, Lead]) -> None:
    client = key_client(create_key(org.rep.username))

    updated = client.patch(f"{LIST_URL}{north_and_south['mine'].pk}/", {"company": "Via Key"})
    delete_refused = client.delete(f"{LIST_URL}{north_and_south['mine'].pk}/")
    created = client.post(LIST_URL, {"name": "Created By Machine"})

    assert updated.status_code == 200
    assert delete_refused.status_code == 403
    assert created.status_code == 201
    lead = Lead.objects.get(pk=created.json()["id"])
    assert lead.created_by == org.rep
    assert lead.stage_changes.get().changed_by == org.rep


def test_command_prints_the_key_alone_on_its_last_line(org: Org) -> None:
    out, err = StringIO(), StringIO()

    call_command("create_api_key", "--user", org.rep.username, "--name", "crm-sync", stdout=out, stderr=err)

    key = out.getvalue().strip().splitlines()[-1]
    assert " " not in key
    api_key = UserAPIKey.objects.get(user=org.rep, name="crm-sync")
    assert key.startswith(f"{api_key.prefix}.")
    assert api_key.prefix in err.getvalue()


def test_command_refuses_an_unknown_user(db: None) -> None:
    with pytest.raises(CommandError, match="ghost"):
        call_command("create_api_key", "--user", "ghost", "--name", "x", stdout=StringIO(), stderr=StringIO())

    assert not UserAPIKey.objects.exists()


def test_key_is_stored_only_as_a_hash(org: Org) -> None:
    key = create_key(org.rep.username)
    _prefix, _dot, secret = key.partition(".")

    row = UserAPIKey.objects.values().get()

    for column, value in row.items():
        assert key not in str(value), column
        assert secret not in str(value), column


def _refused(response: Any) -> None:
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Api-Key"
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert "detail" in body
    assert "results" not in body


@pytest.mark.parametrize(
    "header",
    [
        pytest.param("Api-Key {prefix}.wrongsecretwrongsecretwrongsecr", id="wrong-secret"),
        pytest.param("Api-Key nosuchpr.wrongsecretwrongsecretwrongsecr", id="unknown-prefix"),
        pytest.param("Api-Key", id="keyword-without-key"),
        pytest.param("Api-Key ", id="keyword-and-space"),
        pytest.param("Api-Key {key} extra", id="trailing-garbage"),
        pytest.param("Bearer {key}", id="other-scheme"),
        pytest.param("api-key {key}", id="wrong-case-scheme"),
        pytest.param("{key}", id="key-without-keyword"),
        pytest.param("Api-Key clé.ünïcödé", id="non-ascii"),
    ],
)
def test_bad_credentials_get_no_data(org: Org, north_and_south: dict[str, Lead], header: str) -> None:
    key = create_key(org.marketing.username)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header.format(key=key, prefix=key.partition(".")[0]))

    response = client.get(LIST_URL)

    _refused(response)
    assert "Southern Lead" not in response.content.decode()


def test_revoked_key_is_refused(org: Org, north_and_south: dict[str, Lead]) -> None:
    key = create_key(org.marketing.username)
    client = key_client(key)
    assert client.get(LIST_URL).status_code == 200

    api_key_revoke(api_key=UserAPIKey.objects.get())

    _refused(client.get(LIST_URL))
    _refused(client.delete(f"{LIST_URL}{north_and_south['south'].pk}/"))
    assert Lead.objects.filter(pk=north_and_south["south"].pk).exists()


def test_expired_key_is_refused(org: Org, north_and_south: dict[str, Lead]) -> None:
    key = create_key(org.marketing.username)
    UserAPIKey.objects.update(expiry_date=timezone.now() - timedelta(minutes=1))

    _refused(key_client(key).get(LIST_URL))


def test_key_of_a_deactivated_user_is_refused(org: Org, north_and_south: dict[str, Lead]) -> None:
    key = create_key(org.marketing.username)
    org.marketing.is_active = False
    org.marketing.save(update_fields=["is_active"])

    _refused(key_client(key).get(LIST_URL))


def test_use_stamps_last_used_at(org: Org) -> None:
    key = create_key(org.rep.username)
    assert UserAPIKey.objects.get().last_used_at is None
    before = timezone.now()

    key_client(key).get(LIST_URL)

    last_used = UserAPIKey.objects.get().last_used_at
    assert last_used is not None
    assert before <= last_used <= timezone.now()


def test_a_refused_key_is_not_stamped(org: Org) -> None:
    key = create_key(org.rep.username)
    api_key_revoke(api_key=UserAPIKey.objects.get())

    key_client(key).get(LIST_URL)

    assert UserAPIKey.objects.get().last_used_at is None
