"""Assignment fixtures: rep profiles for the org's reps, and a rule helper."""

from __future__ import annotations

from typing import Any

import pytest

from assignment import services
from assignment.models import AssignmentRule, RepProfile
from tests.pipeline.conftest import redis_urls, workers_on  # noqa: F401 - the race test's real workers
from users.models import User


def profile(user: User, **fields: Any) -> RepProfile:
    return services.profile_save(profile=RepProfile(user=user, time_zone="UTC", **fields))


def make_rule(name: str = "Default", *, reps: list[User] | None = None, **fields: Any) -> AssignmentRule:
    fields.setdefault("strategy", "round_robin")
    if reps is not None:
        fields.setdefault("pool", "reps")
    return services.rule_save(rule=AssignmentRule(name=name, **fields), pool_reps=reps)


@pytest.fixture
def reps(org) -> list[User]:
    """The north team's two reps and the south rep, each with a profile (no limits, always available)."""
    people = [org.rep, org.rep2, org.rep_south]
    for person in people:
        profile(person)
    return people
