"""Predictive-model reads: the lead facts the model sees (set-based), the active model, its history, a lead's factors."""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.db.models import Case, Count, DateTimeField, ExpressionWrapper, F, Q, QuerySet, Value, When
from django.utils import timezone

from leads.models import Interaction, Lead, Stage
from leads.selectors import EventTypeLabels
from scoring.models import PredictiveModel, PredictiveStatus
from scoring.predictive import words
from scoring.predictive.features import RECORD_FIELDS, LeadRecord
from scoring.predictive.policy import IncompatibleModel

if TYPE_CHECKING:  # scikit-learn is imported only by the code that trains or predicts
    from scoring.predictive.learning import FittedModel

RECENT_DAYS = 30
HISTORY_LIMIT = 20
# Columns a record needs (RECORD_FIELDS, plus what decides the label and the cut-off of its events).
RECORD_COLUMNS = ("id", "stage", "converted_at", "lost_at", "attributes", *RECORD_FIELDS)
LABELS = {Stage.CONVERTED: 1, Stage.LOST: 0}


def labelled_leads() -> QuerySet[Lead, dict[str, Any]]:
    """Leads whose outcome is known (converted: 1; lost or disqualified: 0), merged pointers excluded."""
    leads = Lead.objects.filter(stage__in=list(LABELS), merged_into__isnull=True).order_by("pk")
    rows: QuerySet[Lead, dict[str, Any]] = leads.values(*RECORD_COLUMNS)
    return rows


def outcome_counts() -> tuple[int, int]:
    """(converted, lost) among the leads a training would use, in one query."""
    counts = Lead.objects.filter(stage__in=list(LABELS), merged_into__isnull=True).aggregate(
        positive=Count("id", filter=Q(stage=Stage.CONVERTED)), negative=Count("id", filter=Q(stage=Stage.LOST))
    )
    return int(counts["positive"]), int(counts["negative"])


def event_counts(*, lead_ids: Sequence[int], now: datetime) -> dict[int, dict[str, tuple[int, int]]]:
    """Per lead and event type, (all, last 30 days) interactions up to the lead's cut-off, in one query.

    The cut-off is the outcome time for a converted or lost lead and ``now`` otherwise: what happened
    after a lead converted (onboarding calls…) must not teach the model that such leads convert.
    """
    cutoff = Case(
        When(lead__stage=Stage.CONVERTED, lead__converted_at__isnull=False, then=F("lead__converted_at")),
        When(lead__stage=Stage.LOST, lead__lost_at__isnull=False, then=F("lead__lost_at")),
        default=Value(now),
        output_field=DateTimeField(),
    )
    since = ExpressionWrapper(F("cutoff") - Value(timedelta(days=RECENT_DAYS)), output_field=DateTimeField())
    rows = (
        Interaction.objects.filter(lead_id__in=list(lead_ids))
        .annotate(cutoff=cutoff)
        .filter(occurred_at__lte=F("cutoff"))
        .values("lead_id", "type")
        .annotate(total=Count("id"), recent=Count("id", filter=Q(occurred_at__gt=since)))
        .order_by()
    )
    counts: dict[int, dict[str, tuple[int, int]]] = defaultdict(dict)
    for row in rows:
        counts[row["lead_id"]][row["type"]] = (int(row["total"]), int(row["recent"]))
    return counts


def lead_records(*, rows: Sequence[Mapping[str, Any]], now: datetime) -> list[LeadRecord]:
    """Records for ``rows`` (``labelled_leads()`` values, or the same columns of leads) with their event counts."""
    counts = event_counts(lead_ids=[int(row["id"]) for row in rows], now=now)
    return [
        LeadRecord(
            fields={name: row.get(name) for name in RECORD_FIELDS},
            attributes=row["attributes"] if isinstance(row.get("attributes"), dict) else {},
            events=counts.get(int(row["id"]), {}),
        )
        for row in rows
    ]


def lead_row(lead: Lead) -> dict[str, Any]:
    """A lead instance as the row ``lead_records`` reads."""
    return {name: getattr(lead, name) for name in RECORD_COLUMNS}


def predictive_model_active() -> PredictiveModel | None:
    """The active model's row without the serialized model (one query)."""
    return PredictiveModel.objects.filter(is_active=True).defer("artifact").first()


def predictive_model_history(*, limit: int = HISTORY_LIMIT) -> list[PredictiveModel]:
    """The latest trainings, newest first, without their serialized models."""
    return list(PredictiveModel.objects.defer("artifact").select_related("requested_by").order_by("-version")[:limit])


_cache_lock = threading.Lock()
_cache: dict[str, Any] = {}


def fitted_model_active() -> tuple[PredictiveModel, FittedModel] | None:
    """The active model, loaded once per process and version (one query when cached, two on a change).

    None when no model is active or the stored one cannot be loaded here (another scikit-learn version).
    """
    row = predictive_model_active()
    if row is None:
        return None
    key = f"{row.pk}:{row.artifact_sha256}"
    with _cache_lock:
        if _cache.get("key") == key:
            return row, _cache["model"]
    data = PredictiveModel.objects.filter(pk=row.pk).values_list("artifact", flat=True).first()
    if data is None:
        return None
    from scoring.predictive import learning

    try:
        model = learning.load(bytes(data), sha256=row.artifact_sha256, sklearn_version=row.sklearn_version)
    except IncompatibleModel:
        return None
    with _cache_lock:
        _cache.update(key=key, model=model)
    return row, model


@dataclass
class LeadPrediction:
    probability: float | None
    model_version: int
    model_auc: float | None
    factors: list[dict[str, Any]]


def lead_prediction(*, lead: Lead, event_labels: EventTypeLabels | None = None) -> LeadPrediction | None:
    """The lead's stored probability and the facts that move it most under the active model; None without one.

    Each factor carries its label and value in the active language (``label``, ``value_label``); ``value``
    stays as the model saw it. Pass the request's ``event_labels`` to name event types without a query of
    their own.
    """
    loaded = fitted_model_active()
    if loaded is None:
        return None
    row, model = loaded
    record = lead_records(rows=[lead_row(lead)], now=timezone.now())[0]
    labels = event_labels if event_labels is not None else EventTypeLabels()
    factors = [
        {
            **factor.as_json(),
            "label": words.factor_label(factor.feature, event_labels=labels),
            "value_label": words.factor_value(factor.feature, factor.value),
        }
        for factor in model.explain(record)
    ]
    return LeadPrediction(lead.conversion_probability, row.version, row.auc, factors)


def predictive_training_in_progress(*, since: datetime) -> PredictiveModel | None:
    """The training waiting or running that was requested after ``since`` (an older one died with its worker)."""
    busy = [PredictiveStatus.PENDING, PredictiveStatus.RUNNING]
    return (
        PredictiveModel.objects.filter(status__in=busy, created_at__gte=since)
        .defer("artifact")
        .order_by("-version")
        .first()
    )


def lead_count() -> int:
    """All leads, as a model's scoring pass walks them (merged pointers included), in one query."""
    return Lead.objects.count()
