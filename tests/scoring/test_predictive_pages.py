"""The predictive model's page: who may see and train, no model, refused and rejected runs, a trained model's
figures and factors in words (English and Chinese), and escaping of attribute names in factor labels."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone, translation

from leads.models import Lead, Stage
from leads.selectors import EventTypeLabels
from scoring.models import PredictiveModel, PredictiveStatus
from scoring.predictive import words
from tests.conftest import Org
from tests.scoring.test_predictive_services import seed, train
from users.models import User

pytestmark = pytest.mark.django_db

PAGE = "/scoring/model/"
# The layout's 5 (session, user, permissions, groups, overdue tasks), then the active model and who asked
# for it, the outcome counts, the lead count, the history and a training in progress: none per training.
QUERIES = 11
TRAIN = "/scoring/model/train/"


def signed_in(user: User, *, language: str = "") -> Client:
    client = Client(headers={"accept-language": language} if language else {})
    client.force_login(user)
    return client


def test_the_page_is_reached_from_the_scoring_pages() -> None:
    assert reverse("scoring:model") == PAGE


def test_a_rep_can_neither_see_the_page_nor_train(org: Org, django_capture_on_commit_callbacks: Any) -> None:
    seed(400)
    rep = signed_in(org.rep)

    assert rep.get(PAGE).status_code == 403
    with django_capture_on_commit_callbacks(execute=True):
        assert rep.post(TRAIN).status_code == 403
    assert not PredictiveModel.objects.exists()
    assert 'data-testid="tab-model"' not in rep.get("/leads/").content.decode()


def test_marketing_sees_the_page_and_its_tab_but_no_train_button_and_cannot_post(org: Org) -> None:
    seed(400)
    marketing = signed_in(org.marketing)

    rule_sets = marketing.get("/scoring/").content.decode()
    page = marketing.get(PAGE)

    assert f'href="{PAGE}"' in rule_sets
    assert page.status_code == 200
    assert 'data-testid="train-button"' not in page.content.decode()
    assert marketing.post(TRAIN).status_code == 403
    assert not PredictiveModel.objects.exists()


def test_without_enough_outcomes_the_page_says_why_and_train_now_is_refused(org: Org) -> None:
    seed(150)  # about 110 labelled leads: too few
    manager = signed_in(org.manager)

    html = manager.get(PAGE).content.decode()

    assert 'data-testid="no-model"' in html
    assert "Not enough leads with a known outcome to train" in html
    assert "at least 200 in all and 20 of each are needed" in html
    assert "No training yet." in html

    response = manager.post(TRAIN, follow=True)

    assert response.redirect_chain[-1][0] == PAGE
    assert 'role="alert">Not enough leads with a known outcome to train' in response.content.decode()
    assert not PredictiveModel.objects.exists()


def test_train_now_queues_a_run_and_the_page_shows_the_model_with_its_factors_in_words(
    org: Org, django_capture_on_commit_callbacks: Any
) -> None:
    seed(600)
    manager = signed_in(org.manager)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = manager.post(TRAIN)

    # queued, not yet run: the page says so and offers no second start
    assert response.status_code == 302
    assert len(callbacks) == 1
    row = PredictiveModel.objects.get()
    assert row.status == PredictiveStatus.PENDING
    assert row.requested_by == org.manager
    html = manager.get(PAGE).content.decode()
    assert "Training v1 is queued" in html
    assert 'data-testid="training-in-progress"' in html
    assert "waits for a worker" in html
    assert 'http-equiv="refresh"' in html
    assert "disabled>Train now" in html

    # a second press while it waits starts nothing new
    manager.post(TRAIN)
    assert PredictiveModel.objects.count() == 1

    # when the worker has run it (and, once it is active, scored every lead)
    with django_capture_on_commit_callbacks(execute=True):
        callbacks[0]()
    row.refresh_from_db()
    assert row.status == PredictiveStatus.ACTIVE, row.message
    html = manager.get(PAGE).content.decode()

    assert 'data-testid="training-in-progress"' not in html
    assert 'data-testid="active-model"' in html
    assert f'data-testid="model-auc">{row.auc:.3f}<' in html
    assert f'data-testid="model-log-loss">{row.log_loss:.3f}<' in html
    assert f'data-testid="model-labelled">{row.n_positive + row.n_negative}<' in html
    assert f'data-testid="model-converted">{row.n_positive}<' in html
    converted, lost = (Lead.objects.filter(stage=stage).count() for stage in (Stage.CONVERTED, Stage.LOST))
    assert f"Leads with a known outcome now: {converted} converted, {lost} lost or disqualified." in html
    assert 'data-testid="model-scored">100.0%<' in html
    assert "requested by manager" in html
    # the top factor reads as words built from its feature key
    assert "attribute “plan”" in html
    assert "attr:plan" not in html


def test_a_run_that_was_worse_and_one_that_was_refused_are_listed_with_why(
    org: Org, django_capture_on_commit_callbacks: Any, django_assert_max_num_queries: Any
) -> None:
    seed(600)
    first = train(django_capture_on_commit_callbacks)
    rejected = PredictiveModel.objects.create(
        version=2, status=PredictiveStatus.REJECTED, auc=0.61, previous_auc=0.74, n_positive=200, n_negative=220,
        message="Held-out AUC 0.610 is below the active model's 0.740 on the same leads; the active model stays.",
    )  # fmt: skip
    refused = PredictiveModel.objects.create(
        version=3, status=PredictiveStatus.REFUSED, n_positive=12, n_negative=150, message="(stored text)"
    )
    failed = PredictiveModel.objects.create(
        version=4, status=PredictiveStatus.FAILED, message="MemoryError('out of memory')"
    )

    client = signed_in(org.marketing)
    client.get(PAGE)  # the session and the user's permissions are loaded once
    with django_assert_max_num_queries(QUERIES):  # however many trainings (at most 20 are listed)
        html = client.get(PAGE).content.decode()

    assert f'data-testid="training-{first.version}"' in html
    assert "the previous model was kept" in html
    assert "Held-out AUC 0.610 is below the active model&#x27;s 0.740" in html
    assert "Rejected (not better than the active model)" in html
    assert "12 converted and 150 lost or disqualified" in html
    assert "Refused (too little data)" in html
    assert "MemoryError(&#x27;out of memory&#x27;)" in html
    assert [rejected.pk, refused.pk, failed.pk]  # rows exist; the active model is still v1
    assert 'data-testid="active-model"' in html
    assert "Active model v1" in html


def test_the_page_and_the_lead_factors_read_in_chinese(org: Org, django_capture_on_commit_callbacks: Any) -> None:
    seed(600)
    train(django_capture_on_commit_callbacks)
    PredictiveModel.objects.create(version=2, status=PredictiveStatus.REFUSED, n_positive=12, n_negative=150)
    lead = Lead.objects.filter(attributes__plan="enterprise", stage=Stage.NEW).first()
    assert lead is not None

    client = signed_in(org.admin, language="zh-hans")  # an admin sees every lead
    html = client.get(PAGE).content.decode()
    lead_html = client.get(f"/leads/{lead.pk}/").content.decode()

    assert '<html lang="zh-hans">' in html
    assert "预测模型" in html
    assert "属性“plan”" in html
    assert "attribute “plan”" not in html
    assert "已转化 12 条" in html  # the refusal, rebuilt from the row's figures in the reader's language
    assert "属性“plan” = enterprise" in lead_html
    assert "attribute “plan”" not in lead_html


def test_an_attribute_named_like_a_tag_is_shown_as_text(org: Org, django_capture_on_commit_callbacks: Any) -> None:
    seed(600)
    row = train(django_capture_on_commit_callbacks)
    # a stored factor for a custom attribute whose key is markup (imports keep column names as they come)
    row.top_factors = [{"feature": "attr:<script>alert(1)</script>", "label": "x", "weight": 0.2}, *row.top_factors]
    row.save(update_fields=["top_factors"])

    html = signed_in(org.manager).get(PAGE).content.decode()

    assert "<script>alert(1)</script>" not in html
    assert "attribute “&lt;script&gt;alert(1)&lt;/script&gt;”" in html


def test_an_old_stored_factor_without_a_key_keeps_its_label_and_a_removed_column_does_not_break_the_page(
    org: Org, django_capture_on_commit_callbacks: Any
) -> None:
    seed(600)
    row = train(django_capture_on_commit_callbacks)
    row.top_factors = [
        {"label": "legacy words", "weight": 0.1},
        {"feature": "field:no_such_column", "label": "no_such_column", "weight": 0.05},
    ]
    row.save(update_fields=["top_factors"])

    response = signed_in(org.manager).get(PAGE)

    assert response.status_code == 200
    html = response.content.decode()
    assert "legacy words" in html
    assert "no_such_column" in html


@pytest.mark.parametrize(
    ("key", "value", "english", "chinese"),
    [
        ("derived:email_domain", "free", "free mail", "免费邮箱"),
        ("derived:seniority", "director", "director", "总监"),
        ("has:phone", "1", "yes", "是"),
        ("title:sales", "0", "no", "否"),
        ("attr:plan", "enterprise", "enterprise", "enterprise"),
    ],
)
def test_factor_values_are_words_in_the_readers_language(key: str, value: str, english: str, chinese: str) -> None:
    with translation.override("en"):
        assert words.factor_value(key, value) == english
    with translation.override("zh-hans"):
        assert words.factor_value(key, value) == chinese


def test_factor_labels_use_the_leads_column_names_in_the_readers_language(db: None) -> None:
    with translation.override("en"):
        assert words.factor_label("has:phone") == "has phone"
        assert words.factor_label("field:utm_source") == "UTM source"
        assert words.factor_label("recent:demo_request", event_labels=EventTypeLabels()) == (
            "Demo request events (last 30 days)"
        )
    with translation.override("zh-hans"):
        assert words.factor_label("derived:seniority") == "职位级别"
        assert words.factor_label("events:demo_request", event_labels=EventTypeLabels()) == "预约演示 事件数"
        assert "“<b>”" in words.factor_label("attr:<b>")  # plain text here; the template escapes it


def test_a_training_left_waiting_by_a_dead_worker_does_not_block_train_now(
    org: Org, django_capture_on_commit_callbacks: Any
) -> None:
    seed(400)
    PredictiveModel.objects.create(version=1, created_at=timezone.now() - timedelta(hours=3))
    manager = signed_in(org.manager)

    html = manager.get(PAGE).content.decode()

    assert 'data-testid="training-in-progress"' not in html
    assert "disabled>Train now" not in html
    with django_capture_on_commit_callbacks(execute=True):
        manager.post(TRAIN)
    assert PredictiveModel.objects.get(version=2).status == PredictiveStatus.ACTIVE
