"""RoleModelBackend: the same answers as Django's ModelBackend, in one query."""

from __future__ import annotations

import pytest
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.conftest import Org
from users.backends import RoleModelBackend
from users.models import User


def _fresh(user: User) -> User:
    return User.objects.get(pk=user.pk)


@pytest.mark.parametrize("who", ["rep", "manager", "marketing", "admin"])
def test_same_permissions_as_model_backend(org: Org, who: str) -> None:
    user = getattr(org, who)
    extra = Permission.objects.get(codename="delete_tag")
    user.user_permissions.add(extra)  # a permission of the user's own, beside the role group's
    expected = ModelBackend().get_all_permissions(_fresh(user))
    got = RoleModelBackend().get_all_permissions(_fresh(user))
    assert got == expected
    assert "leads.delete_tag" in got
    assert "leads.view_lead" in got


def test_one_query_then_cached(org: Org) -> None:
    user = _fresh(org.rep)
    backend = RoleModelBackend()
    with CaptureQueriesContext(connection) as ctx:
        assert backend.has_perm(user, "leads.view_lead")
        assert not backend.has_perm(user, "users.delete_user")
        assert backend.get_user_permissions(user) == set()
    assert len(ctx.captured_queries) == 2  # the union once, then ModelBackend's own-permissions read


def test_inactive_and_object_level_have_none(org: Org) -> None:
    user = _fresh(org.rep)
    assert RoleModelBackend().get_all_permissions(user, obj=object()) == set()
    user.is_active = False
    assert RoleModelBackend().get_all_permissions(user) == set()
