"""A manager opens the predictive model from the Scoring pages in a real browser and trains it."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from scoring.models import PredictiveModel, PredictiveStatus
from tests.browser.test_journey import sign_in
from tests.conftest import Org
from tests.scoring.test_predictive_services import seed

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.browser


def test_manager_trains_the_model_from_its_page(page: Page, org: Org) -> None:
    from playwright.sync_api import expect

    # given enough decided leads and no model yet
    seed(600)

    # when a manager goes Scoring → Predictive model
    sign_in(page, org.manager)
    page.get_by_test_id("nav-scoring").click()
    page.get_by_test_id("tab-model").click()

    # then the page says there is no model, and Train now trains one (the embedded setup runs it at once)
    expect(page.get_by_test_id("no-model")).to_contain_text("No predictive model is active yet.")
    page.get_by_test_id("train-button").click()
    expect(page.get_by_text("Training v1 is queued")).to_be_visible()
    expect(page.get_by_test_id("active-model")).to_contain_text("Active model v1")
    expect(page.get_by_test_id("top-factors")).to_contain_text("attribute “plan”")
    expect(page.get_by_test_id("training-1")).to_contain_text("Active")
    assert PredictiveModel.objects.get().status == PredictiveStatus.ACTIVE
