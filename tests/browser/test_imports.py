"""A marketer imports a Chinese campaign list in a real browser: preview, remap a column, watch it finish."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest
from django.urls import reverse

from leads.models import ImportJob, Lead
from tests.browser.test_journey import sign_in
from tests.conftest import Org

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.browser

LIST = (
    "姓名,手机,邮箱,公司,会员编号\n"
    "王伟,138 0013 8000,wang@example.cn,上海某某科技,A-1\n"
    "李娜,139-0013-9000,li@example.cn,北京某某公司,A-2\n"
    "<b>坏</b>,12345,,,A-3\n"
).encode("gb18030")


@pytest.fixture(autouse=True)
def _media_in_tmp(settings, tmp_path) -> None:
    """Uploaded lists go to a temporary MEDIA_ROOT, not the developer's media/ folder."""
    settings.MEDIA_ROOT = tmp_path


def test_marketer_previews_maps_and_runs_an_import_to_the_end(page: Page, org: Org) -> None:
    from playwright.sync_api import expect

    # given a marketer on the import wizard
    sign_in(page, org.marketing)
    page.get_by_test_id("nav-imports").click()
    page.get_by_role("link", name="Import a list").click()
    # The wizard's script is deferred; a click only waits for the navigation to commit, and a file chosen
    # before the script attached its listener would never be previewed (no person is that fast).
    page.wait_for_url(re.compile(r"/imports/new/$"), wait_until="load")

    # when they choose a GB18030 file exported from Excel
    page.get_by_label("File").set_input_files({"name": "展会名单.csv", "mimeType": "text/csv", "buffer": LIST})

    # then the preview shows the rows, decoded, with a guessed mapping per column
    preview = page.get_by_test_id("import-preview")
    expect(preview).to_contain_text("上海某某科技")
    expect(page.get_by_test_id("import-detected")).to_contain_text("gb18030")
    expect(page.get_by_role("combobox", name="手机")).to_have_value("phone")
    expect(preview.locator("tbody tr")).to_have_count(3)
    expect(preview).to_contain_text("<b>坏</b>")  # shown as text, not markup

    # when they ignore the membership column and start
    page.get_by_role("combobox", name="会员编号").select_option("")
    page.get_by_label("Tags").fill("展会2026")
    page.get_by_role("button", name="Start import").click()

    # then the job page shows a full progress bar and the counts
    expect(page).to_have_url(re.compile(r"/imports/\d+/$"))
    expect(page.get_by_test_id("import-status")).to_have_text("Done", timeout=20_000)
    expect(page.get_by_test_id("import-bar")).to_have_attribute("value", "100")
    expect(page.get_by_test_id("count-created")).to_have_text("2")
    expect(page.get_by_test_id("count-failed")).to_have_text("1")
    job = ImportJob.objects.get()
    assert job.original_filename == "展会名单.csv"
    assert sorted(Lead.objects.values_list("phone", flat=True)) == ["+8613800138000", "+8613900139000"]
    assert all(lead.attributes == {} for lead in Lead.objects.all())

    # and the imports list shows the job
    page.goto(reverse("leads:import_list"))
    expect(page.get_by_test_id("import-row")).to_have_count(1)


def test_the_progress_bar_follows_a_running_job_live(page: Page, org: Org) -> None:
    from playwright.sync_api import expect

    # given a job a worker is half-way through
    job = ImportJob.objects.create(
        original_filename="big.csv", file="imports/big.csv", status="running", total=4000, processed=1000,
        created=900, failed=100, created_by=org.marketing,
    )  # fmt: skip
    sign_in(page, org.marketing)
    page.goto(reverse("leads:import_detail", kwargs={"job_id": job.pk}))
    expect(page.get_by_test_id("import-bar")).to_have_attribute("value", "25")

    # when the worker commits more chunks, then the page follows without a reload
    ImportJob.objects.filter(pk=job.pk).update(processed=3000, created=2800)
    expect(page.get_by_test_id("import-bar")).to_have_attribute("value", "75")
    expect(page.get_by_test_id("count-created")).to_have_text("2800")

    # when it finishes, the bar is full and the status says so
    ImportJob.objects.filter(pk=job.pk).update(processed=4000, created=3800, status="done")
    expect(page.get_by_test_id("import-status")).to_have_text("Done")
    expect(page.get_by_test_id("import-bar")).to_have_attribute("value", "100")
