"""Import pages: the wizard, the job page with its progress bar, the list, undo, and who may open them."""

from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from leads.models import ImportJob, ImportStatus, Lead
from tests.conftest import Org
from users.models import User


@pytest.fixture(autouse=True)
def _media_in_tmp(settings, tmp_path) -> None:
    """Uploaded lists go to a temporary MEDIA_ROOT, not the developer's media/ folder."""
    settings.MEDIA_ROOT = tmp_path


def signed_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def start_import(client: Client, capture, text: str, name: str = "list.csv", **extra: str):
    data = {"file": SimpleUploadedFile(name, text.encode()), "source": "import", "on_duplicate": "skip", **extra}
    with capture(execute=True):
        return client.post(reverse("leads:import_new"), data)


def test_marketing_finds_imports_in_the_navigation(org: Org) -> None:
    html = signed_in(org.marketing).get(reverse("leads:list")).content.decode()

    assert 'data-testid="nav-imports"' in html


@pytest.mark.parametrize("url_name", ["leads:import_list", "leads:import_new"])
def test_reps_may_not_open_import_pages(org: Org, url_name: str) -> None:
    client = signed_in(org.rep)

    assert client.get(reverse(url_name)).status_code == 403
    assert 'data-testid="nav-imports"' not in client.get(reverse("leads:list")).content.decode()


def test_the_wizard_starts_an_import_with_the_chosen_mapping(org: Org, django_capture_on_commit_callbacks) -> None:
    client = signed_in(org.marketing)
    assert client.get(reverse("leads:import_new")).status_code == 200

    response = start_import(
        client,
        django_capture_on_commit_callbacks,
        "Who,Mail,Memo\nAnn,ann@example.com,hello\n",
        tags="展会, vip",
        mapping=json.dumps({"Who": "name", "Mail": "email", "Memo": ""}),
    )

    job = ImportJob.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("leads:import_detail", kwargs={"job_id": job.pk})
    assert job.status == ImportStatus.DONE
    assert job.tags == ["vip", "展会"]
    lead = Lead.objects.get()
    assert (lead.name, lead.email, lead.attributes) == ("Ann", "ann@example.com", {})


def test_the_wizard_shows_a_bad_file_error_on_the_file_field(org: Org, django_capture_on_commit_callbacks) -> None:
    response = start_import(signed_in(org.marketing), django_capture_on_commit_callbacks, "name,email\n")

    assert response.status_code == 200
    assert "header row but no data rows" in response.content.decode()
    assert not ImportJob.objects.exists()


def test_the_job_page_shows_counts_progress_and_an_escaped_file_name(
    org: Org, django_capture_on_commit_callbacks
) -> None:
    client = signed_in(org.marketing)
    start_import(
        client,
        django_capture_on_commit_callbacks,
        "name,email\nAnn,ann@example.com\nBob,bad\n",
        name="<img src=x onerror=alert(1)>.csv",
    )
    job = ImportJob.objects.get()

    html = client.get(reverse("leads:import_detail", kwargs={"job_id": job.pk})).content.decode()

    assert "<img src=x" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;.csv" in html
    assert 'data-testid="count-created">1<' in html
    assert 'data-testid="count-failed">1<' in html
    assert 'value="100"' in html
    assert f"/api/v1/imports/{job.pk}/errors.csv" in html
    assert 'data-testid="undo-form"' in html
    listing = client.get(reverse("leads:import_list")).content.decode()
    assert listing.count('data-testid="import-row"') == 1


def test_undo_from_the_job_page(org: Org, django_capture_on_commit_callbacks) -> None:
    client = signed_in(org.marketing)
    start_import(client, django_capture_on_commit_callbacks, "name\nAnn\nBob\n")
    job = ImportJob.objects.get()

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("leads:import_undo", kwargs={"job_id": job.pk}))

    assert response.status_code == 302  # back to the job page, which follows the worker's undo
    job.refresh_from_db()
    assert job.status == ImportStatus.UNDONE
    assert not Lead.objects.exists()
    html = client.get(reverse("leads:import_detail", kwargs={"job_id": job.pk})).content.decode()
    assert 'data-testid="undo-form"' not in html


def test_a_missing_import_is_404(org: Org) -> None:
    assert signed_in(org.marketing).get(reverse("leads:import_detail", kwargs={"job_id": 999})).status_code == 404
