"""The /api/v1/imports/ endpoints: upload (202), preview, status, errors.csv, undo, and who may use them."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from leads.models import ImportJob, ImportRowError, ImportStatus, Lead, OnDuplicate
from tests.conftest import Org
from tests.factories import CampaignFactory, LeadFactory
from tests.leads.test_imports_reading import xlsx_bytes

URL = "/api/v1/imports/"


@pytest.fixture(autouse=True)
def _media_in_tmp(settings, tmp_path) -> None:
    """Uploaded lists go to a temporary MEDIA_ROOT, not the developer's media/ folder."""
    settings.MEDIA_ROOT = tmp_path


def csv_file(text: str, name: str = "list.csv", encoding: str = "utf-8") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, text.encode(encoding), content_type="text/csv")


@pytest.fixture
def marketing(org: Org, client_for):
    return client_for(org.marketing)


def post_import(client, django_capture_on_commit_callbacks, **data):
    with django_capture_on_commit_callbacks(execute=True):
        return client.post(URL, data, format="multipart")


def test_upload_answers_202_and_the_job_runs(marketing, django_capture_on_commit_callbacks) -> None:
    campaign = CampaignFactory.create()
    text = "姓名,手机,邮箱\n王伟,13800138000,wang@example.cn\n李娜,13900139000,li@example.cn\n"

    response = post_import(
        marketing,
        django_capture_on_commit_callbacks,
        file=csv_file(text, encoding="gb18030"),
        campaign=campaign.pk,
        tags="展会, vip",
        on_duplicate="update",
    )

    assert response.status_code == 202, response.json()
    body = response.json()
    assert body["status"] == ImportStatus.PENDING
    status = marketing.get(f"{URL}{body['id']}/").json()
    assert (status["status"], status["total"], status["processed"], status["created"]) == ("done", 2, 2, 2)
    assert status["encoding"] == "gb18030"
    assert status["progress"] == 100.0
    assert status["tags"] == ["vip", "展会"]
    assert set(Lead.objects.values_list("name", flat=True)) == {"王伟", "李娜"}


def test_a_mapping_sent_as_json_is_used(marketing, django_capture_on_commit_callbacks) -> None:
    text = "Who,Contact,Extra\nAnn,ann@example.com,keep me\n"

    response = post_import(
        marketing,
        django_capture_on_commit_callbacks,
        file=csv_file(text),
        mapping=json.dumps({"Who": "name", "Contact": "email", "Extra": ""}),
    )

    assert response.status_code == 202
    lead = Lead.objects.get()
    assert (lead.name, lead.email, lead.attributes) == ("Ann", "ann@example.com", {})


def test_xlsx_upload(marketing, django_capture_on_commit_callbacks) -> None:
    data = xlsx_bytes([["Name", "Mobile"], ["Ann", 13800138000]])

    response = post_import(marketing, django_capture_on_commit_callbacks, file=SimpleUploadedFile("list.xlsx", data))

    assert response.status_code == 202
    assert Lead.objects.get().phone == "+8613800138000"


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({}, "file"),
        ({"file": csv_file("", "empty.csv")}, "file"),
        ({"file": csv_file("name,email\n")}, "file"),
        ({"file": SimpleUploadedFile("x.csv", b"\x00\x01\x02\x03")}, "file"),
        ({"file": csv_file("name\nann\n", "list.docx")}, "file"),
        ({"file": csv_file("name\nann\n"), "mapping": "{not json"}, "mapping"),
        ({"file": csv_file("name\nann\n"), "mapping": json.dumps({"name": "salary"})}, "mapping"),
        ({"file": csv_file("name\nann\n"), "on_duplicate": "merge"}, "on_duplicate"),
        ({"file": csv_file("name\nann\n"), "campaign": 999999}, "campaign"),
    ],
    ids=[
        "no-file",
        "empty",
        "header-only",
        "binary",
        "wrong-type",
        "bad-json",
        "bad-target",
        "bad-mode",
        "no-campaign",
    ],
)
def test_bad_uploads_get_a_field_error_and_create_nothing(marketing, data: dict, field: str) -> None:
    response = marketing.post(URL, data, format="multipart")

    assert response.status_code == 400
    assert field in response.json(), response.json()
    assert not ImportJob.objects.exists()


def test_preview_shows_rows_guessed_mapping_and_what_was_detected(marketing) -> None:
    text = "\ufeff 姓名 ;手机;备注\n王伟;13800138000;=1+1\n" + "".join(f"人{i};1380013{i:04d};\n" for i in range(30))

    response = marketing.post(f"{URL}preview/", {"file": csv_file(text)}, format="multipart")

    assert response.status_code == 200
    body = response.json()
    assert (body["encoding"], body["delimiter"]) == ("utf-8-sig", ";")
    assert body["headers"] == ["姓名", "手机", "备注"]
    assert body["mapping"] == {"姓名": "name", "手机": "phone", "备注": "attr:notes"}
    assert len(body["rows"]) == 20
    assert body["rows"][0] == {"line": 2, "cells": ["王伟", "13800138000", "=1+1"]}
    assert "email" in body["targets"]
    assert not ImportJob.objects.exists()


def test_errors_csv_lists_rejected_rows_excel_safe_with_a_bom(marketing, django_capture_on_commit_callbacks) -> None:
    LeadFactory.create(email="dup@example.com")
    text = (
        'name,email,note\n=HYPERLINK("http://evil"),bad-address,+cmd\n王伟,dup@example.com,@x\nOk,ok@example.com,-1\n'
    )
    job_id = post_import(marketing, django_capture_on_commit_callbacks, file=csv_file(text)).json()["id"]

    response = marketing.get(f"{URL}{job_id}/errors.csv")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    raw = b"".join(response.streaming_content)
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert rows[0] == ["line", "reason", "name", "email", "note"]
    assert rows[1][0] == "2"
    assert "bad-address" in rows[1][1]
    assert rows[1][2:] == ['\'=HYPERLINK("http://evil")', "bad-address", "'+cmd"]
    assert rows[2][0] == "3"
    assert "Duplicate" in rows[2][1]
    assert rows[2][2:] == ["王伟", "dup@example.com", "'@x"]
    assert len(rows) == 3


def errors_csv_rows(client, job_id: int) -> list[list[str]]:
    response = client.get(f"{URL}{job_id}/errors.csv")
    assert response.status_code == 200
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))


def test_errors_csv_gives_skipped_duplicates_back_as_uploaded(marketing, django_capture_on_commit_callbacks) -> None:
    """A skipped duplicate's cells come back from the stored file: GB18030 text, a blank line, a quoted line
    break, a short row and cells beyond the header, between rejected rows, in line order."""
    LeadFactory.create(email="dup@example.com", phone="+8613800138000")
    text = (
        "姓名,邮箱,手机\n"
        "王伟,dup@example.com,\n"  # 2: duplicate of the lead (e-mail)
        "\n"  # 3: blank, not a row
        '"李\n娜",,138 0013 8000\n'  # 4: duplicate (phone), a line break in a quoted cell (one row in Excel)
        "张三,bad@,\n"  # 5: rejected
        "赵六,zhao@example.cn,,多出的格\n"  # 6: new lead, a cell beyond the header
        "赵六,Zhao@Example.cn\n"  # 7: duplicate of line 6, a short row
        "钱七,zhao@example.cn,,第四格\n"  # 8: duplicate of line 6, a cell beyond the header
    )
    job_id = post_import(marketing, django_capture_on_commit_callbacks, file=csv_file(text, encoding="gb18030")).json()[
        "id"
    ]

    rows = errors_csv_rows(marketing, job_id)

    assert rows[0] == ["line", "reason", "姓名", "邮箱", "手机", "Column 4"]
    assert [row[0] for row in rows[1:]] == ["2", "4", "5", "7", "8"]
    assert [row[2:] for row in rows[1:]] == [
        ["王伟", "dup@example.com", "", ""],
        ["李\n娜", "", "138 0013 8000", ""],
        ["张三", "bad@", "", ""],
        ["赵六", "Zhao@Example.cn", "", ""],
        ["钱七", "zhao@example.cn", "", "第四格"],
    ]
    assert "Duplicate" in rows[1][1]
    assert "line 6" in rows[4][1]
    assert "bad@" in rows[3][1]
    # What came back from the file was not stored twice: only the row with a cell beyond the header keeps its cells.
    stored = dict(ImportRowError.objects.filter(job_id=job_id).values_list("line_number", "row"))
    assert [line for line, row in stored.items() if row] == [5, 8]


def test_errors_csv_of_an_xlsx_file_reads_duplicates_back_from_it(
    marketing, django_capture_on_commit_callbacks
) -> None:
    LeadFactory.create(email="dup@example.com")
    book = xlsx_bytes(
        [["name", "email"], ["Ann", "dup@example.com"], ["Bob", "bob@example.com"], ["Ann", "DUP@example.com"]]
    )
    upload = SimpleUploadedFile("list.xlsx", book, content_type="application/octet-stream")
    job_id = post_import(marketing, django_capture_on_commit_callbacks, file=upload).json()["id"]

    rows = errors_csv_rows(marketing, job_id)

    assert [row[0] for row in rows] == ["line", "2", "4"]
    assert rows[1][2:] == ["Ann", "dup@example.com"]
    assert rows[2][2:] == ["Ann", "DUP@example.com"]


def test_errors_csv_without_the_file_keeps_lines_and_reasons(marketing, django_capture_on_commit_callbacks) -> None:
    LeadFactory.create(email="dup@example.com")
    text = "name,email\nAnn,dup@example.com\nBad,bad@\n"
    job_id = post_import(marketing, django_capture_on_commit_callbacks, file=csv_file(text)).json()["id"]
    job = ImportJob.objects.get(pk=job_id)
    job.file.storage.delete(job.file.name)

    rows = errors_csv_rows(marketing, job_id)

    # The headers come from the stored mapping; the duplicate's cells were in the file, the rejected row's are kept.
    assert [row[:1] for row in rows[1:]] == [["2"], ["3"]]
    assert "Duplicate" in rows[1][1]
    assert dict(zip(rows[0][2:], rows[2][2:], strict=True)) == {"email": "bad@", "name": "Bad"}
    assert set(rows[1][2:]) == {""}


def test_undo_through_the_api(marketing, django_capture_on_commit_callbacks) -> None:
    job_id = post_import(
        marketing, django_capture_on_commit_callbacks, file=csv_file("name\nAnn\nBob\n"), on_duplicate=OnDuplicate.SKIP
    ).json()["id"]

    with django_capture_on_commit_callbacks(execute=True):
        response = marketing.post(f"{URL}{job_id}/undo/")

    # Accepted and handed to a worker (eager here, run when the request's transaction commits).
    assert response.status_code == 202
    assert response.json()["status"] == "undoing"
    assert marketing.get(f"{URL}{job_id}/").json()["status"] == "undone"
    assert not Lead.objects.exists()
    assert marketing.post(f"{URL}{job_id}/undo/").status_code == 400


def test_list_shows_imports_newest_first(marketing, django_capture_on_commit_callbacks) -> None:
    for name in ("a.csv", "b.csv"):
        post_import(marketing, django_capture_on_commit_callbacks, file=csv_file("name\nAnn\n", name))

    body = marketing.get(URL).json()

    assert [job["original_filename"] for job in body["results"]] == ["b.csv", "a.csv"]


@pytest.mark.parametrize("role", ["rep", "manager"])
def test_reps_and_managers_may_not_import(org: Org, client_for, role: str) -> None:
    client = client_for(getattr(org, role))

    assert client.post(URL, {"file": csv_file("name\nAnn\n")}, format="multipart").status_code == 403
    assert client.get(URL).status_code == 403
    assert not ImportJob.objects.exists()


def test_admin_sees_imports_and_a_missing_job_is_404(
    org: Org, client_for, marketing, django_capture_on_commit_callbacks
) -> None:
    job_id = post_import(marketing, django_capture_on_commit_callbacks, file=csv_file("name\nAnn\n")).json()["id"]
    admin = client_for(org.admin)

    assert admin.get(f"{URL}{job_id}/").status_code == 200
    assert admin.get(f"{URL}{job_id + 1000}/").status_code == 404
    assert admin.get(f"{URL}{job_id + 1000}/errors.csv").status_code == 404
