"""Lead fixtures: one lead of each ownership kind around the ``org`` teams, seen from a given user."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from leads.models import Lead
from tests.conftest import Org
from tests.factories import LeadFactory
from users.models import User

# Ownership kinds, named from the acting user's point of view (see ``leads_for``).
OWN, TEAMMATE, POOL, OTHER_TEAM, OTHER_POOL = "own", "teammate", "pool", "other_team", "other_pool"
KINDS = (OWN, TEAMMATE, POOL, OTHER_TEAM, OTHER_POOL)


@dataclass
class LeadSet:
    by_kind: dict[str, Lead]

    def __getitem__(self, kind: str) -> Lead:
        return self.by_kind[kind]


@pytest.fixture
def leads_for(org: Org) -> Callable[[User], LeadSet]:
    """``leads_for(user)`` → a lead of each kind: owned by ``user``; owned by a member of North (``org.rep``,
    or ``org.rep2`` when the user is ``org.rep``); North's unassigned pool; owned by South's rep; South's pool.

    Each lead has a distinctive name so a response body can be checked for leaks.
    """

    def _make(user: User) -> LeadSet:
        teammate = org.rep2 if user == org.rep else org.rep
        return LeadSet(
            {
                OWN: LeadFactory.create(name="Own Lead Aster", owner=user, team=user.team or org.north),
                TEAMMATE: LeadFactory.create(name="Teammate Lead Birch", owner=teammate, team=org.north),
                POOL: LeadFactory.create(name="Pool Lead Cedar", owner=None, team=org.north),
                OTHER_TEAM: LeadFactory.create(name="Southern Lead Dahlia", owner=org.rep_south, team=org.south),
                OTHER_POOL: LeadFactory.create(name="Southern Pool Elm", owner=None, team=org.south),
            }
        )

    return _make
