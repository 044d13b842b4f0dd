"""The strategies, registered by key: each may exclude candidates (with a reason) and picks one eligible rep.

A strategy is a pure function over snapshots. ``exclude`` narrows the pool (territory, industry, tier,
working hours); ``pick`` chooses among the eligible reps, which the engine passes sorted by user id,
and says why in words. Randomness comes from the ``random.Random`` the caller passes (seeded in tests).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.utils.translation import gettext as _

from assignment.rules.availability import hours_text, in_working_hours
from assignment.rules.types import SUPPORT_ROLES, TIERS, LeadSnapshot, RepSnapshot, RuleSpec
from scoring.rules import field_value, to_number

DEFAULT_CAPACITY = 50  # load-balancing divisor for a rep without an open-lead limit
DEFAULT_PRIOR_RATE = 0.2  # performance: conversion rate assumed before any history
DEFAULT_PRIOR_STRENGTH = 10.0  # performance: how many closed leads the prior is worth


@dataclass(frozen=True)
class Pick:
    winner: RepSnapshot
    reason: str
    weights: Mapping[int, float] = field(default_factory=dict)
    supporting: tuple[tuple[int, str], ...] = ()


@dataclass(frozen=True)
class Context:
    lead: LeadSnapshot
    rule: RuleSpec
    now: datetime
    rng: random.Random

    @property
    def options(self) -> Mapping[str, Any]:
        return self.rule.options


Exclude = Callable[[RepSnapshot, Context], str]
Choose = Callable[[Sequence[RepSnapshot], Context], Pick]


@dataclass(frozen=True)
class StrategyDef:
    key: str
    pick: Choose
    exclude: Exclude | None = None
    # Option keys this strategy reads, with a validator returning errors in words.
    options: Mapping[str, Callable[[Any], list[str]]] = field(default_factory=dict)


STRATEGIES: dict[str, StrategyDef] = {}


def register(definition: StrategyDef) -> StrategyDef:
    STRATEGIES[definition.key] = definition
    return definition


# --- Shared helpers -------------------------------------------------------------------------------


def load_ratio(rep: RepSnapshot, options: Mapping[str, Any]) -> float:
    """Open leads relative to capacity: 5 open of 20 → 0.25 (no limit: divided by ``default_capacity``)."""
    capacity = rep.max_open_leads or int(options.get("default_capacity") or DEFAULT_CAPACITY)
    return rep.open_leads / max(capacity, 1)


def _load_text(rep: RepSnapshot) -> str:
    if rep.max_open_leads:
        return _("%(open)s of %(max)s open leads") % {"open": rep.open_leads, "max": rep.max_open_leads}
    return _("%(open)s open leads") % {"open": rep.open_leads}


def least_loaded(eligible: Sequence[RepSnapshot], ctx: Context) -> tuple[RepSnapshot, dict[int, float]]:
    """The rep with the lowest open/capacity ratio; ties go to fewer leads today, then the lower user id."""
    weights = {rep.user_id: load_ratio(rep, ctx.options) for rep in eligible}
    winner = min(eligible, key=lambda r: (weights[r.user_id], r.assigned_today, r.user_id))
    return winner, weights


def _then_least_loaded(reason: str, eligible: Sequence[RepSnapshot], ctx: Context) -> Pick:
    winner, weights = least_loaded(eligible, ctx)
    text = _("%(reason)s; least loaded of %(count)s eligible (%(load)s)") % {
        "reason": reason,
        "count": len(eligible),
        "load": _load_text(winner),
    }
    return Pick(winner, text, weights)


def _texts(values: Any) -> set[str]:
    items = values if isinstance(values, list | tuple | set | frozenset) else [values]
    return {str(v).strip().casefold() for v in items if v is not None and str(v).strip()}


def _is_bool(value: Any) -> list[str]:
    return [] if isinstance(value, bool) else [_("Must be true or false.")]


def _is_positive_number(value: Any) -> list[str]:
    number = to_number(value) if not isinstance(value, str) else None
    return [] if number is not None and number > 0 else [_("Must be a number above 0.")]


def _is_rate(value: Any) -> list[str]:
    number = to_number(value) if not isinstance(value, str) else None
    return [] if number is not None and 0 <= number <= 1 else [_("Must be a number from 0 to 1.")]


def _is_field_name(value: Any) -> list[str]:
    return [] if isinstance(value, str) and value.strip() else [_("Name a lead field or attr.<key>.")]


# --- Random, round-robin, load-balanced ------------------------------------------------------------


def _pick_random(eligible: Sequence[RepSnapshot], ctx: Context) -> Pick:
    """Any eligible rep, uniformly (the caller's RNG: seeded in tests, reproducible)."""
    winner = ctx.rng.choice(list(eligible))
    return Pick(winner, _("Picked at random among %(count)s eligible reps.") % {"count": len(eligible)})


def _pick_round_robin(eligible: Sequence[RepSnapshot], ctx: Context) -> Pick:
    """The first eligible rep after the one who got the rule's previous lead (by user id, wrapping around).

    Reps skipped for capacity or availability simply lose their turn, so among reps that stay
    eligible the counts differ by at most one.
    """
    last = ctx.rule.last_user_id
    after = [rep for rep in eligible if last is not None and rep.user_id > last]
    winner = after[0] if after else eligible[0]
    if last is None:
        reason = _("First in the rotation of %(count)s eligible reps.") % {"count": len(eligible)}
    else:
        reason = _("Next in the rotation after user #%(last)s (%(count)s eligible reps).") % {
            "last": last,
            "count": len(eligible),
        }
    return Pick(winner, reason)


def _pick_load_balanced(eligible: Sequence[RepSnapshot], ctx: Context) -> Pick:
    """The fewest open leads relative to capacity."""
    winner, weights = least_loaded(eligible, ctx)
    reason = _("Lowest load: %(load)s (%(pct)s%%).") % {
        "load": _load_text(winner),
        "pct": round(weights[winner.user_id] * 100),
    }
    return Pick(winner, reason, weights)


register(StrategyDef("random", _pick_random))
register(StrategyDef("round_robin", _pick_round_robin))
register(StrategyDef("load_balanced", _pick_load_balanced, options={"default_capacity": _is_positive_number}))


# --- Capability / performance ----------------------------------------------------------------------


def smoothed_rate(rep: RepSnapshot, prior_rate: float, strength: float) -> float:
    """Bayesian-smoothed conversion rate: (won + strength·prior) / (closed + strength).

    A rep with no history gets the prior, not zero, so a new rep is not starved; with history
    the rep's own rate takes over as closed leads outnumber ``strength``.
    """
    closed = rep.won + rep.lost
    return (rep.won + strength * prior_rate) / (closed + strength)


def _prior(eligible: Sequence[RepSnapshot], options: Mapping[str, Any]) -> float:
    if options.get("prior_rate") is not None:
        return float(options["prior_rate"])
    won = sum(rep.won for rep in eligible)
    closed = won + sum(rep.lost for rep in eligible)
    # The pool's own rate is the fairest prior; before anyone closed anything, a fixed guess.
    return won / closed if closed else DEFAULT_PRIOR_RATE


def _pick_performance(eligible: Sequence[RepSnapshot], ctx: Context) -> Pick:
    """The best smoothed conversion rate (or, with ``weighted``, a draw in proportion to the rates)."""
    prior = _prior(eligible, ctx.options)
    strength = float(ctx.options.get("prior_strength") or DEFAULT_PRIOR_STRENGTH)
    weights = {rep.user_id: smoothed_rate(rep, prior, strength) for rep in eligible}
    if ctx.options.get("weighted"):
        # Leads in proportion to the weights: the best rep gets most, everyone gets some.
        winner = ctx.rng.choices(list(eligible), weights=[weights[r.user_id] for r in eligible])[0]
        how = _("drawn in proportion to smoothed conversion rates")
    else:
        winner = min(eligible, key=lambda r: (-weights[r.user_id], load_ratio(r, ctx.options), r.user_id))
        how = _("highest smoothed conversion rate")
    reason = _(
        "%(how)s: %(won)s won of %(closed)s closed → %(weight).2f (prior %(prior).2f worth %(strength)g leads)."
    ) % {
        "how": how,
        "won": winner.won,
        "closed": winner.won + winner.lost,
        "weight": weights[winner.user_id],
        "prior": prior,
        "strength": strength,
    }
    return Pick(winner, reason[:1].upper() + reason[1:], weights)


register(
    StrategyDef(
        "performance",
        _pick_performance,
        options={"prior_rate": _is_rate, "prior_strength": _is_positive_number, "weighted": _is_bool},
    )
)


# --- Lead potential: score tier / grade → rep tier --------------------------------------------------


def wanted_tier(lead: LeadSnapshot, options: Mapping[str, Any]) -> str | None:
    """The rep tier a lead calls for: by grade (``grades``), else by score bands (``scores``), else ``default``."""
    grade = str(lead.fields.get("grade") or "").casefold()
    grades = {str(k).casefold(): v for k, v in (options.get("grades") or {}).items()}
    if grade in grades:
        return str(grades[grade])
    score = to_number(lead.fields.get("score")) or 0
    for band in sorted(options.get("scores") or [], key=lambda b: -float(b.get("min", 0))):
        if score >= float(band.get("min", 0)):
            return str(band["tier"])
    default = options.get("default")
    return str(default) if default else None


def _exclude_potential(rep: RepSnapshot, ctx: Context) -> str:
    wanted = wanted_tier(ctx.lead, ctx.options)
    if wanted is None or rep.tier not in TIERS or wanted not in TIERS:
        return ""
    exact = bool(ctx.options.get("exact"))
    ok = rep.tier == wanted if exact else TIERS.index(rep.tier) >= TIERS.index(wanted)
    if ok:
        return ""
    return _("This lead (score %(score)s, grade %(grade)s) calls for a %(wanted)s rep; %(name)s is %(tier)s.") % {
        "score": ctx.lead.fields.get("score"),
        "grade": ctx.lead.fields.get("grade") or "—",
        "wanted": tier_label(wanted),
        "name": rep.name,
        "tier": tier_label(rep.tier),
    }


def tier_label(tier: str) -> str:
    """A seniority tier in words, in the current language (the decision record shows it)."""
    labels = {"junior": _("Junior"), "mid": _("Mid-level"), "senior": _("Senior")}
    return str(labels.get(tier, tier))


def _pick_potential(eligible: Sequence[RepSnapshot], ctx: Context) -> Pick:
    """Among reps of the tier the lead calls for (see ``_exclude_potential``), the least loaded."""
    wanted = wanted_tier(ctx.lead, ctx.options)
    reason = (
        _("Lead potential calls for a %(tier)s rep") % {"tier": tier_label(wanted)}
        if wanted
        else _("No tier mapped for this lead")
    )
    return _then_least_loaded(reason, eligible, ctx)


def _validate_tier_map(value: Any) -> list[str]:
    if not isinstance(value, Mapping) or any(v not in TIERS for v in value.values()):
        return [_('Map grades to tiers, e.g. {"hot": "senior", "warm": "mid"}; tiers: junior, mid, senior.')]
    return []


def _validate_score_bands(value: Any) -> list[str]:
    if not isinstance(value, list) or any(
        not isinstance(b, Mapping) or b.get("tier") not in TIERS or to_number(b.get("min")) is None for b in value
    ):
        return [_('Score bands are [{"min": 80, "tier": "senior"}, …]; tiers: junior, mid, senior.')]
    return []


def _validate_tier(value: Any) -> list[str]:
    return [] if value in TIERS else [_("Tiers are junior, mid, senior.")]


register(
    StrategyDef(
        "potential",
        _pick_potential,
        _exclude_potential,
        options={
            "grades": _validate_tier_map,
            "scores": _validate_score_bands,
            "default": _validate_tier,
            "exact": _is_bool,
            "default_capacity": _is_positive_number,
        },
    )
)


# --- Region / territory and industry ---------------------------------------------------------------


def _match_exclusion(rep_values: tuple[str, ...], field_name: str, what: str, rep: RepSnapshot, ctx: Context) -> str:
    lead_values = _texts(field_value(ctx.lead.facts(), field_name))
    if not lead_values:
        return _("The lead has no %(field)s to match.") % {"field": field_name}
    if lead_values & _texts(rep_values):
        return ""
    return _("%(name)s covers %(covers)s, not the lead's %(field)s %(value)s.") % {
        "name": rep.name,
        "covers": ", ".join(rep_values) or _("no %(what)s") % {"what": what},
        "field": field_name,
        "value": ", ".join(sorted(lead_values)),
    }


def _exclude_territory(rep: RepSnapshot, ctx: Context) -> str:
    return _match_exclusion(rep.territories, str(ctx.options.get("field") or "region"), _("territory"), rep, ctx)


def _exclude_industry(rep: RepSnapshot, ctx: Context) -> str:
    return _match_exclusion(rep.industries, str(ctx.options.get("field") or "industry"), _("industry"), rep, ctx)


def _pick_territory(eligible: Sequence[RepSnapshot], ctx: Context) -> Pick:
    """Among reps covering the lead's region (or ``field``), the least loaded."""
    field_name = str(ctx.options.get("field") or "region")
    return _then_least_loaded(_("Covers the lead's %(field)s") % {"field": field_name}, eligible, ctx)


def _pick_industry(eligible: Sequence[RepSnapshot], ctx: Context) -> Pick:
    """Among reps who know the lead's industry (or ``field``), the least loaded."""
    field_name = str(ctx.options.get("field") or "industry")
    return _then_least_loaded(_("Knows the lead's %(field)s") % {"field": field_name}, eligible, ctx)


_MATCH_OPTIONS = {"field": _is_field_name, "default_capacity": _is_positive_number}
register(StrategyDef("territory", _pick_territory, _exclude_territory, options=_MATCH_OPTIONS))
register(StrategyDef("industry", _pick_industry, _exclude_industry, options=_MATCH_OPTIONS))


# --- Availability ---------------------------------------------------------------------------------


def exclude_outside_hours(rep: RepSnapshot, ctx: Context) -> str:
    if in_working_hours(rep, ctx.now):
        return ""
    return _("Outside %(name)s's working hours (%(hours)s).") % {"name": rep.name, "hours": hours_text(rep, ctx.now)}


def _pick_availability(eligible: Sequence[RepSnapshot], ctx: Context) -> Pick:
    """Among reps in their working hours now, the least loaded."""
    return _then_least_loaded(_("At work now"), eligible, ctx)


register(
    StrategyDef(
        "availability", _pick_availability, exclude_outside_hours, options={"default_capacity": _is_positive_number}
    )
)


# --- Team / collaborative --------------------------------------------------------------------------


def _pick_team(eligible: Sequence[RepSnapshot], ctx: Context) -> Pick:
    """The least-loaded rep owns the lead; each ``support`` entry adds the least-loaded other rep with its skill."""
    owner, weights = least_loaded(eligible, ctx)
    chosen = {owner.user_id}
    supporting: list[tuple[int, str]] = []
    words: list[str] = []
    for slot in ctx.options.get("support") or []:
        skill = str(slot.get("skill") or "").casefold()
        fits = [r for r in eligible if r.user_id not in chosen and (not skill or skill in _texts(r.skills))]
        if not fits:
            words.append(_("nobody free for %(role)s") % {"role": slot.get("role")})
            continue
        member = min(fits, key=lambda r: (load_ratio(r, ctx.options), r.assigned_today, r.user_id))
        chosen.add(member.user_id)
        supporting.append((member.user_id, str(slot.get("role") or "support")))
        words.append(_("%(name)s as %(role)s") % {"name": member.name, "role": slot.get("role") or "support"})
    reason = _("Owner: least loaded of %(count)s eligible (%(load)s)") % {
        "count": len(eligible),
        "load": _load_text(owner),
    }
    if words:
        reason += "; " + _("supporting: %(members)s") % {"members": ", ".join(words)}
    return Pick(owner, reason + ".", weights, tuple(supporting))


def _validate_support(value: Any) -> list[str]:
    roles = set(SUPPORT_ROLES)
    if not isinstance(value, list) or any(not isinstance(s, Mapping) or s.get("role") not in roles for s in value):
        return [
            _('Supporting members are [{"role": "sales_engineer", "skill": "presales"}, …]; roles: %(roles)s.')
            % {"roles": ", ".join(sorted(roles))}
        ]
    return []


register(
    StrategyDef("team", _pick_team, options={"support": _validate_support, "default_capacity": _is_positive_number})
)
