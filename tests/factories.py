"""factory_boy factories for the domain; users get their role group through the service."""

from __future__ import annotations

from typing import Any

import factory
from django.utils import timezone

from leads.models import SCORE_FIELDS, Campaign, Interaction, Lead, LeadScore, SourceChannel
from users.models import Role, Team, User
from users.services import user_create


class TeamFactory(factory.django.DjangoModelFactory[Team]):
    class Meta:
        model = Team
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"Team {n}")


def make_user(role: Role, *, team: Team | None = None, username: str | None = None, **extra: Any) -> User:
    """A user in ``role``; a manager given a team leads it, others join it."""
    username = username or f"{role.value}-{User.objects.count() + 1}"
    return user_create(username=username, password="pw-for-tests-1", role=role, team=team, **extra)


class CampaignFactory(factory.django.DjangoModelFactory[Campaign]):
    class Meta:
        model = Campaign

    name = factory.Sequence(lambda n: f"Campaign {n}")
    channel = SourceChannel.ONLINE_ADS
    cost = 1000


class LeadFactory(factory.django.DjangoModelFactory[Lead]):
    """Writes the row directly (fast); tests of the write path call the services instead."""

    class Meta:
        model = Lead

    name = factory.Faker("name")
    email = factory.Sequence(lambda n: f"lead{n}@example.com")
    phone = factory.Sequence(lambda n: f"+86138{n:08d}")
    company = factory.Faker("company")
    job_title = "Engineer"
    source = SourceChannel.WEB_FORM
    created_at = factory.LazyFunction(timezone.now)
    last_activity_at = factory.LazyAttribute(lambda o: o.created_at)

    @classmethod
    def _create(cls, model_class: type[Lead], *args: Any, **kwargs: Any) -> Lead:
        # score=, grade=, conversion_probability= … go to the score card the database made with the lead.
        card = {name: kwargs.pop(name) for name in SCORE_FIELDS if name in kwargs}
        lead: Lead = super()._create(model_class, *args, **kwargs)
        if card:
            LeadScore.objects.filter(lead=lead).update(**card)
        return lead


class InteractionFactory(factory.django.DjangoModelFactory[Interaction]):
    class Meta:
        model = Interaction

    lead = factory.SubFactory(LeadFactory)
    type = "page_view"
    occurred_at = factory.LazyFunction(timezone.now)
