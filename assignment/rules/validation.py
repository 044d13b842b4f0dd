"""Validation of a rule's conditions, triggers and strategy options, in words (the API and the admin show them)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django.utils.translation import gettext as _

from assignment.rules.strategies import STRATEGIES
from assignment.rules.types import RULE_TRIGGERS
from scoring.rules import ATTR_PREFIX, Condition, validate_condition

# Options every strategy accepts: only reps at work now; reassign when the first-touch deadline is missed.
COMMON_OPTIONS = {"working_hours_only", "sla_reassign"}


def validate_conditions(value: Any, *, known_fields: Iterable[str]) -> list[str]:
    """``[{"field", "operator", "value", "negate"}, …]`` with fields among ``known_fields`` or ``attr.<key>``."""
    if not isinstance(value, list):
        return [_('Conditions are a list of {"field": …, "operator": …, "value": …}.')]
    known = set(known_fields)
    errors: list[str] = []
    for item in value:
        if not isinstance(item, Mapping):
            errors.append(_('Each condition is {"field": …, "operator": …, "value": …}.'))
            continue
        name = str(item.get("field") or "")
        if not (name in known or (name.startswith(ATTR_PREFIX) and len(name) > len(ATTR_PREFIX))):
            errors.append(_("Unknown lead field “%(field)s”; use a lead field or attr.<key>.") % {"field": name})
        if "negate" in item and not isinstance(item["negate"], bool):
            errors.append(_("“negate” must be true or false."))
        errors += validate_condition(str(item.get("operator") or ""), item.get("value"))
    return errors


def conditions_from_json(value: Any) -> tuple[Condition, ...]:
    return tuple(
        Condition(
            field=str(c["field"]), operator=str(c["operator"]), value=c.get("value"), negate=bool(c.get("negate"))
        )
        for c in value or []
    )


def validate_triggers(value: Any) -> list[str]:
    if not isinstance(value, list) or not value or any(t not in RULE_TRIGGERS for t in value):
        return [_("Triggers are a non-empty list drawn from: %(keys)s.") % {"keys": ", ".join(RULE_TRIGGERS)}]
    return []


def validate_options(strategy: str, value: Any) -> list[str]:
    """Unknown keys and bad values are errors: a typo in an option must not silently change routing."""
    if strategy not in STRATEGIES:
        return [_("Unknown strategy “%(strategy)s”.") % {"strategy": strategy}]
    if not isinstance(value, Mapping):
        return [_("Options are a JSON object.")]
    checks = STRATEGIES[strategy].options
    errors: list[str] = []
    for key, option in value.items():
        if key in COMMON_OPTIONS:
            if not isinstance(option, bool):
                errors.append(_("%(key)s: must be true or false.") % {"key": key})
        elif key not in checks:
            allowed = ", ".join(sorted({*checks, *COMMON_OPTIONS}))
            errors.append(
                _("Unknown option “%(key)s” for this strategy; allowed: %(allowed)s.")
                % {"key": key, "allowed": allowed}
            )
        else:
            errors += [f"{key}: {message}" for message in checks[key](option)]
    return errors
