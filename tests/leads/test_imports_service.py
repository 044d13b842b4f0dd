"""The import job end to end through the service: normalization, row errors, duplicates, counts, undo, resume."""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from celery.exceptions import Retry
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import OperationalError, connection, transaction
from django.db.models import F, signals
from django.utils import timezone, translation

from assignment.models import AssignmentDecision, LeadTeamMember, Notification, QueueEntry, SlaClock
from common.normalize import normalize_phone, normalize_text
from leads import services
from leads.imports.rows import Row, RowBuilder
from leads.models import (
    ImportJob,
    ImportRowError,
    ImportStatus,
    ImportUpdate,
    Interaction,
    Lead,
    LeadMerge,
    LeadScore,
    LeadStageChange,
    OnDuplicate,
    PipelineRun,
    SourceChannel,
    Stage,
)
from leads.services import imports as import_services
from leads.services.intake import lead_upsert
from leads.tasks.imports import import_undo_task
from scoring.models import ScoreHistory
from tests.assignment.conftest import make_rule, profile
from tests.conftest import Org, wait_until_blocked
from tests.factories import CampaignFactory, InteractionFactory, LeadFactory
from tests.leads.test_imports_reading import xlsx_bytes


@pytest.fixture(autouse=True)
def _media_in_tmp(settings, tmp_path) -> None:
    """Uploaded lists go to a temporary MEDIA_ROOT, not the developer's media/ folder."""
    settings.MEDIA_ROOT = tmp_path


def upload(text: str | bytes, name: str = "list.csv") -> SimpleUploadedFile:
    data = text.encode("utf-8") if isinstance(text, str) else text
    return SimpleUploadedFile(name, data, content_type="text/csv")


@pytest.fixture
def run_import(org: Org, django_capture_on_commit_callbacks):
    """``run_import(text, **options)`` → the finished job (the task runs eagerly on commit)."""

    def _run(text: str | bytes, name: str = "list.csv", **options) -> ImportJob:
        with django_capture_on_commit_callbacks(execute=True):
            job = services.import_create(file=upload(text, name), by=org.marketing, **options)
        job.refresh_from_db()
        return job

    return _run


def row_reasons(job: ImportJob) -> dict[int, str]:
    """Line → reason of the job's skipped and rejected rows, as errors.csv gives them."""
    return {line: reason for line, reason, _cells in services.import_error_rows(job=job)}


def assert_counts_add_up(job: ImportJob) -> None:
    assert job.processed == job.total
    assert job.processed == job.created + job.updated + job.skipped + job.failed


def test_an_import_creates_normalized_leads_with_history_tags_and_a_timeline_event(run_import, org: Org) -> None:
    campaign = CampaignFactory.create()
    text = "姓名,手机,邮箱,公司,城市,备注\n王小明,138 0013 8000, Wang@Example.CN ,上海某某科技,上海,老客户介绍\n"

    job = run_import(text, campaign=campaign, tags=["展会2026"], source=SourceChannel.EVENT)

    assert job.status == ImportStatus.DONE
    assert (job.total, job.created, job.failed) == (1, 1, 0)
    lead = Lead.objects.get()
    assert (lead.name, lead.phone, lead.email, lead.company, lead.city) == (
        "王小明", "+8613800138000", "wang@example.cn", "上海某某科技", "上海",
    )  # fmt: skip
    assert lead.attributes == {"notes": "老客户介绍"}
    assert lead.source == SourceChannel.EVENT
    assert lead.campaign == campaign
    assert lead.import_job == job
    assert lead.created_by == org.marketing
    assert [t.name for t in lead.tags.all()] == ["展会2026"]
    assert list(LeadStageChange.objects.filter(lead=lead).values_list("to_stage", flat=True)) == [Stage.NEW]
    event = Interaction.objects.get(lead=lead, type="import")
    assert event.properties == {"import_job": job.pk, "file": "list.csv", "line": 2}


def test_full_width_names_companies_and_phone_digits_are_stored_folded_like_every_entry_point(
    run_import, org: Org
) -> None:
    # given a list typed with a Chinese input method: full-width letters, digits and ideographic spaces
    name, company, phone = "Ｊｏｈｎ　Ｓｍｉｔｈ", "ＡＣＭＥ　　Ｃｏｒｐ", "１３８　００１３　８０００"
    text = f"name,company,phone\n{name},{company},{phone}\n"

    job = run_import(text)

    # then the lead is stored as the form, the API and the lead page would store it
    assert job.created == 1
    imported = Lead.objects.get(import_job=job)
    assert (imported.name, imported.company, imported.phone) == ("John Smith", "ACME Corp", "+8613800138000")
    assert (imported.name, imported.company, imported.phone) == (
        normalize_text(name), normalize_text(company), normalize_phone(phone),
    )  # fmt: skip
    # and the API or a form sending the same values finds the same person, with nothing in conflict
    lead, created = lead_upsert(source_label="api", created_by=org.marketing, name=name, company=company, phone=phone)
    assert (lead.pk, created) == (imported.pk, False)
    assert not Interaction.objects.filter(lead=imported, type="field_conflict").exists()


def test_the_timeline_event_keeps_a_file_name_with_quotes_backslashes_and_tabs(run_import, org: Org) -> None:
    name = 'Q3 "expo" list\\part\t2 — 展会.csv'

    job = run_import("name,email,tags\nAnn,ann@example.com,vip\n", name=name, tags=["expo"])

    lead = Lead.objects.get()
    event = Interaction.objects.get(lead=lead, type="import")
    assert event.properties == {"import_job": job.pk, "file": job.original_filename, "line": 2}
    assert "\\" in job.original_filename
    assert '"' in job.original_filename
    assert sorted(t.name for t in lead.tags.all()) == ["expo", "vip"]
    assert LeadStageChange.objects.get(lead=lead).changed_by == org.marketing


def test_backslashes_tabs_and_a_literal_backslash_n_in_cells_are_stored_as_written(run_import) -> None:
    # COPY's text format reads "\\N" as NULL and a backslash as an escape: the import must escape them.
    text = 'name,email,utm_source,notes\nBack\\slash \\N,ann@example.com,"a\tb",\\N\n'

    job = run_import(text)

    assert job.created == 1
    lead = Lead.objects.get()
    assert (lead.name, lead.utm_source, lead.attributes) == ("Back\\slash \\N", "a\tb", {"notes": "\\N"})


def test_copy_text_names_each_rows_own_columns_first_and_fills_the_rest_from_common_values_and_defaults() -> None:
    fields = [f for f in Lead._meta.concrete_fields if not f.generated and not f.primary_key]
    rows: list[dict[str, Any]] = [
        {"name": "Ann\tA\\B", "company": "ACME"},
        {"name": "Bob", "attributes": {"展会": "上海"}},
    ]

    columns, text = import_services._copy_rows(fields, rows, {"source": "import"}, ids=[7, 8])

    names = ["id", *(f.attname for f in columns)]
    assert names[1:4] == ["name", "company", "attributes"]  # the named ones, in model order
    assert sorted(names[1:]) == sorted(f.attname for f in fields)  # every column once
    ann, bob = (dict(zip(names, line.split("\t"), strict=True)) for line in text.splitlines())
    assert (ann["id"], ann["name"], ann["company"], ann["attributes"]) == ("7", "Ann\\tA\\\\B", "ACME", "{}")
    assert (bob["id"], bob["name"], bob["company"], bob["attributes"]) == ("8", "Bob", "", '{"展会": "上海"}')
    assert ann["source"] == bob["source"] == "import"
    assert ann["campaign_id"] == bob["campaign_id"] == "\\N"  # a nullable column nobody set is NULL
    assert text.endswith("\n")


def test_copy_text_of_rows_that_name_no_column_has_one_field_per_column_and_a_misspelled_key_is_refused() -> None:
    fields = [f for f in LeadStageChange._meta.concrete_fields if not f.primary_key]
    at = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)

    columns, text = import_services._copy_rows(fields, [{}, {}], {"lead_id": 7, "to_stage": "new", "changed_at": at})

    assert [f.attname for f in columns] == [
        "lead_id",
        "from_stage",
        "to_stage",
        "changed_by_id",
        "changed_at",
        "reason",
    ]
    assert text == f"7\t\tnew\t\\N\t{at.isoformat()}\t\n" * 2
    with pytest.raises(ValueError, match="lead"):
        import_services._copy_rows(fields, [{"lead": 7}], {})


def test_copy_text_of_a_json_column_given_as_text_fills_a_row_without_it_with_the_default_as_json() -> None:
    fields = [f for f in Interaction._meta.concrete_fields if f.attname in ("lead_id", "properties")]

    columns, text = import_services._copy_rows(
        fields, [{"lead_id": 1, "properties": '{"line": 2}'}, {"lead_id": 2}], {}, json_text={"properties"}
    )

    assert [f.attname for f in columns] == ["lead_id", "properties"]
    assert text == '1\t{"line": 2}\n2\t{}\n'


def test_imported_leads_are_scored_by_the_pipeline_at_the_end(run_import) -> None:
    job = run_import("name,email\nAnn,ann@example.com\nBob,bob@example.com\n")

    leads = Lead.objects.filter(import_job=job)
    assert leads.count() == 2
    # the pipeline ran once for the whole import (eager Celery): every lead has a score and is no longer dirty
    assert all(lead.score_updated_at is not None and lead.dirty_since is None for lead in leads)


@pytest.fixture
def pipeline_tasks() -> Iterator[list[str]]:
    """The ids of the ``process_dirty_leads_task`` runs while the test runs (eager Celery runs each one sent)."""
    from celery.signals import task_prerun

    from leads.tasks.pipeline import process_dirty_leads_task

    started: list[str] = []

    def _count(sender: Any = None, task_id: str = "", **kwargs: Any) -> None:
        if getattr(sender, "name", None) == process_dirty_leads_task.name:
            started.append(task_id)

    task_prerun.connect(_count, weak=False)
    yield started
    task_prerun.disconnect(_count)


def test_an_import_is_scored_and_assigned_by_one_pipeline_task_after_the_whole_job(
    run_import, org: Org, monkeypatch: pytest.MonkeyPatch, pipeline_tasks: list[str]
) -> None:
    # given an active round-robin rule over two reps, and a list of 12 people read in chunks of 4
    for rep in (org.rep, org.rep2):
        profile(rep)
    make_rule("Imported leads", reps=[org.rep, org.rep2])
    monkeypatch.setattr(import_services, "CHUNK_ROWS", 4)
    titles = ["Director", "Engineer"] * 6
    text = "name,email,job_title\n" + "".join(f"P{i},p{i}@example.com,{t}\n" for i, t in enumerate(titles))

    # when marketing imports it
    job = run_import(text)

    # then every lead is scored (a director's senior title counts) and no longer waits for the pipeline
    leads = list(Lead.objects.filter(import_job=job).select_related("scorecard").order_by("pk"))
    assert len(leads) == 12
    assert all(lead.score_updated_at is not None and lead.dirty_since is None for lead in leads)
    scores = {(lead.job_title, lead.score) for lead in leads}
    assert len(scores) == 2
    assert dict(scores)["Director"] == dict(scores)["Engineer"] + 10
    # and has an owner by the rule, taken in turn, each decision on record
    assert [lead.owner for lead in leads] == [org.rep, org.rep2] * 6
    assert (
        AssignmentDecision.objects.filter(lead__in=leads, rule_name="Imported leads", outcome="assigned").count() == 12
    )
    # and one processing task did it all, for the whole job, not one per chunk or row
    assert len(pipeline_tasks) == 1
    assert list(PipelineRun.objects.values_list("leads", flat=True)) == [12]


def test_a_workbook_with_blank_rows_in_its_declared_size_ends_with_the_true_total(
    run_import, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The progress bar's total starts as the sheet's declared size (blank rows in it) and ends as the rows read."""
    monkeypatch.setattr(import_services, "CHUNK_ROWS", 2)
    totals: list[int] = []
    real_create = import_services._create_leads

    def watching(job, *args, **kwargs):
        totals.append(ImportJob.objects.get(pk=job.pk).total)
        return real_create(job, *args, **kwargs)

    monkeypatch.setattr(import_services, "_create_leads", watching)
    data = xlsx_bytes([["name", "email"], ["Ann", "ann@example.com"], [None, None], [None, None], ["Bo", "bo@example.com"],
                       ["Cy", "cy@example.com"]])  # fmt: skip

    job = run_import(data, name="list.xlsx")

    assert totals[0] == 5  # rows 2-6 as declared, the two blank ones included
    assert job.status == ImportStatus.DONE
    assert (job.total, job.processed, job.created) == (3, 3, 3)
    assert sorted(Lead.objects.values_list("name", flat=True)) == ["Ann", "Bo", "Cy"]


def test_bad_rows_are_reported_with_their_line_and_do_not_stop_good_rows(run_import) -> None:
    text = (
        "name,email,phone\n"
        "Ann,ann@example.com,13800138000\n"
        'Bob,not-an-email,"13800138001"\n'
        '"Cid\nthe second",cid@example.com,12345\n'
        ",,\n"
        "Dee,dee@example.com,\n"
        f"{'x' * 201},long@example.com,\n"
    )

    job = run_import(text)

    assert (job.created, job.failed) == (2, 3)
    assert_counts_add_up(job)
    errors = list(ImportRowError.objects.filter(job=job).values_list("line_number", "reason"))
    assert [line for line, _ in errors] == [3, 4, 7]  # a quoted newline keeps Cid on row 4; the blank row 5 counts
    assert "not-an-email" in errors[0][1]
    assert "phone" in errors[1][1]
    assert "at most 200 characters" in errors[2][1]
    assert ImportRowError.objects.get(job=job, line_number=3).row == {
        "name": "Bob",
        "email": "not-an-email",
        "phone": "13800138001",
    }
    assert set(Lead.objects.values_list("name", flat=True)) == {"Ann", "Dee"}


def test_a_row_without_a_name_is_named_after_its_company_or_email(run_import) -> None:
    job = run_import("name,company,email\n,Acme,a@example.com\n,,b@example.com\n")

    assert job.created == 2
    assert set(Lead.objects.values_list("name", flat=True)) == {"Acme", "b@example.com"}


def test_formula_looking_cells_are_stored_as_text(run_import) -> None:
    run_import('name,company\n"=HYPERLINK(""http://evil"",""x"")",@SUM(A1)\n')

    lead = Lead.objects.get()
    assert lead.name == '=HYPERLINK("http://evil","x")'
    assert lead.company == "@SUM(A1)"


# --- duplicates inside the file ------------------------------------------------------------------

IN_FILE = (
    "name,email,phone,company\n"
    "Ann,ann@example.com,13800138000,\n"
    "Ann Again,ANN@example.com,,Acme\n"  # same e-mail, other case
    "Ann Phone,,+86 138-0013-8000,\n"  # same phone, another format
    "Bob,bob@example.com,,\n"
)


def test_within_file_duplicates_are_skipped_and_reported(run_import) -> None:
    job = run_import(IN_FILE, on_duplicate=OnDuplicate.SKIP)

    assert (job.created, job.skipped) == (2, 2)
    assert_counts_add_up(job)
    reasons = row_reasons(job)
    assert reasons == {3: "Duplicate of line 2 of this file.", 4: "Duplicate of line 2 of this file."}
    assert Lead.objects.get(email="ann@example.com").company == ""


def test_within_file_duplicates_are_merged_into_the_first_row_on_update(run_import) -> None:
    job = run_import(IN_FILE, on_duplicate=OnDuplicate.UPDATE)

    assert (job.created, job.updated, job.skipped) == (2, 2, 0)
    ann = Lead.objects.get(email="ann@example.com")
    assert (ann.name, ann.company, ann.phone) == ("Ann", "Acme", "+8613800138000")


def test_within_file_duplicates_are_created_when_asked(run_import) -> None:
    job = run_import(IN_FILE, on_duplicate=OnDuplicate.CREATE)

    assert job.created == 4
    assert Lead.objects.filter(phone="+8613800138000").count() == 2


def test_within_file_duplicates_are_found_across_chunks(run_import, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(import_services, "CHUNK_ROWS", 2)

    job = run_import(IN_FILE, on_duplicate=OnDuplicate.SKIP)

    assert (job.created, job.skipped) == (2, 2)
    assert Lead.objects.count() == 2


# --- duplicates against the database --------------------------------------------------------------


@pytest.fixture
def existing(db: None) -> Lead:
    return LeadFactory.create(
        name="Old Ann", email="ann@example.com", phone="+8613800138000", company="", job_title="CTO", attributes={}
    )


AGAINST_DB = "name,email,phone,company,job title,plan\nAnn,ANN@example.com,,Acme,CEO,gold\nNew,new@example.com,,,,\n"


def test_database_duplicates_are_skipped_and_reported(run_import, existing: Lead) -> None:
    job = run_import(AGAINST_DB, on_duplicate=OnDuplicate.SKIP)

    assert (job.created, job.skipped) == (1, 1)
    assert row_reasons(job) == {2: f"Duplicate (same e-mail) of existing lead #{existing.pk}."}
    assert not ImportRowError.objects.filter(job=job).exists()  # one ImportSkipBatch for the chunk instead
    # worded when read, in the reader's language
    with translation.override("zh-hans"):
        assert row_reasons(job) == {2: f"与已有线索 #{existing.pk} 重复（邮箱相同）。"}
    existing.refresh_from_db()
    assert existing.company == ""


def test_database_duplicates_are_filled_in_and_conflicts_kept_on_the_timeline(run_import, existing: Lead) -> None:
    job = run_import(AGAINST_DB, on_duplicate=OnDuplicate.UPDATE, tags=["vip"])

    assert (job.created, job.updated) == (1, 1)
    assert_counts_add_up(job)
    existing.refresh_from_db()
    # empty fields are filled, a differing value is not overwritten
    assert (existing.name, existing.company, existing.job_title) == ("Old Ann", "Acme", "CTO")
    assert existing.attributes == {"plan": "gold"}
    assert [t.name for t in existing.tags.all()] == ["vip"]
    conflicts = Interaction.objects.filter(lead=existing, type="field_conflict")
    assert sorted((c.properties["field"], c.properties["kept"], c.properties["received"]) for c in conflicts) == [
        ("job_title", "CTO", "CEO"),
        ("name", "Old Ann", "Ann"),
    ]
    update = ImportUpdate.objects.get(job=job, lead=existing)
    assert update.previous["fields"] == {"company": ""}


def test_a_matched_lead_the_list_brings_nothing_new_to_keeps_its_data(run_import, existing: Lead) -> None:
    Lead.objects.filter(pk=existing.pk).update(company="Acme", attributes={"plan": "gold"})

    job = run_import(AGAINST_DB, on_duplicate=OnDuplicate.UPDATE)

    assert job.updated == 1
    after = Lead.objects.get(pk=existing.pk)
    assert (after.name, after.company, after.job_title, after.attributes) == (
        "Old Ann",
        "Acme",
        "CTO",
        {"plan": "gold"},
    )
    # the list is still on its timeline, and undo has nothing to restore
    assert Interaction.objects.get(lead=existing, type="import").properties["updated_fields"] == []
    assert ImportUpdate.objects.get(job=job, lead=existing).previous["fields"] == {}


def test_matched_and_created_leads_are_all_scored_after_an_update_import(run_import, existing: Lead) -> None:
    job = run_import(AGAINST_DB, on_duplicate=OnDuplicate.UPDATE)

    assert (job.created, job.updated) == (1, 1)
    leads = Lead.objects.filter(email__in=["ann@example.com", "new@example.com"])
    assert all(lead.score_updated_at is not None and lead.dirty_since is None for lead in leads)


def test_database_duplicates_are_created_anyway_when_asked(run_import, existing: Lead) -> None:
    job = run_import(AGAINST_DB, on_duplicate=OnDuplicate.CREATE)

    assert job.created == 2
    assert Lead.objects.filter(email="ann@example.com").count() == 2


def test_email_match_wins_over_phone_match_and_merged_leads_are_ignored(run_import, db: None) -> None:
    by_phone = LeadFactory.create(email="other@example.com", phone="+8613900139000")
    by_email = LeadFactory.create(email="zed@example.com", phone="")
    merged = LeadFactory.create(email="gone@example.com", merged_into=by_email)

    job = run_import(
        "name,email,phone\nZed,zed@example.com,13900139000\nGone,gone@example.com,\n", on_duplicate=OnDuplicate.SKIP
    )

    reasons = row_reasons(job)
    assert reasons == {2: f"Duplicate (same e-mail) of existing lead #{by_email.pk}."}
    assert job.created == 1  # the merged lead's address is free again
    assert by_phone.pk != merged.pk


# --- bad input creates nothing --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "name", "field"),
    [
        (b"", "a.csv", "file"),
        (b"name,email\n", "a.csv", "file"),
        (b"\x00\x01\x02binary", "a.csv", "file"),
        (b"name\nann\n", "a.exe", "file"),
        (b"foo,bar\n1,2\n", "a.csv", "mapping"),
    ],
)
def test_a_bad_file_creates_nothing(org: Org, text: bytes, name: str, field: str) -> None:
    with pytest.raises(ValidationError) as raised:
        services.import_create(file=upload(text, name), by=org.marketing)

    assert field in raised.value.message_dict
    assert not ImportJob.objects.exists()


def test_a_file_over_the_size_limit_is_refused(org: Org, settings) -> None:
    settings.LEADCRM_IMPORT_MAX_BYTES = 100
    with pytest.raises(ValidationError) as raised:
        services.import_create(file=upload("name\n" + "ann\n" * 50), by=org.marketing)

    assert "larger than" in raised.value.message_dict["file"][0]
    assert not ImportJob.objects.exists()


# --- crash and resume -------------------------------------------------------------------------------


def test_a_crash_marks_the_job_failed_and_a_rerun_resumes_without_duplicates(
    org: Org, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks
) -> None:
    monkeypatch.setattr(import_services, "CHUNK_ROWS", 2)
    real_create = import_services._create_leads
    calls = {"n": 0}
    thresholds: list[tuple[int, int, int]] = []

    def crash_on_second_chunk(*args, **kwargs):
        calls["n"] += 1
        thresholds.append(gc.get_threshold())
        if calls["n"] == 2:
            raise RuntimeError("worker lost its database")
        return real_create(*args, **kwargs)

    monkeypatch.setattr(import_services, "_create_leads", crash_on_second_chunk)
    text = "name,email\n" + "".join(f"P{i},p{i}@example.com\n" for i in range(5))
    job = services.import_create(file=upload(text), by=org.marketing)
    before = gc.get_threshold()

    with pytest.raises(RuntimeError):
        services.import_run(job_id=job.pk)

    # The collector ran less often while the job ran, and is back as it was after the crash.
    assert thresholds[0][0] >= 10_000
    assert gc.get_threshold() == before
    job.refresh_from_db()
    assert job.status == ImportStatus.FAILED
    assert "worker lost its database" in job.error
    assert (job.processed, job.created) == (2, 2)  # the first chunk committed with its counters

    services.import_run(job_id=job.pk)

    job.refresh_from_db()
    assert job.status == ImportStatus.DONE
    assert (job.processed, job.created) == (5, 5)
    assert Lead.objects.count() == 5
    services.import_run(job_id=job.pk)  # a redelivered task is a no-op
    assert Lead.objects.count() == 5


def test_a_row_that_breaks_the_normalizer_fails_the_job_and_keeps_the_chunks_before_it(
    org: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(import_services, "CHUNK_ROWS", 2)
    real_build = RowBuilder.__call__

    def build(self: RowBuilder, line: int, cells: list[str]) -> Row:
        if line == 5:
            raise RuntimeError("normalizer crashed on line 5")
        return real_build(self, line, cells)

    monkeypatch.setattr(RowBuilder, "__call__", build)
    text = "name,email\n" + "".join(f"P{i},p{i}@example.com\n" for i in range(6))
    job = services.import_create(file=upload(text), by=org.marketing)

    with pytest.raises(RuntimeError):
        services.import_run(job_id=job.pk)

    job.refresh_from_db()
    assert job.status == ImportStatus.FAILED
    assert "normalizer crashed on line 5" in job.error
    # lines 2–3 and 4 … the chunk holding line 5 never started
    assert (job.processed, job.created) == (2, 2)
    assert Lead.objects.count() == 2


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_an_import_waits_for_a_form_submission_of_the_same_person_and_then_skips_it(org: Org) -> None:
    # given a web-form submission for ann@example.com whose transaction is still open
    submitted = threading.Event()
    errors: list[BaseException] = []

    def submit() -> None:
        try:
            with transaction.atomic():
                lead_upsert(source_label="form:demo", created_by=None, name="Ann", email="ann@example.com")
                submitted.set()
                time.sleep(0.5)  # the import starts while this submission has not committed yet
        except BaseException as exc:
            errors.append(exc)
            submitted.set()
        finally:
            connection.close()

    thread = threading.Thread(target=submit)
    thread.start()
    assert submitted.wait(timeout=30)

    # when the same person is imported meanwhile
    job = services.import_create(
        file=upload("name,email\nAnn,ANN@example.com\nBob,bob@example.com\n"), by=org.marketing
    )
    services.import_run(job_id=job.pk)
    thread.join()

    # then the import waited for the submission, found its lead and made no duplicate
    job.refresh_from_db()
    assert errors == []
    assert (job.created, job.skipped) == (1, 1)
    assert Lead.objects.filter(email="ann@example.com").count() == 1


# --- two writers: chunks written side by side on PostgreSQL (LEADCRM_IMPORT_WRITERS) ----------------------


@pytest.fixture
def two_writers(settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two-row chunks and two writer connections (outside a test transaction, so the second one sees the job).

    The test runs the job itself: the eager task would otherwise run it inside ``import_create``'s commit.
    """
    settings.LEADCRM_IMPORT_WRITERS = 2
    monkeypatch.setattr(import_services, "CHUNK_ROWS", 2)
    monkeypatch.setattr(import_services, "_enqueue", lambda job_id: None)


def slow_chunk_with_line(monkeypatch: pytest.MonkeyPatch, line: int, seconds: float = 0.4) -> None:
    """The chunk holding ``line`` keeps its transaction open a while after writing its leads."""
    real_create = import_services._create_leads

    def create_then_wait(job, rows, *args, **kwargs):
        real_create(job, rows, *args, **kwargs)
        if any(row.line == line for row in rows):
            time.sleep(seconds)

    monkeypatch.setattr(import_services, "_create_leads", create_then_wait)


# Ann (line 2) and her duplicates in the next two chunks: lines 4 (e-mail) and 6 (phone).
SPANNING = (
    "name,email,phone\n"
    "Ann,ann@example.com,13800138000\n"
    "Bob,bob@example.com,\n"
    "Ann Again,ANN@example.com,\n"
    "Cat,cat@example.com,\n"
    "Ann Phone,,+86 138-0013-8000\n"
    "Dan,dan@example.com,\n"
    "Eve,eve@example.com,\n"
)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_with_two_writers_a_duplicate_of_a_row_in_a_chunk_still_being_written_is_found(
    org: Org, two_writers: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given the chunk with Ann's first row still open while the next chunks are written
    slow_chunk_with_line(monkeypatch, line=2)

    # when the list is imported
    job = services.import_create(file=upload(SPANNING), by=org.marketing, on_duplicate=OnDuplicate.SKIP)
    services.import_run(job_id=job.pk)

    # then Ann is one lead and her later rows are reported as duplicates of an earlier row
    job.refresh_from_db()
    assert job.status == ImportStatus.DONE
    assert (job.created, job.skipped, job.failed) == (5, 2, 0)
    assert_counts_add_up(job)
    assert Lead.objects.filter(phone="+8613800138000").count() == 1
    assert Lead.objects.count() == 5
    reasons = row_reasons(job)
    assert reasons == {
        4: "Duplicate (same e-mail) of an earlier row of this file.",
        6: "Duplicate (same phone) of an earlier row of this file.",
    }
    assert Interaction.objects.filter(type="import").count() == 5


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_with_two_writers_a_later_chunk_fills_in_the_lead_an_earlier_chunk_created_and_undo_removes_it(
    org: Org, two_writers: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    slow_chunk_with_line(monkeypatch, line=2)
    text = (
        "name,email,phone,company\nAnn,ann@example.com,,\nBob,bob@example.com,,\nAnn,ANN@example.com,13800138000,Acme\n"
    )

    job = services.import_create(file=upload(text), by=org.marketing, on_duplicate=OnDuplicate.UPDATE)
    services.import_run(job_id=job.pk)

    job.refresh_from_db()
    assert (job.created, job.updated) == (2, 1)
    ann = Lead.objects.get(email="ann@example.com")
    assert (ann.phone, ann.company) == ("+8613800138000", "Acme")

    services.import_undo(job=job, by=org.marketing)
    assert Lead.objects.count() == 0


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_with_two_writers_counts_and_row_errors_are_exact(org: Org, two_writers: None) -> None:
    existing = LeadFactory.create(name="Old", email="old@example.com", phone="")
    lines = ["name,email,phone"]
    for i in range(40):
        if i % 10 == 3:
            lines.append(f"Bad{i},bad{i}@example.com,12")  # not a phone number
        elif i % 10 == 5:
            lines.append(f"Old{i},OLD@example.com,")  # the existing lead
        elif i % 10 == 7:
            lines.append(f"Again{i},p{i - 5}@example.com,")  # a row five lines up, two chunks earlier
        else:
            lines.append(f"P{i},p{i}@example.com,")
    job = services.import_create(file=upload("\n".join(lines) + "\n"), by=org.marketing)
    services.import_run(job_id=job.pk)

    job.refresh_from_db()
    assert job.status == ImportStatus.DONE
    assert (job.total, job.created, job.skipped, job.failed) == (40, 28, 8, 4)
    assert_counts_add_up(job)
    reasons = row_reasons(job)
    assert list(reasons) == [i + 2 for i in range(40) if i % 10 in (3, 5, 7)]  # in line order across chunks
    for i in range(40):
        if i % 10 == 5:
            assert reasons[i + 2] == f"Duplicate (same e-mail) of existing lead #{existing.pk}."
        elif i % 10 == 7:  # its first row is in another chunk
            assert reasons[i + 2] == "Duplicate (same e-mail) of an earlier row of this file."
    assert Lead.objects.exclude(pk=existing.pk).filter(import_job=job).count() == 28
    assert Lead.objects.filter(email="old@example.com").count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_with_two_writers_a_failing_chunk_keeps_the_chunks_before_it_and_a_rerun_finishes_the_rest(
    org: Org, two_writers: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given the second chunk fails while the third is already being written by the other connection
    real_create = import_services._create_leads

    def crash_on_line_4(job, rows, *args, **kwargs):
        if any(row.line == 4 for row in rows):
            time.sleep(0.2)
            raise RuntimeError("worker lost its database")
        return real_create(job, rows, *args, **kwargs)

    monkeypatch.setattr(import_services, "_create_leads", crash_on_line_4)
    text = "name,email\n" + "".join(f"P{i},p{i}@example.com\n" for i in range(7))
    job = services.import_create(file=upload(text), by=org.marketing)

    with pytest.raises(RuntimeError, match="worker lost its database"):
        services.import_run(job_id=job.pk)

    # then only the first chunk is there, and the job says so
    job.refresh_from_db()
    assert job.status == ImportStatus.FAILED
    assert (job.processed, job.created) == (2, 2)
    assert Lead.objects.count() == 2

    # when it runs again without the fault, every row is imported once
    monkeypatch.setattr(import_services, "_create_leads", real_create)
    services.import_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == ImportStatus.DONE
    assert (job.processed, job.created) == (7, 7)
    assert Lead.objects.count() == 7
    assert sorted(Lead.objects.values_list("email", flat=True)) == sorted(f"p{i}@example.com" for i in range(7))


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_with_two_writers_a_row_that_breaks_the_normalizer_keeps_the_chunks_before_it(
    org: Org, two_writers: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_build = RowBuilder.__call__

    def build(self: RowBuilder, line: int, cells: list[str]) -> Row:
        if line == 7:
            raise RuntimeError("normalizer crashed on line 7")
        return real_build(self, line, cells)

    monkeypatch.setattr(RowBuilder, "__call__", build)
    text = "name,email\n" + "".join(f"P{i},p{i}@example.com\n" for i in range(8))
    job = services.import_create(file=upload(text), by=org.marketing)

    with pytest.raises(RuntimeError, match="normalizer crashed on line 7"):
        services.import_run(job_id=job.pk)

    job.refresh_from_db()
    assert job.status == ImportStatus.FAILED
    # lines 2–3 and 4–5 were written (by either connection); the chunk holding line 7 never started
    assert (job.processed, job.created) == (4, 4)
    assert Lead.objects.count() == 4


def test_a_chunk_whose_job_another_worker_moved_meanwhile_rolls_back_and_leaves_the_job_to_it(
    org: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a job whose counters another worker (a redelivered task) moves while this one writes a chunk
    monkeypatch.setattr(import_services, "_enqueue", lambda job_id: None)
    job = services.import_create(file=upload("name\nAnn\nBob\n"), by=org.marketing)
    real_create_leads = import_services._create_leads

    def create_leads_then_the_other_worker_commits(*args: Any, **kwargs: Any) -> None:
        real_create_leads(*args, **kwargs)
        ImportJob.objects.filter(pk=job.pk).update(processed=F("processed") + 2)

    monkeypatch.setattr(import_services, "_create_leads", create_leads_then_the_other_worker_commits)

    # when this worker finishes its chunk
    services.import_run(job_id=job.pk)

    # then its chunk is rolled back, without an error, and the job stays the other worker's to finish
    job.refresh_from_db()
    assert (job.status, job.processed, job.created, job.error) == (ImportStatus.RUNNING, 0, 0, "")
    assert not Lead.objects.exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_chunk_waits_for_another_worker_moving_its_job_then_rolls_back(
    org: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The counters' conditional UPDATE waits for a concurrent writer of the job's row, then re-reads it."""
    monkeypatch.setattr(import_services, "_enqueue", lambda job_id: None)
    job = services.import_create(file=upload("name\nAnn\nBob\n"), by=org.marketing)
    moved, release = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def other_worker() -> None:  # a redelivered task that moved the same job and has not committed yet
        try:
            with transaction.atomic():
                ImportJob.objects.filter(pk=job.pk).update(processed=F("processed") + 2)
                moved.set()
                release.wait(30)
        except BaseException as exc:  # reported to the test
            errors.append(exc)
        finally:
            connection.close()

    def release_once_blocked(pid: int) -> None:
        try:
            wait_until_blocked(pid)
        except BaseException as exc:  # it never waited: reported to the test
            errors.append(exc)
        finally:
            release.set()
            connection.close()

    other = threading.Thread(target=other_worker)
    watcher: list[threading.Thread] = []
    real_create_leads = import_services._create_leads

    def create_leads_while_the_other_worker_holds_the_job(*args: Any, **kwargs: Any) -> None:
        real_create_leads(*args, **kwargs)
        other.start()
        assert moved.wait(30)
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            pid = cursor.fetchone()[0]
        watcher.append(threading.Thread(target=release_once_blocked, args=(pid,)))
        watcher[0].start()

    monkeypatch.setattr(import_services, "_create_leads", create_leads_while_the_other_worker_holds_the_job)

    # when this worker's chunk reaches its counters while the other holds the job's row
    services.import_run(job_id=job.pk)
    other.join(30)
    watcher[0].join(30)

    # then it waited for the other worker, saw the job moved, and rolled its chunk back
    assert not errors
    job.refresh_from_db()
    assert (job.status, job.processed, job.created, job.error) == (ImportStatus.RUNNING, 2, 0, "")
    assert not Lead.objects.exists()


# --- undo --------------------------------------------------------------------------------------------


def test_undo_deletes_created_leads_and_restores_updated_ones(run_import, existing: Lead, org: Org) -> None:
    job = run_import(AGAINST_DB, on_duplicate=OnDuplicate.UPDATE, tags=["vip"])
    created = Lead.objects.get(email="new@example.com")

    undone = services.import_undo(job=job, by=org.marketing)

    assert undone.status == ImportStatus.UNDONE
    assert not Lead.objects.filter(pk=created.pk).exists()
    assert not Interaction.objects.filter(lead_id=created.pk).exists()
    existing.refresh_from_db()
    assert (existing.company, existing.attributes, list(existing.tags.all())) == ("", {}, [])
    assert not Interaction.objects.filter(lead=existing, type__in=["import", "field_conflict"]).exists()


@pytest.mark.parametrize("signal_receiver", [False, True], ids=["set-based", "django-collector"])
def test_undo_deletes_what_the_pipeline_hung_off_a_created_lead_and_nothing_of_other_leads(
    run_import, org: Org, signal_receiver: bool
) -> None:
    """Set-based deletes, or Django's collector when a delete signal listens on leads: the same rows go."""
    deleted: list[int] = []

    def receiver(sender: type[Lead], instance: Lead, **kwargs: Any) -> None:
        deleted.append(instance.pk)

    if signal_receiver:
        signals.pre_delete.connect(receiver, sender=Lead, dispatch_uid="test-undo-receiver")
    # given an imported lead the pipeline has scored, routed and queued, and a lead that is not the import's
    job = run_import("name,email\nAnn,ann@example.com\n", tags=["expo"])
    ann = Lead.objects.get(email="ann@example.com")
    other = LeadFactory.create(email="other@example.com")
    now = timezone.now()
    for lead in (ann, other):
        ScoreHistory.objects.create(lead=lead, score=10, grade="C")
        AssignmentDecision.objects.create(lead=lead, trigger="new", outcome="queued")
        Notification.objects.create(user=org.rep, kind="new_lead", lead=lead, message="new lead")
        LeadTeamMember.objects.create(lead=lead, user=org.rep)
        SlaClock.objects.create(lead=lead, owner=org.rep, started_at=now, due_at=now + timedelta(hours=1))
    QueueEntry.objects.create(lead=ann)
    Lead.objects.filter(pk=other.pk).update(merged_into=ann)  # a pointer to the lead that goes

    try:
        services.import_undo(job=job, by=org.marketing)
    finally:
        signals.pre_delete.disconnect(sender=Lead, dispatch_uid="test-undo-receiver")

    # then Ann and everything about her are gone; the other lead keeps all of its rows
    assert deleted == ([ann.pk] if signal_receiver else [])
    assert list(Lead.objects.values_list("pk", flat=True)) == [other.pk]
    for model in (ScoreHistory, AssignmentDecision, Notification, LeadTeamMember, SlaClock):
        assert list(model.objects.values_list("lead_id", flat=True)) == [other.pk], model
    assert not QueueEntry.objects.exists()
    assert not LeadStageChange.objects.filter(lead_id=ann.pk).exists()
    assert not Interaction.objects.filter(lead_id=ann.pk).exists()
    assert not Lead.tags.through.objects.filter(lead_id=ann.pk).exists()
    assert not LeadScore.objects.filter(lead_id=ann.pk).exists()
    other.refresh_from_db()
    assert other.merged_into_id is None


def test_undo_keeps_a_value_someone_changed_after_the_import(run_import, existing: Lead, org: Org) -> None:
    job = run_import(AGAINST_DB, on_duplicate=OnDuplicate.UPDATE)
    Lead.objects.filter(pk=existing.pk).update(company="Acme Holdings")

    services.import_undo(job=job, by=org.marketing)

    existing.refresh_from_db()
    assert existing.company == "Acme Holdings"


def test_undo_keeps_created_leads_that_a_rep_has_worked_on(run_import, org: Org) -> None:
    job = run_import("name,email\nAnn,ann@example.com\nBob,bob@example.com\n")
    worked = Lead.objects.get(email="ann@example.com")
    InteractionFactory.create(lead=worked, type="call", created_by=org.rep)

    undone = services.import_undo(job=job, by=org.marketing)

    assert list(Lead.objects.values_list("email", flat=True)) == ["ann@example.com"]
    assert "1 created leads were kept" in undone.error


def test_an_import_cannot_be_undone_twice(run_import, org: Org) -> None:
    job = run_import("name\nAnn\n")
    services.import_undo(job=job, by=org.marketing)

    with pytest.raises(ValidationError):
        services.import_undo(job=job, by=org.marketing)


def test_undo_runs_in_the_background_and_a_second_request_meanwhile_is_refused(
    run_import, org: Org, django_capture_on_commit_callbacks
) -> None:
    job = run_import("name\nAnn\nBob\n")

    with django_capture_on_commit_callbacks() as callbacks:
        started = services.import_undo_start(job=job, by=org.marketing)
    assert started.status == ImportStatus.UNDOING
    assert Lead.objects.count() == 2  # nothing deleted until the worker runs
    with pytest.raises(ValidationError):
        services.import_undo_start(job=job, by=org.marketing)
    services.import_run(job_id=job.pk)  # a late redelivery of the import itself does nothing
    job.refresh_from_db()
    assert (job.status, Lead.objects.count()) == (ImportStatus.UNDOING, 2)

    for callback in callbacks:
        callback()  # the worker (eager Celery)

    job.refresh_from_db()
    assert job.status == ImportStatus.UNDONE
    assert not Lead.objects.exists()


def test_an_undo_that_fails_changes_nothing_says_why_and_can_be_retried(
    run_import, existing: Lead, org: Org, django_capture_on_commit_callbacks, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = run_import(AGAINST_DB, on_duplicate=OnDuplicate.UPDATE)
    assert Lead.objects.count() == 2
    real_mark_dirty = import_services.leads_mark_dirty
    monkeypatch.setattr(import_services, "leads_mark_dirty", lambda **kw: 1 / 0)  # fails after the writes

    with pytest.raises(ZeroDivisionError), django_capture_on_commit_callbacks(execute=True):
        services.import_undo_start(job=job, by=org.marketing)

    job.refresh_from_db()
    assert job.status == ImportStatus.DONE  # where it was: the import itself did not fail
    assert "Undo failed: ZeroDivisionError" in job.error
    existing.refresh_from_db()
    assert (Lead.objects.count(), existing.company) == (2, "Acme")  # its deletes and restores rolled back
    monkeypatch.setattr(import_services, "leads_mark_dirty", real_mark_dirty)
    with django_capture_on_commit_callbacks(execute=True):
        services.import_undo_start(job=job, by=org.marketing)
    job.refresh_from_db()
    existing.refresh_from_db()
    assert (job.status, job.error, Lead.objects.count(), existing.company) == (ImportStatus.UNDONE, "", 1, "")


def test_an_undo_that_meets_a_database_outage_changes_nothing_and_its_retry_completes_it(
    run_import, org: Org, django_capture_on_commit_callbacks, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = run_import("name\nAnn\n")
    real_undo = import_services.import_undo

    def down(**kwargs: Any) -> ImportJob:
        raise OperationalError("the database is restarting")

    monkeypatch.setattr(import_services, "import_undo", down)
    # A worker would retry it later; eager Celery hands the Retry to the caller instead.
    with pytest.raises(Retry), django_capture_on_commit_callbacks(execute=True):
        services.import_undo_start(job=job, by=org.marketing)
    job.refresh_from_db()
    assert (job.status, job.error, Lead.objects.count()) == (ImportStatus.UNDOING, "", 1)

    monkeypatch.setattr(import_services, "import_undo", real_undo)
    import_undo_task.apply(args=(job.pk,), retries=1, throw=True)  # the retry

    job.refresh_from_db()
    assert (job.status, Lead.objects.count()) == (ImportStatus.UNDONE, 0)


def test_an_undo_still_failing_at_its_last_retry_goes_back_with_the_reason(
    run_import, org: Org, django_capture_on_commit_callbacks, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = run_import("name\nAnn\n")
    with django_capture_on_commit_callbacks():  # the first message: its attempts are simulated below
        services.import_undo_start(job=job, by=org.marketing)

    def down(**kwargs: Any) -> ImportJob:
        raise OperationalError("the database is down")

    monkeypatch.setattr(import_services, "import_undo", down)
    with pytest.raises(OperationalError):
        import_undo_task.apply(args=(job.pk,), retries=import_undo_task.max_retries, throw=True)

    job.refresh_from_db()
    assert job.status == ImportStatus.DONE
    assert "Undo failed: OperationalError: the database is down" in job.error
    assert Lead.objects.count() == 1


def test_a_duplicate_undo_message_leaves_a_job_alone_once_it_is_no_longer_undoing(
    run_import, org: Org, django_capture_on_commit_callbacks
) -> None:
    job = run_import("name\nAnn\n")
    ImportJob.objects.filter(pk=job.pk).update(status=ImportStatus.FAILED)  # as after a failed undo

    import_undo_task.delay(job.pk)
    assert import_services.import_undo(job=job, by=None, started=True).status == ImportStatus.FAILED

    job.refresh_from_db()
    assert (job.status, Lead.objects.count()) == (ImportStatus.FAILED, 1)


def test_the_undo_reports_in_the_language_of_whoever_started_it(
    run_import, org: Org, django_capture_on_commit_callbacks
) -> None:
    job = run_import("name,email\nAnn,ann@example.com\nBob,bob@example.com\n")
    InteractionFactory.create(lead=Lead.objects.get(email="ann@example.com"), type="call", created_by=org.rep)

    with translation.override("zh-hans"), django_capture_on_commit_callbacks(execute=True):
        services.import_undo_start(job=job, by=org.marketing)

    job.refresh_from_db()
    assert job.status == ImportStatus.UNDONE
    assert job.error == "有 1 条新建线索在导入后已有人跟进，因此予以保留。"


def test_the_sweeper_sends_again_the_jobs_whose_message_was_lost(org: Org, django_capture_on_commit_callbacks) -> None:
    with django_capture_on_commit_callbacks():  # the import's message is lost: its callback never runs
        lost = services.import_create(file=upload("name\nAnn\n"), by=org.marketing)
    with django_capture_on_commit_callbacks():
        waiting = services.import_create(file=upload("name\nBob\n"), by=org.marketing)
    ImportJob.objects.filter(pk=lost.pk).update(touched_at=timezone.now() - timedelta(minutes=11))

    assert import_services.import_sweep() == 1  # the default limit is 10 minutes

    lost.refresh_from_db()
    waiting.refresh_from_db()
    assert (lost.status, lost.created) == (ImportStatus.DONE, 1)
    assert waiting.status == ImportStatus.PENDING  # not stale yet: its worker may still come
    with django_capture_on_commit_callbacks():  # and now an undo whose message is lost
        services.import_undo_start(job=lost, by=org.marketing)
    ImportJob.objects.filter(pk=lost.pk).update(touched_at=timezone.now() - timedelta(minutes=11))
    ImportJob.objects.filter(pk=waiting.pk).update(touched_at=timezone.now())
    assert import_services.import_sweep() == 1
    lost.refresh_from_db()
    assert (lost.status, Lead.objects.filter(name="Ann").exists()) == (ImportStatus.UNDONE, False)
    assert import_services.import_sweep(stale_after_s=0) == 1  # only the waiting one: done/undone are left alone


def test_undo_keeps_created_leads_the_person_has_engaged_with_since(run_import, org: Org) -> None:
    # A web-form submission or a merge is recorded without a user (created_by NULL): still engagement.
    job = run_import("name,email\nAnn,ann@example.com\nBob,bob@example.com\nCy,cy@example.com\n")
    ann = Lead.objects.get(email="ann@example.com")
    bob = Lead.objects.get(email="bob@example.com")
    InteractionFactory.create(lead=ann, type="form_submit", created_by=None)
    older = LeadFactory.create(email="", phone="")
    LeadMerge.objects.create(primary=bob, merged=older)

    services.import_undo(job=job, by=org.marketing)

    assert set(Lead.objects.filter(merged_into__isnull=True).values_list("email", flat=True)) >= {
        "ann@example.com",
        "bob@example.com",
    }
    assert not Lead.objects.filter(email="cy@example.com").exists()
    assert LeadMerge.objects.filter(primary=bob).exists()
