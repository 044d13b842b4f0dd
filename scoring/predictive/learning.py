"""Training, evaluation and explanation of the predictive model (scikit-learn, no ORM).

The model is a ``HistGradientBoostingClassifier`` over a ``FeatureSpace``: categorical columns and
missing values are handled natively by the trees, which is why it is preferred over a logistic
regression here (docs/scoring.md, "Predictive score", gives the full argument and the benchmark).
"""

from __future__ import annotations

import hashlib
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import joblib
import numpy as np
import sklearn
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.inspection import permutation_importance
from sklearn.metrics import log_loss, roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_score, train_test_split

from scoring.predictive.features import FeatureSpace, LeadRecord
from scoring.predictive.policy import IncompatibleModel, NotEnoughData, heldout_mask, refusal

TOP_FACTORS = 10
# The setting is chosen by cross-validation on at most this many training leads (a stratified sample).
CV_MAX_ROWS = 20_000
LEAD_FACTORS = 5
IMPORTANCE_REPEATS = 3
IMPORTANCE_MAX_ROWS = 5_000


def _candidates(n_train: int) -> list[dict[str, Any]]:
    """A few settings from cautious to flexible (a tie keeps the more cautious one); leaf sizes scale with
    the data so that small sets are not overfit."""
    stop = n_train >= 1000  # early stopping needs enough leads for its own validation split
    common = {"early_stopping": stop, "validation_fraction": 0.15, "n_iter_no_change": 30, "random_state": 0}
    return [
        {
            "early_stopping": False,
            "random_state": 0,
            "learning_rate": 0.02,
            "max_leaf_nodes": 4,
            "min_samples_leaf": max(5, round(0.025 * n_train)),
            "l2_regularization": 1.0,
            "max_iter": 250,
        },
        {
            **common,
            "learning_rate": 0.03,
            "max_depth": 3,
            "max_leaf_nodes": 8,
            "min_samples_leaf": max(5, round(0.02 * n_train)),
            "l2_regularization": 5.0,
            "max_iter": 400 if stop else 150,
        },
        {
            **common,
            "learning_rate": 0.05,
            "max_leaf_nodes": 15,
            "min_samples_leaf": max(5, round(0.01 * n_train)),
            "l2_regularization": 1.0,
            "max_iter": 300 if stop else 100,
        },
        {
            **common,
            "learning_rate": 0.1,
            "max_leaf_nodes": 31,
            "min_samples_leaf": max(5, round(0.005 * n_train)),
            "l2_regularization": 0.0,
            "max_iter": 200 if stop else 60,
        },
    ]


@dataclass
class Factor:
    """A feature and how much it matters: AUC lost when shuffled (model) or log-odds moved (lead)."""

    feature: str
    label: str
    weight: float
    value: str = ""

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"feature": self.feature, "label": self.label, "weight": round(self.weight, 4)}
        if self.value:
            data["value"] = self.value
        return data


@dataclass
class FittedModel:
    """The feature space and the fitted classifier: what is serialized and loaded again to score leads."""

    space: FeatureSpace
    estimator: HistGradientBoostingClassifier
    params: dict[str, Any] = field(default_factory=dict)

    def probabilities(self, records: Sequence[LeadRecord]) -> np.ndarray:
        if not records:
            return np.zeros(0)
        return np.asarray(self.estimator.predict_proba(self.space.transform(records))[:, 1])

    def explain(self, record: LeadRecord, top: int = LEAD_FACTORS) -> list[Factor]:
        """The facts that move this lead's probability most: for each known fact, the change in log-odds
        between the lead as it is and the same lead with that one fact unknown (a missing value, which
        the trees handle natively). Exact for this model and lead; not additive across facts."""
        row = self.space.transform([record])
        known = [j for j in range(row.shape[1]) if not math.isnan(row[0, j])]
        if not known:
            return []
        variants = np.repeat(row, len(known) + 1, axis=0)
        for i, j in enumerate(known, start=1):
            variants[i, j] = np.nan
        p = np.clip(self.estimator.predict_proba(variants)[:, 1], 1e-6, 1 - 1e-6)
        logit = np.log(p / (1 - p))
        deltas = [(logit[0] - logit[i], j) for i, j in enumerate(known, start=1)]
        deltas.sort(key=lambda item: -abs(item[0]))
        features = self.space.features
        return [
            Factor(features[j].key, features[j].label, float(delta), self.space.value_text(record, j))
            for delta, j in deltas[:top]
            if abs(delta) >= 0.01
        ]


@dataclass
class Evaluation:
    auc: float
    log_loss: float


def evaluate(model: FittedModel, records: Sequence[LeadRecord], labels: np.ndarray) -> Evaluation:
    p = model.probabilities(records)
    return Evaluation(float(roc_auc_score(labels, p)), float(log_loss(labels, p, labels=[0, 1])))


@dataclass
class TrainResult:
    model: FittedModel
    evaluation: Evaluation
    n_train: int
    n_test: int
    top_factors: list[Factor]
    cv_auc: float | None


def train(records: Sequence[LeadRecord], labels: Sequence[int], ids: Sequence[int]) -> TrainResult:
    """Fit on the leads outside the held-out hash, pick the setting with the best cross-validated AUC,
    and evaluate on the held-out leads. Raises ``NotEnoughData`` with the reason in words."""
    y = np.asarray(labels, dtype=int)
    if reason := refusal(positives=int(y.sum()), negatives=int(len(y) - y.sum())):
        raise NotEnoughData(reason)
    test = heldout_mask(ids)
    if len(set(y[test])) < 2 or len(set(y[~test])) < 2:
        raise NotEnoughData("The held-out leads do not contain both outcomes; more labelled leads are needed.")
    train_records = [r for r, t in zip(records, test, strict=True) if not t]
    test_records = [r for r, t in zip(records, test, strict=True) if t]
    space = FeatureSpace.fit(train_records)
    if not space.features:
        raise NotEnoughData("The labelled leads have no field, attribute or event that tells them apart.")
    x_train, y_train = space.transform(train_records), y[~test]
    mask = space.categorical_mask
    candidates = _candidates(len(y_train))
    cv_auc: float | None = None
    best = candidates[0]
    if len(y_train) >= 600 and int(y_train.sum()) >= 30:
        folds = StratifiedKFold(n_splits=3, shuffle=True, random_state=0)
        x_cv, y_cv = x_train, y_train
        if len(y_train) > CV_MAX_ROWS:  # choosing a setting needs a fair sample, not every lead
            x_cv, _, y_cv, _ = train_test_split(
                x_train, y_train, train_size=CV_MAX_ROWS, stratify=y_train, random_state=0
            )
        scores = [
            float(
                np.mean(
                    cross_val_score(
                        HistGradientBoostingClassifier(categorical_features=mask, **params),
                        x_cv,
                        y_cv,
                        cv=folds,
                        scoring="roc_auc",
                    )
                )
            )
            for params in candidates
        ]
        cv_auc = max(scores)
        best = candidates[scores.index(cv_auc)]
    estimator = HistGradientBoostingClassifier(categorical_features=mask, **best).fit(x_train, y_train)
    model = FittedModel(space, estimator, {k: v for k, v in best.items() if k != "random_state"})
    y_test = y[test]
    evaluation = evaluate(model, test_records, y_test)
    # Cost: columns × repeats × rows × trees; the rows are capped so a big organization's training stays minutes.
    importance = permutation_importance(
        estimator,
        space.transform(test_records),
        y_test,
        scoring="roc_auc",
        n_repeats=IMPORTANCE_REPEATS,
        max_samples=min(1.0, IMPORTANCE_MAX_ROWS / len(y_test)),
        random_state=0,
    ).importances_mean
    order = np.argsort(-importance)
    top = [
        Factor(space.features[j].key, space.features[j].label, float(importance[j]))
        for j in order[:TOP_FACTORS]
        if importance[j] > 0
    ]
    return TrainResult(model, evaluation, int((~test).sum()), int(test.sum()), top, cv_auc)


def dump(model: FittedModel) -> tuple[bytes, str]:
    """The model as joblib bytes and their SHA-256."""
    buffer = io.BytesIO()
    joblib.dump(model, buffer, compress=3)
    data = buffer.getvalue()
    return data, hashlib.sha256(data).hexdigest()


def load(data: bytes, *, sha256: str, sklearn_version: str) -> FittedModel:
    """Load a model this application dumped (see the trust argument in docs/scoring.md)."""
    if hashlib.sha256(data).hexdigest() != sha256:
        raise IncompatibleModel("The stored model's bytes do not match their checksum.")
    if sklearn_version != sklearn.__version__:
        raise IncompatibleModel(
            f"The model was trained with scikit-learn {sklearn_version}, this server runs {sklearn.__version__}: retrain it."
        )
    model = joblib.load(io.BytesIO(data))
    if not isinstance(model, FittedModel):
        raise IncompatibleModel("The stored object is not a predictive model.")
    return model
