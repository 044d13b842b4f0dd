"""An import runs on a real Celery worker through Redis against PostgreSQL, and its leads are scored."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction

from leads import services
from leads.models import ImportJob, ImportStatus, Lead, OnDuplicate
from leads.services import imports as import_services
from tests.conftest import Org
from tests.factories import LeadFactory
from tests.pipeline.conftest import wait_until

pytestmark = pytest.mark.postgres


def test_a_real_worker_imports_a_gb18030_list_dedupes_and_scores_it(
    celery_worker_process: dict[str, str], org: Org
) -> None:
    existing = LeadFactory.create(email="dup@example.com", company="")
    rows = "".join(f"客户{i},1380013{i:04d},c{i}@example.com,公司{i}\n" for i in range(2500))
    text = "姓名,手机,邮箱,公司\n" + rows + "旧客户,,DUP@example.com,新公司\n"

    with transaction.atomic():
        job = services.import_create(
            file=SimpleUploadedFile("list.csv", text.encode("gb18030")),
            by=org.marketing,
            on_duplicate=OnDuplicate.UPDATE,
        )

    finished = wait_until(
        lambda: ImportJob.objects.filter(pk=job.pk, status__in=[ImportStatus.DONE, ImportStatus.FAILED]).first(),
        timeout=240,
    )
    job.refresh_from_db()
    assert finished is not None, f"the worker never finished the import: {job.status}, {job.processed}/{job.total}"
    assert finished.status == ImportStatus.DONE, finished.error
    assert (finished.total, finished.created, finished.updated, finished.failed) == (2501, 2500, 1, 0)
    assert finished.total > import_services.CHUNK_ROWS  # it ran in several chunks
    existing.refresh_from_db()
    assert existing.company == "新公司"
    # scoring ran set-based after the import: no lead is left dirty
    assert wait_until(lambda: not Lead.objects.filter(dirty_since__isnull=False).exists(), timeout=120)
    assert not Lead.objects.filter(import_job=job, scorecard__score_updated_at__isnull=True).exists()
