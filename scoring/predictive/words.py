"""The predictive model in the reader's language: factor labels and values built from feature keys, and
the outcome of a training run, translated when shown (stored rows keep keys and figures, not sentences)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from django.core.exceptions import FieldDoesNotExist
from django.utils.translation import gettext as _
from django.utils.translation import pgettext

from leads.models import Lead
from leads.selectors import EventTypeLabels
from scoring.models import PredictiveStatus
from scoring.predictive import policy

if TYPE_CHECKING:
    from scoring.models import PredictiveModel

# Prefixes of the 0/1 features (a fact is there or not).
PRESENCE_PREFIXES = ("has", "title", "interest")


def _field_name(name: str) -> str:
    """A lead column's verbose name; the bare name for a column this version of the lead no longer has."""
    try:
        field = Lead._meta.get_field(name.removesuffix("_id"))
    except FieldDoesNotExist:
        return name
    return str(getattr(field, "verbose_name", name))


def factor_label(key: str, *, event_labels: EventTypeLabels | None = None) -> str:
    """A feature key (``attr:plan``, ``recent:demo_request``…) in words, in the active language.

    Plain text: the template escapes it, so an attribute named ``<script>`` stays text. Event types are
    named from the catalogue when ``event_labels`` is given (one query per request, shared).
    """
    prefix, _sep, name = key.partition(":")
    if prefix == "field":
        return _field_name(name)
    if prefix == "derived":
        return str({"email_domain": _("e-mail domain type"), "seniority": _("title seniority")}.get(name, name))
    if prefix == "has":
        name = _field_name(name)
    elif prefix in ("events", "recent") and event_labels is not None:
        name = event_labels.label(name)
    labels = {
        "title": _("job title has “%(name)s”"),
        "has": _("has %(name)s"),
        "interest": _("interest “%(name)s”"),
        "attr": _("attribute “%(name)s”"),
        "events": _("%(name)s events"),
        "recent": _("%(name)s events (last 30 days)"),
    }
    return labels[prefix] % {"name": name} if prefix in labels else key


def _derived_values() -> dict[str, dict[str, str]]:
    return {
        "email_domain": {
            "free": pgettext("e-mail domain", "free mail"),
            "company": pgettext("e-mail domain", "company"),
            "education": pgettext("e-mail domain", "education"),
        },
        "seniority": {
            "c_level": _("C-level"),
            "vp": _("vice president"),
            "director": _("director"),
            "manager": _("manager"),
            "student": _("student"),
            "staff": _("staff"),
        },
    }


def factor_value(key: str, value: str) -> str:
    """A lead's value of a feature as ``FeatureSpace.value_text`` wrote it, in words where it is a code."""
    prefix, _sep, name = key.partition(":")
    if prefix in PRESENCE_PREFIXES:
        return _("yes") if value not in ("", "0", "—") else _("no")
    if prefix == "derived":
        return _derived_values().get(name, {}).get(value, value)
    return value


def top_factors(row: PredictiveModel, *, event_labels: EventTypeLabels | None = None) -> list[dict[str, Any]]:
    """The model's stored top factors with their label in the active language and their share of the
    largest weight (for a bar). A stored factor without a key (none is written so) keeps its stored label."""
    factors = [f for f in row.top_factors or [] if isinstance(f, Mapping)]
    largest = max((float(f.get("weight") or 0) for f in factors), default=0.0)
    return [
        {
            "feature": f.get("feature", ""),
            "label": factor_label(f["feature"], event_labels=event_labels) if f.get("feature") else f.get("label", ""),
            "weight": float(f.get("weight") or 0),
            "percent": round(100 * float(f.get("weight") or 0) / largest, 1) if largest > 0 else 0.0,
        }
        for f in factors
    ]


def run_message(row: PredictiveModel) -> str:
    """Why a training ended as it did, in the active language.

    A rejection and a refusal for too few outcomes are rebuilt from the figures the row keeps, so an
    older row reads in the reader's language too; any other message (a failure) is shown as stored.
    """
    if row.status == PredictiveStatus.REJECTED and row.auc is not None and row.previous_auc is not None:
        return _(
            "Held-out AUC %(auc)s is below the active model's %(previous)s on the same leads; "
            "the previous model was kept."
        ) % {"auc": f"{row.auc:.3f}", "previous": f"{row.previous_auc:.3f}"}
    if row.status == PredictiveStatus.REFUSED and (
        reason := policy.refusal(positives=row.n_positive, negatives=row.n_negative)
    ):
        return reason
    return row.message
