"""seed_demo: a demo that looks real (roles, names, phones, stages, timelines) and is safe to run twice."""

from __future__ import annotations

import re
from io import StringIO

import phonenumbers
import pytest
from django.core.management import call_command
from django.core.validators import validate_email
from django.db.models import Count, Max

from leads.models import Campaign, Interaction, Lead, LeadStageChange, Stage
from users.models import Role, User

CJK = re.compile(r"[\u4e00-\u9fff]")
LATIN_NAME = re.compile(r"^[A-Z][\w'-]+ [A-Z][\w'-]+$")


def seed(**options: object) -> str:
    out = StringIO()
    call_command("seed_demo", stdout=out, **{"leads": 200, "seed": 7, **options})
    return out.getvalue()


@pytest.fixture
def seeded(db: None) -> str:
    return seed()


def test_every_role_has_a_user_and_the_passwords_are_printed(seeded: str) -> None:
    users = list(User.objects.all())
    assert {user.role for user in users} == set(Role)
    for user in users:
        assert user.username in seeded
    assert re.search(r"admin\s+admin\s+\S+\s+demo-admin-\S{8,}", seeded)


def test_names_are_chinese_and_latin(seeded: str) -> None:
    names = list(Lead.objects.values_list("name", flat=True))
    assert any(CJK.search(name) for name in names)
    assert any(LATIN_NAME.match(name) for name in names)


def test_phones_are_valid_e164_and_emails_valid_and_unique(seeded: str) -> None:
    phones, emails = zip(*Lead.objects.values_list("phone", "email"), strict=True)
    for phone in phones:
        number = phonenumbers.parse(phone)
        assert phonenumbers.is_valid_number(number), phone
        assert phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164) == phone
    for email in emails:
        validate_email(email)
    assert len(set(emails)) == len(emails)
    assert len(set(phones)) == len(phones)


def test_stages_spread_and_history_matches(seeded: str) -> None:
    stages = dict(Lead.objects.values_list("stage").annotate(n=Count("id")))
    assert len(stages) >= 5
    assert stages[Stage.NEW] > stages.get(Stage.SQL, 0)
    assert stages.get(Stage.CONVERTED, 0) >= 1
    assert not Lead.objects.filter(stage=Stage.CONVERTED, converted_at__isnull=True).exists()
    assert not Lead.objects.filter(stage=Stage.LOST).filter(lost_at__isnull=True).exists()
    assert not Lead.objects.filter(stage=Stage.LOST, lost_reason="").exists()
    # The newest stage change of every lead lands on the lead's stage.
    for lead in Lead.objects.prefetch_related("stage_changes"):
        changes = sorted(lead.stage_changes.all(), key=lambda c: (c.changed_at, c.pk))
        assert changes[0].to_stage == Stage.NEW
        assert changes[-1].to_stage == lead.stage


def test_every_lead_has_a_timeline_ending_at_its_last_activity(seeded: str) -> None:
    leads = Lead.objects.annotate(events=Count("interactions"), newest=Max("interactions__occurred_at"))
    for lead in leads:
        assert lead.events >= 1
        assert lead.last_activity_at == lead.newest
    assert Interaction.objects.count() >= 5 * Lead.objects.count()


def test_grades_follow_scores(seeded: str) -> None:
    for score, grade in Lead.objects.values_list("scorecard__score", "scorecard__grade"):
        assert 0 <= score <= 100
        assert grade == ("hot" if score >= 80 else "warm" if score >= 50 else "cold")


def test_if_empty_does_nothing_when_leads_exist(seeded: str) -> None:
    counts = (Lead.objects.count(), User.objects.count(), Interaction.objects.count(), LeadStageChange.objects.count())

    output = seed(if_empty=True)

    assert "nothing to do" in output
    assert counts == (
        Lead.objects.count(),
        User.objects.count(),
        Interaction.objects.count(),
        LeadStageChange.objects.count(),
    )


def test_same_seed_same_leads(seeded: str) -> None:
    first = list(Lead.objects.order_by("id").values_list("name", "email", "phone", "stage", "scorecard__score"))
    Lead.objects.all().delete()
    Campaign.objects.all().delete()

    seed()

    assert list(Lead.objects.order_by("id").values_list("name", "email", "phone", "stage", "scorecard__score")) == first
