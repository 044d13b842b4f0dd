"""Predictive-model writes: request a training, train and maybe activate, and store leads' probabilities."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

import numpy as np
from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone, translation

from common.db import pg_array
from leads.models import Lead, LeadScore
from scoring.models import PredictiveModel, PredictiveStatus
from scoring.predictive import policy, selectors
from scoring.predictive.features import LeadRecord

logger = logging.getLogger(__name__)

SCORE_CHUNK = 2000
# A training still "running" after this long died with its worker; a new request may start another.
STALE_TRAINING = timedelta(hours=2)

__all__ = [
    "NotEnoughData",
    "lead_probabilities_refresh_all",
    "lead_probabilities_update",
    "predictive_model_train",
    "predictive_training_request",
]

NotEnoughData = policy.NotEnoughData


def predictive_training_request(*, requested_by: Any = None, trigger: str = "manual") -> PredictiveModel:
    """Queue a training and return its row; a training already waiting or running is returned instead.

    Raises ``NotEnoughData`` at once (no row, no job) when too few leads have a known outcome.
    """
    positives, negatives = selectors.outcome_counts()
    if reason := policy.refusal(positives=positives, negatives=negatives):
        raise NotEnoughData(reason)
    with transaction.atomic():
        recent = timezone.now() - STALE_TRAINING
        busy = (
            PredictiveModel.objects.select_for_update()
            .filter(status__in=[PredictiveStatus.PENDING, PredictiveStatus.RUNNING], created_at__gte=recent)
            .defer("artifact")
            .first()
        )
        if busy is not None:
            return busy
        # Two requests at the same moment collide on the unique version: one fails, nothing is half-made.
        version = (PredictiveModel.objects.aggregate(v=Max("version"))["v"] or 0) + 1
        row = PredictiveModel.objects.create(version=version, trigger=trigger, requested_by=requested_by)
        transaction.on_commit(lambda: _enqueue_training(row.pk))
    return row


def _enqueue_training(model_id: int) -> None:
    from scoring.tasks import predictive_train_task

    predictive_train_task.delay(model_id)


def _enqueue_scoring(model_id: int) -> None:
    from scoring.tasks import predictive_score_all_task

    predictive_score_all_task.delay(model_id)


def predictive_model_train(*, model_id: int) -> PredictiveModel:
    """Train the model of row ``model_id``; activate it when its held-out AUC is at least the active one's.

    Both are measured on the same held-out leads (a fixed hash of the lead id, which no model trained
    on). Activation retires the previous model and queues scoring every lead. A redelivered task finds
    the row no longer waiting and does nothing.
    """
    now = timezone.now()
    claimed = PredictiveModel.objects.filter(pk=model_id, status=PredictiveStatus.PENDING).update(
        status=PredictiveStatus.RUNNING, started_at=now
    )
    row = PredictiveModel.objects.defer("artifact").get(pk=model_id)
    if not claimed:
        return row
    try:
        # Stored messages are in English whoever asked (an eager task runs in the requester's language);
        # the page translates them from the row's figures (``scoring.predictive.words.run_message``).
        with translation.override(None):
            _train_into(row)
    except NotEnoughData as exc:
        row.status, row.message = PredictiveStatus.REFUSED, str(exc)
    except Exception as exc:
        logger.exception("predictive: training v%s failed", row.version)
        row.status, row.message = PredictiveStatus.FAILED, repr(exc)[:2000]
    row.finished_at = timezone.now()
    row.save(update_fields=["status", "message", "finished_at"])
    return row


def _train_into(row: PredictiveModel) -> None:
    import sklearn

    from scoring.predictive import learning

    rows = list(selectors.labelled_leads())
    labels = [selectors.LABELS[r["stage"]] for r in rows]
    ids = [int(r["id"]) for r in rows]
    row.n_positive, row.n_negative = sum(labels), len(labels) - sum(labels)
    row.save(update_fields=["n_positive", "n_negative"])
    records = selectors.lead_records(rows=rows, now=timezone.now())
    result = learning.train(records, labels, ids)
    row.n_train, row.n_test = result.n_train, result.n_test
    row.auc, row.log_loss, row.cv_auc = result.evaluation.auc, result.evaluation.log_loss, result.cv_auc
    row.features = [{"key": f.key, "label": f.label, "kind": f.kind} for f in result.model.space.features]
    row.top_factors = [factor.as_json() for factor in result.top_factors]
    row.params = result.model.params
    row.sklearn_version = sklearn.__version__
    row.previous_auc = _active_auc_on(records, labels, ids, exclude=row.pk)
    fields = ["n_train", "n_test", "auc", "log_loss", "cv_auc", "features", "top_factors", "params"]
    fields += ["sklearn_version", "previous_auc"]
    if row.previous_auc is not None and row.auc < row.previous_auc:
        row.status = PredictiveStatus.REJECTED
        row.message = (
            f"Held-out AUC {row.auc:.3f} is below the active model's {row.previous_auc:.3f} on the same leads; "
            "the active model stays."
        )
        row.save(update_fields=fields)
        return
    row.artifact, row.artifact_sha256 = learning.dump(result.model)
    with transaction.atomic():
        previous = PredictiveModel.objects.select_for_update().filter(is_active=True).exclude(pk=row.pk)
        previous.update(is_active=False, status=PredictiveStatus.RETIRED)
        row.status, row.is_active = PredictiveStatus.ACTIVE, True
        row.save(update_fields=[*fields, "artifact", "artifact_sha256", "status", "is_active"])
        transaction.on_commit(lambda: _enqueue_scoring(row.pk))


def _active_auc_on(
    records: Sequence[LeadRecord], labels: Sequence[int], ids: Sequence[int], exclude: int
) -> float | None:
    """The active model's AUC on the held-out leads of this training; None if there is none it can use."""
    loaded = selectors.fitted_model_active()
    if loaded is None or loaded[0].pk == exclude:
        return None
    from scoring.predictive import learning

    test = policy.heldout_mask(ids)
    y = np.asarray(labels)[test]
    held_out = [r for r, t in zip(records, test, strict=True) if t]
    return learning.evaluate(loaded[1], held_out, y).auc


def lead_probabilities_update(*, rows: Sequence[Mapping[str, Any]] | None = None, leads: Sequence[Lead] = ()) -> int:
    """Predict and store ``conversion_probability`` for a batch (rows as ``selectors.RECORD_COLUMNS`` or
    lead instances): one query for the model, one for the events, one prediction, one UPDATE.
    Returns how many leads were written (0 without an active model)."""
    batch = list(rows) if rows is not None else [selectors.lead_row(lead) for lead in leads]
    loaded = selectors.fitted_model_active() if batch else None
    if loaded is None:
        return 0
    records = selectors.lead_records(rows=batch, now=timezone.now())
    probabilities = loaded[1].probabilities(records)
    ids = [int(row["id"]) for row in batch]
    _write_probabilities(ids, [round(float(p), 6) for p in probabilities])
    return len(ids)


def _write_probabilities(ids: list[int], probabilities: list[float]) -> None:
    if connection.vendor != "postgresql":
        LeadScore.objects.bulk_update(
            [LeadScore(lead_id=pk, conversion_probability=p) for pk, p in zip(ids, probabilities, strict=True)],
            ["conversion_probability"],
            batch_size=500,
        )
        return
    table = connection.ops.quote_name(LeadScore._meta.db_table)
    with connection.cursor() as cursor:
        # Only rows whose value moves are rewritten: an unchanged row costs no new version nor index entries.
        cursor.execute(
            f"UPDATE {table} AS s SET conversion_probability = v.p"
            " FROM unnest(%s::bigint[], %s::double precision[]) AS v(id, p)"
            " WHERE s.lead_id = v.id AND s.conversion_probability IS DISTINCT FROM v.p",
            [pg_array(ids), pg_array(probabilities)],
        )


def lead_probabilities_refresh_all(*, model_id: int) -> int:
    """Score every lead with model ``model_id`` in id-ordered chunks, while it is still the active one.

    Set-based per chunk (``lead_probabilities_update``); running it twice writes the same values.
    """
    done = 0
    last_id = 0
    while True:
        active = selectors.predictive_model_active()
        if active is None or active.pk != model_id:
            break  # a newer model took over; its own job scores everyone
        chunk = list(Lead.objects.filter(pk__gt=last_id).order_by("pk").values(*selectors.RECORD_COLUMNS)[:SCORE_CHUNK])
        if not chunk:
            PredictiveModel.objects.filter(pk=model_id).update(leads_scored=done, scored_at=timezone.now())
            break
        done += lead_probabilities_update(rows=chunk)
        last_id = int(chunk[-1]["id"])
    return done
