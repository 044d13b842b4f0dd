"""The predictive model without a database: features from any fields, known signal, refusal, explanations."""

from __future__ import annotations

import random

import numpy as np
import pytest

from scoring.predictive import learning, policy
from scoring.predictive.features import CATEGORICAL, NUMERIC, FeatureSpace, LeadRecord


def synthetic(n: int, *, seed: int = 0, shuffle_labels: bool = False) -> tuple[list[LeadRecord], list[int], list[int]]:
    """Leads whose outcome depends on a custom categorical attribute, a numeric one (often missing),
    the industry and demo requests; everything else is noise. About 25 % convert."""
    rng = random.Random(seed)
    records, labels = [], []
    for _ in range(n):
        plan = rng.choice(["free", "team", "enterprise"])
        seats = rng.choice([None, rng.randint(1, 500)])
        industry = rng.choice(["manufacturing", "retail", "education", ""])
        demos = rng.choice([0, 0, 0, 1, 2])
        logit = -2.2 + {"free": -0.8, "team": 0.4, "enterprise": 1.4}[plan] + 1.2 * demos
        logit += 0.004 * (seats or 0) + (0.8 if industry == "manufacturing" else 0.0)
        converted = int(rng.random() < 1 / (1 + np.exp(-logit)))
        attributes: dict[str, object] = {"plan": plan, "noise": rng.random()}
        if seats is not None:
            attributes["seats"] = str(seats) if rng.random() < 0.5 else seats  # numbers as text still count
        records.append(
            LeadRecord(
                fields={"industry": industry, "source": rng.choice(["web_form", "event"]), "email": "a@corp.cn"},
                attributes=attributes,
                events={"demo_request": (demos, demos)} if demos else {},
            )
        )
        labels.append(converted)
    if shuffle_labels:
        rng.shuffle(labels)
    return records, labels, list(range(1, n + 1))


@pytest.fixture(scope="module")
def trained() -> learning.TrainResult:
    """One training on the known-signal set, shared by the tests that only read it."""
    return learning.train(*synthetic(1500))


def test_a_known_signal_is_learned_well_above_chance(trained: learning.TrainResult) -> None:
    result = trained
    assert result.evaluation.auc > 0.75
    assert result.n_test + result.n_train == 1500
    top = {factor.feature for factor in result.top_factors[:4]}
    assert top & {"attr:plan", "events:demo_request", "recent:demo_request"}, top
    assert "attr:noise" not in top


def test_shuffled_labels_give_about_chance() -> None:
    records, labels, ids = synthetic(1500, shuffle_labels=True)
    assert abs(learning.train(records, labels, ids).evaluation.auc - 0.5) < 0.08


def test_each_attribute_kind_is_inferred_from_the_data_and_missing_values_are_kept_missing() -> None:
    records, _, _ = synthetic(400)
    space = FeatureSpace.fit(records)
    kinds = {f.key: f.kind for f in space.features}
    assert kinds["attr:plan"] == CATEGORICAL
    assert kinds["attr:seats"] == NUMERIC  # ints and numeric text alike
    assert kinds["field:industry"] == CATEGORICAL
    matrix = space.transform(records)
    seats = [f.key for f in space.features].index("attr:seats")
    missing = [r.attributes.get("seats") is None for r in records]
    assert np.isnan(matrix[missing, seats]).all()
    assert not np.isnan(matrix[[not m for m in missing], seats]).any()


def test_an_unseen_category_and_an_unknown_attribute_do_not_break_scoring(trained: learning.TrainResult) -> None:
    model = trained.model
    odd = LeadRecord(fields={"industry": "space mining"}, attributes={"plan": "platinum", "new_key": 3}, events={})
    (p,) = model.probabilities([odd])
    assert 0 < p < 1


@pytest.mark.parametrize(("positives", "negatives"), [(150, 49), (15, 400), (400, 19)])
def test_training_is_refused_with_too_few_outcomes(positives: int, negatives: int) -> None:
    records, _, _ = synthetic(positives + negatives)
    labels = [1] * positives + [0] * negatives
    with pytest.raises(policy.NotEnoughData, match="at least 200 in all and 20 of each"):
        learning.train(records, labels, list(range(1, len(labels) + 1)))


def test_a_lead_is_explained_by_the_facts_that_move_its_own_probability(trained: learning.TrainResult) -> None:
    model = trained.model
    hot = LeadRecord(
        fields={"industry": "manufacturing"}, attributes={"plan": "enterprise"}, events={"demo_request": (2, 2)}
    )
    factors = model.explain(hot)
    assert factors
    assert all(f.weight != 0 for f in factors)
    by_key = {f.feature: f for f in factors}
    assert by_key["attr:plan"].weight > 0
    assert by_key["attr:plan"].value == "enterprise"
    cold = LeadRecord(fields={}, attributes={"plan": "free"}, events={})
    assert {f.feature: f for f in model.explain(cold)}["attr:plan"].weight < 0


def test_a_stored_model_loads_back_only_with_its_checksum_and_version() -> None:
    records, labels, ids = synthetic(400)
    model = learning.train(records, labels, ids).model
    data, digest = learning.dump(model)
    import sklearn

    loaded = learning.load(data, sha256=digest, sklearn_version=sklearn.__version__)
    assert np.allclose(loaded.probabilities(records[:20]), model.probabilities(records[:20]))
    with pytest.raises(policy.IncompatibleModel):
        learning.load(data + b"x", sha256=digest, sklearn_version=sklearn.__version__)
    with pytest.raises(policy.IncompatibleModel, match="retrain"):
        learning.load(data, sha256=digest, sklearn_version="0.1")
