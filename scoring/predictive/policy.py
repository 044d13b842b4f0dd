"""The predictive model's rules of the game, importable without scikit-learn: when training is refused,
which leads are held out, and the errors the services raise."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from django.utils.translation import gettext as _

MIN_LABELLED = 200
MIN_PER_OUTCOME = 20
# Share of labelled leads held out for evaluation, chosen by a fixed hash of the lead id (``heldout_mask``).
HELDOUT_SHARE = 0.3


class NotEnoughData(Exception):
    """Too few leads with a known outcome to learn anything trustworthy."""


class IncompatibleModel(Exception):
    """The stored model cannot be loaded safely here (changed bytes or another scikit-learn version)."""


def refusal(*, positives: int, negatives: int) -> str | None:
    """Why training is refused for these outcome counts (in the active language), or None when it may go ahead."""
    if positives + negatives < MIN_LABELLED or min(positives, negatives) < MIN_PER_OUTCOME:
        return _(
            "Not enough leads with a known outcome to train: %(positives)s converted and %(negatives)s lost or "
            "disqualified; at least %(min_labelled)s in all and %(min_per_outcome)s of each are needed."
        ) % {
            "positives": positives,
            "negatives": negatives,
            "min_labelled": MIN_LABELLED,
            "min_per_outcome": MIN_PER_OUTCOME,
        }
    return None


def heldout_mask(ids: Sequence[int]) -> np.ndarray:
    """Which leads are held out for evaluation: a fixed multiplicative hash of the id, so a lead held
    out once is held out by every training. No model has seen the leads it is compared on, and the
    active model and a new one are measured on exactly the same leads."""
    ids_array = np.asarray(ids, dtype=np.uint64)
    hashed = (ids_array * np.uint64(2654435761)) % np.uint64(2**32)
    return np.asarray(hashed.astype(np.float64) / 2**32 < HELDOUT_SHARE)
