"""``manage.py create_user`` and the role groups it puts people in."""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.core.management.base import CommandError

from tests.factories import TeamFactory, make_user
from users.models import Role, Team, User
from users.services import ROLE_PERMISSIONS, role_groups_sync

pytestmark = pytest.mark.django_db


def create_user(*args: str) -> str:
    out = StringIO()
    call_command("create_user", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_create_rep_in_a_new_team() -> None:
    output = create_user("alice", "--role", "rep", "--team", "North", "--password", "s3cret-Pw-1", "--email", "a@x.io")

    user = User.objects.get(username="alice")
    assert user.role == Role.REP
    assert list(user.groups.values_list("name", flat=True)) == ["rep"]
    assert user.team == Team.objects.get(name="North")
    assert user.check_password("s3cret-Pw-1")
    assert user.email == "a@x.io"
    assert not user.is_staff
    assert "alice" in output


def test_create_rep_joins_an_existing_team() -> None:
    north = TeamFactory.create(name="North")

    create_user("bob", "--role", "rep", "--team", "North", "--password", "pw-Bob-12345")

    assert User.objects.get(username="bob").team == north
    assert Team.objects.count() == 1


def test_manager_with_a_team_leads_it() -> None:
    previous = make_user(Role.MANAGER, team=TeamFactory.create(name="South"), username="old-manager")

    create_user("carol", "--role", "manager", "--team", "South", "--password", "pw-Carol-12345")

    carol = User.objects.get(username="carol")
    assert carol.role == Role.MANAGER
    assert Team.objects.get(name="South").manager == carol
    assert carol.managed_team_ids == [Team.objects.get(name="South").pk]
    assert User.objects.get(pk=previous.pk).managed_team_ids == []


@pytest.mark.parametrize(
    ("role", "perm", "has_it"),
    [
        ("marketing", "leads.delete_lead", True),
        ("admin", "users.delete_user", True),
        ("rep", "leads.delete_lead", False),
    ],
)
def test_created_user_gets_the_rights_of_the_role(role: str, perm: str, has_it: bool) -> None:
    create_user("dave", "--role", role, "--password", "pw-Dave-12345")

    user = User.objects.get(username="dave")
    assert user.role == role
    assert user.has_perm(perm) is has_it
    assert user.is_superuser is (role == "admin")


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["erin", "--role", "boss", "--password", "pw-Erin-12345"], id="unknown-role"),
        pytest.param(["erin", "--password", "pw-Erin-12345"], id="missing-role"),
        pytest.param(["erin", "--role", "rep"], id="missing-password"),
        pytest.param(["--role", "rep", "--password", "pw-Erin-12345"], id="missing-username"),
    ],
)
def test_bad_arguments_are_refused_and_create_nothing(args: list[str]) -> None:
    with pytest.raises((CommandError, SystemExit)):
        create_user(*args)

    assert not User.objects.exists()


def test_invalid_username_is_a_clear_error() -> None:
    with pytest.raises(CommandError, match="username"):
        create_user("no spaces allowed!", "--role", "rep", "--password", "pw-Erin-12345")

    assert not User.objects.exists()


def test_duplicate_username_is_a_clear_error_and_changes_nothing() -> None:
    create_user("frank", "--role", "rep", "--team", "North", "--password", "first-Pw-12345")

    with pytest.raises(CommandError, match=r"(?i)username.*already exists"):
        create_user("frank", "--role", "admin", "--team", "Brand New Team", "--password", "second-Pw-12345")

    frank = User.objects.get(username="frank")
    assert frank.role == Role.REP
    assert frank.check_password("first-Pw-12345")
    assert not frank.is_superuser
    # The failed command leaves no half-made team behind.
    assert list(Team.objects.values_list("name", flat=True)) == ["North"]


def test_role_groups_exist_after_migrate_with_their_permissions() -> None:
    groups = {group.name: group for group in Group.objects.prefetch_related("permissions__content_type")}

    assert set(Role.values) <= set(groups)
    granted = {
        name: {f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.all()}
        for name, group in groups.items()
    }
    for role, perms in ROLE_PERMISSIONS.items():
        assert granted[role.value] == set(perms)
    assert "leads.delete_lead" not in granted["rep"]
    assert "leads.delete_lead" in granted["marketing"]
    assert "leads.delete_lead" in granted["manager"]
    assert {"users.add_user", "leads.delete_lead", "auth.change_group"} <= granted["admin"]


def test_role_group_sync_is_idempotent_and_repairs_drift() -> None:
    rep = Group.objects.get(name="rep")
    rep.permissions.clear()

    role_groups_sync()
    role_groups_sync()

    assert Group.objects.filter(name__in=Role.values).count() == len(Role.values)
    assert set(rep.permissions.values_list("codename", flat=True)) == {
        perm.split(".", 1)[1] for perm in ROLE_PERMISSIONS[Role.REP]
    }
