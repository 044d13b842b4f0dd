"""Duplicates and merge: suggestions, merging B into A with its history, and undoing it exactly."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from leads.models import Interaction, Lead, LeadMerge, LeadStageChange, Tag, Task
from leads.selectors import lead_duplicate_pairs
from leads.services import lead_create, lead_merge, lead_merge_undo
from tests.conftest import Org
from tests.factories import InteractionFactory, LeadFactory


def _counts(lead: Lead) -> tuple[int, int, int]:
    return (
        Interaction.objects.filter(lead=lead).count(),
        LeadStageChange.objects.filter(lead=lead).count(),
        Task.objects.filter(lead=lead).count(),
    )


def _pair(org: Org) -> tuple[Lead, Lead]:
    a = lead_create(created_by=org.marketing, name="Ada", email="ada@example.com", company="", tags=["vip"])
    b = lead_create(
        created_by=org.marketing,
        name="Ada L.",
        email="ada.l@example.com",
        phone="+8613800138000",
        company="Analytical",
        attributes={"plan": "pro"},
        tags=["webinar", "vip"],
    )
    InteractionFactory.create(lead=a, type="page_view")
    InteractionFactory.create_batch(2, lead=b, type="download", occurred_at=timezone.now() + timedelta(minutes=5))
    Task.objects.create(lead=b, title="Call back", due_at=timezone.now(), assignee=org.rep)
    return a, b


def test_merge_moves_history_fills_empty_fields_then_undo_restores_exactly(org: Org) -> None:
    a, b = _pair(org)
    before_a, before_b = _counts(a), _counts(b)
    a_fields = Lead.objects.values("email", "phone", "company", "attributes", "last_activity_at").get(pk=a.pk)

    # when B is merged into A
    merge = lead_merge(primary=a, duplicate=b, by=org.marketing)

    # then A has everything, B points to A, A's own values won
    a.refresh_from_db()
    b.refresh_from_db()
    assert _counts(a) == tuple(x + y for x, y in zip(before_a, before_b, strict=True))
    assert _counts(b) == (0, 0, 0)
    assert b.merged_into_id == a.pk
    assert (a.email, a.phone, a.company, a.attributes) == (
        "ada@example.com",
        "+8613800138000",
        "Analytical",
        {"plan": "pro"},
    )
    assert set(a.tags.values_list("name", flat=True)) == {"vip", "webinar"}
    assert merge.snapshot["filled"] == {"phone": "+8613800138000", "company": "Analytical"}

    # when the merge is undone
    lead_merge_undo(merge=merge, by=org.marketing)

    # then both leads are as they were
    a.refresh_from_db()
    b.refresh_from_db()
    assert _counts(a) == before_a
    assert _counts(b) == before_b
    assert b.merged_into_id is None
    assert Lead.objects.values("email", "phone", "company", "attributes", "last_activity_at").get(pk=a.pk) == a_fields
    assert set(a.tags.values_list("name", flat=True)) == {"vip"}
    assert set(b.tags.values_list("name", flat=True)) == {"vip", "webinar"}
    assert LeadMerge.objects.get().undone_at is not None


def test_merge_refuses_self_merged_and_chains(org: Org) -> None:
    a, b = _pair(org)
    c = LeadFactory.create()
    with pytest.raises(ValidationError):
        lead_merge(primary=a, duplicate=a, by=None)
    lead_merge(primary=a, duplicate=b, by=None)
    with pytest.raises(ValidationError):
        lead_merge(primary=b, duplicate=c, by=None)  # into a merged lead
    with pytest.raises(ValidationError):
        lead_merge(primary=c, duplicate=b, by=None)  # an already merged lead
    with pytest.raises(ValidationError):
        lead_merge(primary=c, duplicate=a, by=None)  # A has B merged into it: a chain


def test_undo_twice_is_refused(org: Org) -> None:
    a, b = _pair(org)
    merge = lead_merge(primary=a, duplicate=b, by=None)
    lead_merge_undo(merge=merge, by=None)
    with pytest.raises(ValidationError):
        lead_merge_undo(merge=merge, by=None)


def test_duplicate_suggestions_by_email_phone_and_name_company_visible_only(
    org: Org, django_assert_max_num_queries
) -> None:
    # given pairs by e-mail, by phone, by name + company (Latin case-insensitive, Chinese exact) and non-pairs
    e1 = LeadFactory.create(email="same@example.com", phone="")
    e2 = LeadFactory.create(email="same@example.com", phone="")
    p1 = LeadFactory.create(phone="+8613800138111", email="")
    p2 = LeadFactory.create(phone="+8613800138111", email="")
    n1 = LeadFactory.create(name="John Smith", company="Acme")
    n2 = LeadFactory.create(name="john smith", company="ACME")
    z1 = LeadFactory.create(name="王伟", company="上海某某科技")
    z2 = LeadFactory.create(name="王伟", company="上海某某科技")
    LeadFactory.create(name="王伟", company="北京")  # same name, other company
    merged = LeadFactory.create(email="same@example.com", merged_into=e1)

    # when marketing asks for suggestions
    with django_assert_max_num_queries(3):
        page = lead_duplicate_pairs(user=org.marketing, page_size=50)

    # then every pair is found once, the older lead suggested as primary
    found = {(p.primary.pk, p.duplicate.pk): p.reasons for p in page.pairs}
    assert found == {
        (e1.pk, e2.pk): ("email",),
        (p1.pk, p2.pk): ("phone",),
        (n1.pk, n2.pk): ("name_company",),
        (z1.pk, z2.pk): ("name_company",),
    }
    assert all(merged.pk not in pair for pair in found)

    # and paging walks the same pairs
    first = lead_duplicate_pairs(user=org.marketing, page_size=3)
    rest = lead_duplicate_pairs(user=org.marketing, page_size=3, cursor=first.next_cursor)
    assert [(p.primary.pk, p.duplicate.pk) for p in first.pairs + rest.pairs] == list(found)
    assert rest.next_cursor is None

    # and a rep sees only pairs of leads they may see
    assert lead_duplicate_pairs(user=org.rep_south).pairs == []


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (("John Smith", "Acme Inc"), ("John Smith", "Acme, Inc.")),
        (("John Smith", "ACME Ltd"), ("john smith", "Acme Limited")),
        (("John  Smith", "Acme Co., Ltd."), ("john smith", "ACME")),
        (("王伟", "上海华星科技有限公司"), ("王伟", "上海华星科技")),
        (("王伟", "华星（集团）股份有限公司"), ("王 伟", "华星")),
    ],
    ids=["punctuation", "legal-form", "spacing", "chinese-legal-form", "chinese-brackets"],
)
def test_name_company_suggestions_ignore_case_spacing_punctuation_and_legal_forms(
    org: Org, first: tuple[str, str], second: tuple[str, str]
) -> None:
    # given two leads written as people write them (stored as given: no e-mail or phone to pair them by)
    a = LeadFactory.create(name=first[0], company=first[1], email="", phone="")
    b = LeadFactory.create(name=second[0], company=second[1], email="", phone="")

    # then marketing is offered them as one person
    page = lead_duplicate_pairs(user=org.marketing)
    assert [(p.primary.pk, p.duplicate.pk, p.reasons) for p in page.pairs] == [(a.pk, b.pk, ("name_company",))]


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (("王伟", "上海华星科技有限公司"), ("李娜", "上海华星科技有限公司")),
        (("John Smith", "Acme Inc"), ("Jane Smith", "Acme Inc")),
        (("John Smith", "Costco"), ("John Smith", "Cost")),  # "co" is a legal form only as a word of its own
        (("John Smith", "Acme Holdings"), ("John Smith", "Acme")),
        (("John Smith", "Inc."), ("John Smith", "Ltd")),  # no company left once the legal form goes
        (("John Smith", ""), ("John Smith", "")),
    ],
    ids=["two-people-one-company", "other-first-name", "costco", "other-company", "only-a-legal-form", "no-company"],
)
def test_name_company_suggestions_leave_different_people_and_companies_apart(
    org: Org, first: tuple[str, str], second: tuple[str, str]
) -> None:
    LeadFactory.create(name=first[0], company=first[1], email="", phone="")
    LeadFactory.create(name=second[0], company=second[1], email="", phone="")

    assert lead_duplicate_pairs(user=org.marketing).pairs == []


@pytest.mark.postgres
def test_postgresql_computes_the_same_duplicate_keys_as_python(db: None) -> None:
    # The keys are computed in SQL on PostgreSQL and by common.normalize on SQLite: both must agree.
    from django.db import connection

    from common.normalize import company_key, name_key
    from leads.selectors import _duplicate_keys_sql

    values = [
        "Acme Inc", "Acme, Inc.", "ACME Ltd", "Acme Limited", "Acme Co., Ltd.", "Acme-Holdings LLC", "Costco",
        "Tesco PLC", "Smith & Co", "Müller GmbH", "MÜLLER", "A.C.M.E.", "Inc.", "Ltd", "", "  ", "x_y\tz",
        "上海华星科技有限公司", "上海华星科技股份有限公司", "华星(集团)有限公司", "华星集团", "公司", "《华星》科技",
        "京东・集团", "John  Smith", "J. Smith", "Jean-Luc Picard", "约翰·史密斯", "O'Brien", "王 伟", "ÉMILE",
    ]  # fmt: skip
    name_sql, company_sql, params = _duplicate_keys_sql()
    rows = ", ".join(["(%s, %s)"] * len(values))
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {name_sql}, {company_sql} FROM (VALUES {rows}) AS l(name, company)",
            [*params, *(v for value in values for v in (value, value))],
        )
        computed = cursor.fetchall()

    assert computed == [(name_key(value), company_key(value)) for value in values]


def test_merge_and_undo_api(org: Org, client_for) -> None:
    a, b = _pair(org)
    client = client_for(org.marketing)

    listed = client.get("/api/v1/duplicates/")
    merged = client.post(f"/api/v1/leads/{a.pk}/merge/", {"duplicate_id": b.pk}, format="json")
    again = client.post(f"/api/v1/leads/{a.pk}/merge/", {"duplicate_id": a.pk}, format="json")
    lead_list = client.get("/api/v1/leads/")
    undone = client.post(f"/api/v1/merges/{merged.json()['id']}/undo/")

    assert listed.status_code == 200
    assert merged.status_code == 201
    assert again.status_code == 400
    assert "duplicate_id" in again.json()
    assert b.pk not in [row["id"] for row in lead_list.json()["results"]]
    assert undone.status_code == 200
    assert undone.json()["undone_at"]
    assert Lead.objects.get(pk=b.pk).merged_into_id is None


def test_merge_api_hides_invisible_leads_and_needs_the_permission(org: Org, client_for) -> None:
    mine = LeadFactory.create(owner=org.manager, team=org.north)
    southern = LeadFactory.create(owner=org.rep_south, team=org.south)

    assert (
        client_for(org.manager)
        .post(f"/api/v1/leads/{mine.pk}/merge/", {"duplicate_id": southern.pk}, format="json")
        .status_code
        == 404
    )
    assert (
        client_for(org.rep)
        .post(f"/api/v1/leads/{mine.pk}/merge/", {"duplicate_id": southern.pk}, format="json")
        .status_code
        == 403
    )
    assert Lead.objects.filter(merged_into__isnull=False).count() == 0


def test_merged_lead_page_points_to_the_primary_and_list_hides_it(org: Org) -> None:
    a, b = _pair(org)
    lead_merge(primary=a, duplicate=b, by=org.marketing)
    client = Client()
    client.force_login(org.marketing)

    detail = client.get(reverse("leads:detail", kwargs={"lead_id": b.pk}))
    listing = client.get(reverse("leads:list")).content.decode()

    assert detail.status_code == 302
    assert detail["Location"] == reverse("leads:detail", kwargs={"lead_id": a.pk})
    assert "Ada L." not in listing
    assert Tag.objects.filter(name="webinar").exists()


def test_a_merged_lead_does_not_reveal_an_invisible_primary(org: Org) -> None:
    from django.test import Client

    primary = LeadFactory.create(owner=org.rep_south, team=org.south)
    mine = LeadFactory.create(owner=org.rep, team=org.north, merged_into=primary)
    client = Client()
    client.force_login(org.rep)

    response = client.get(f"/leads/{mine.pk}/")

    assert response.status_code == 404
    assert str(primary.pk) not in response.get("Location", "")
