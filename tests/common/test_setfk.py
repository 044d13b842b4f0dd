"""Set-checked foreign keys (common/setfk.py): what a foreign key refuses, they refuse, once per statement."""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.apps import apps
from django.db import IntegrityError, connection, transaction
from django.db.models import ForeignKey

from leads.models import ImportJob, ImportRowError, Interaction, Lead, LeadScore, LeadStageChange, Tag
from tests.conftest import Org, wait_until_blocked
from tests.factories import LeadFactory, make_user
from users.models import Role

SET_KEYS = importlib.import_module("leads.migrations.0013_set_checked_foreign_keys").SET_KEYS

pytestmark = pytest.mark.postgres


def _sql(statement: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(statement, params or [])
        return cursor.fetchall() if cursor.description else []


@pytest.mark.django_db
def test_each_set_key_has_its_triggers_and_no_row_level_key() -> None:
    for key in SET_KEYS:
        row_keys = _sql(
            "SELECT c.conname FROM pg_constraint c JOIN pg_attribute a ON a.attrelid = c.conrelid"
            " AND a.attnum = ANY(c.conkey) WHERE c.conrelid = %s::regclass AND c.contype = 'f' AND a.attname = %s",
            [key.table, key.column],
        )
        triggers = {name for (name,) in _sql("SELECT tgname FROM pg_trigger WHERE tgrelid = %s::regclass", [key.table])}
        parent_triggers = {
            name for (name,) in _sql("SELECT tgname FROM pg_trigger WHERE tgrelid = %s::regclass", [key.parent])
        }

        assert row_keys == [], key
        assert {f"{key.name}_ins", f"{key.name}_upd"} <= triggers, key
        assert {f"{key.parent}_fk_del", f"{key.parent}_fk_del_key"} <= parent_triggers, key


def test_every_key_without_a_database_constraint_is_set_checked_or_explained() -> None:
    """A new ``db_constraint=False`` must be added to the set-checked keys (or here, with its reason)."""
    set_checked = {(key.table, key.column) for key in SET_KEYS}
    # scoring.ScoreHistory.lead: no check at all, on purpose (scoring/models.py says why).
    explained = {("scoring_scorehistory", "lead_id")}
    # Auto-created through tables (Lead.tags) are models here too: their keys are listed like any other.
    unchecked = {
        (model._meta.db_table, field.column)
        for model in apps.get_models(include_auto_created=True)
        for field in model._meta.local_fields
        if isinstance(field, ForeignKey) and not getattr(field, "db_constraint", True)
    }

    assert unchecked - explained == set_checked


# --- inserts and updates of the child ------------------------------------------------------------------

MISSING = 987_654_321


def _child_rows(org: Org) -> dict[str, Callable[[], Any]]:
    lead = LeadFactory.create()
    return {
        "interaction.lead": lambda: Interaction.objects.create(lead_id=MISSING, type="note"),
        "interaction.created_by": lambda: Interaction.objects.create(lead=lead, type="note", created_by_id=MISSING),
        "stage change.lead": lambda: LeadStageChange.objects.create(lead_id=MISSING, to_stage="new"),
        "stage change.changed_by": lambda: LeadStageChange.objects.create(
            lead=lead, to_stage="new", changed_by_id=MISSING
        ),
        "tag link.lead": lambda: Lead.tags.through.objects.create(lead_id=MISSING, tag=Tag.objects.create(name="t1")),
        "tag link.tag": lambda: Lead.tags.through.objects.create(lead=lead, tag_id=MISSING),
        "lead.import_job": lambda: Lead.objects.create(name="X", import_job_id=MISSING),
        "lead.created_by": lambda: Lead.objects.create(name="X", created_by_id=MISSING),
        "row error.job": lambda: ImportRowError.objects.create(job_id=MISSING, line_number=2, reason="r"),
        "score card.lead": lambda: LeadScore.objects.create(lead_id=MISSING),
        "a good row": lambda: Interaction.objects.create(lead=lead, type="note", created_by=org.rep),
    }


@pytest.mark.django_db
def test_a_row_naming_a_missing_parent_is_refused_with_the_keys_name(org: Org) -> None:
    for case, write in _child_rows(org).items():
        if case == "a good row":
            write()  # the same insert with real parents goes through
            continue
        with (
            pytest.raises(IntegrityError, match=rf"(?s)violates foreign key constraint .*\({MISSING}\)"),
            transaction.atomic(),
        ):
            write()


@pytest.mark.django_db
def test_one_bad_key_refuses_the_whole_statement_and_writes_nothing(org: Org) -> None:
    lead = LeadFactory.create()
    before = Interaction.objects.count()

    with pytest.raises(IntegrityError, match=str(MISSING)), transaction.atomic():
        Interaction.objects.bulk_create(
            [Interaction(lead=lead, type="a"), Interaction(lead_id=MISSING, type="b"), Interaction(lead=lead, type="c")]
        )

    assert Interaction.objects.count() == before


@pytest.mark.django_db
def test_moving_a_row_to_a_missing_parent_is_refused_and_to_a_real_one_is_not(org: Org) -> None:
    first, second = LeadFactory.create(), LeadFactory.create()
    event = Interaction.objects.create(lead=first, type="note")

    with pytest.raises(IntegrityError, match=str(MISSING)), transaction.atomic():
        Interaction.objects.filter(pk=event.pk).update(lead_id=MISSING)
    Interaction.objects.filter(pk=event.pk).update(lead=second)  # what a merge does

    assert Interaction.objects.get(pk=event.pk).lead_id == second.pk


# --- deletes of the parent ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_deleting_a_referenced_parent_in_sql_is_refused(org: Org) -> None:
    lead = LeadFactory.create(created_by=org.marketing)
    Interaction.objects.create(lead=lead, type="note", created_by=org.rep)
    tag = Tag.objects.create(name="vip")
    lead.tags.add(tag)
    job = ImportJob.objects.create(original_filename="list.csv", created_by=org.marketing)
    ImportRowError.objects.create(job=job, line_number=2, reason="bad")

    for table, pk, child in [
        ("leads_lead", lead.pk, "leads_interaction"),
        ("users_user", org.rep.pk, "leads_interaction"),
        ("leads_tag", tag.pk, "leads_lead_tags"),
        ("leads_importjob", job.pk, "leads_importrowerror"),
    ]:
        refused = rf'"{table}" violates foreign key constraint .* on table "{child}"'
        with pytest.raises(IntegrityError, match=refused), transaction.atomic():
            _sql(f"DELETE FROM {table} WHERE id = %s", [pk])


@pytest.mark.django_db
def test_the_orm_still_cascades_and_nulls(org: Org) -> None:
    author = make_user(Role.REP, team=org.north, username="author")
    lead = LeadFactory.create(created_by=author)
    event = Interaction.objects.create(lead=lead, type="note", created_by=author)
    lead.tags.add(Tag.objects.create(name="vip"))

    author.delete()  # SET_NULL, done by Django before the user row goes
    event.refresh_from_db()
    assert event.created_by_id is None
    lead.delete()  # CASCADE: events, history, tag links, card

    assert not Interaction.objects.filter(lead_id=lead.pk).exists()
    assert not Lead.tags.through.objects.filter(lead_id=lead.pk).exists()
    assert not LeadScore.objects.filter(lead_id=lead.pk).exists()


@pytest.mark.django_db
def test_a_referenced_parents_id_cannot_change(org: Org) -> None:
    tag = Tag.objects.create(name="vip")

    with pytest.raises(IntegrityError, match="cannot change"), transaction.atomic():
        _sql("UPDATE leads_tag SET id = %s WHERE id = %s", [MISSING, tag.pk])


# --- concurrency: the lock a row-level check takes is taken here too ---------------------------------------


def _delete_user(pk: int) -> None:
    """A user's row deleted in SQL, with the group links (a real foreign key) that would refuse it anyway."""
    with transaction.atomic():
        _sql("DELETE FROM users_user_groups WHERE user_id = %s", [pk])
        _sql("DELETE FROM users_user WHERE id = %s", [pk])


def _in_thread(work: Callable[[], object], outcome: dict[str, Any]) -> threading.Thread:
    def run() -> None:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                outcome["pid"] = cursor.fetchone()[0]
            outcome["started"].set()
            work()
            outcome["error"] = None
        except BaseException as exc:  # reported to the test
            outcome["error"] = exc
        finally:
            connection.close()

    outcome["started"] = threading.Event()
    thread = threading.Thread(target=run)
    thread.start()
    assert outcome["started"].wait(timeout=30)
    return thread


@pytest.mark.django_db(transaction=True)
def test_a_parent_deleted_while_a_child_is_being_written_waits_and_is_refused(org: Org) -> None:
    author = make_user(Role.REP, team=org.north, username="author")
    lead = LeadFactory.create()
    outcome: dict[str, Any] = {}

    with transaction.atomic():
        Interaction.objects.create(lead=lead, type="note", created_by=author)  # locks the author, uncommitted
        deleter = _in_thread(lambda: _delete_user(author.pk), outcome)
        wait_until_blocked(outcome["pid"])
    deleter.join(timeout=30)

    assert isinstance(outcome["error"], IntegrityError)
    assert 'on table "leads_interaction"' in str(outcome["error"])  # refused by the set-checked key
    assert Interaction.objects.get(lead=lead).created_by_id == author.pk


@pytest.mark.django_db(transaction=True)
def test_a_child_written_while_its_parent_is_being_deleted_waits_and_is_refused(org: Org) -> None:
    author = make_user(Role.REP, team=org.north, username="author")
    lead = LeadFactory.create()
    outcome: dict[str, Any] = {}

    with transaction.atomic():
        _delete_user(author.pk)  # uncommitted
        writer = _in_thread(
            lambda: Interaction.objects.create(lead_id=lead.pk, type="note", created_by_id=author.pk), outcome
        )
        wait_until_blocked(outcome["pid"])
    writer.join(timeout=30)

    assert isinstance(outcome["error"], IntegrityError)
    assert "leads_interaction_created_by_id_fk" in str(outcome["error"])
    assert not Interaction.objects.filter(lead=lead).exists()
