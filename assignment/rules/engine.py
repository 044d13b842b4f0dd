"""The assignment engine: the first enabled rule that applies picks an owner from its pool, with every reason.

Pure: the service passes the lead, the rules (in order, with their cursors) and the rep snapshots.
For the matching rule, every rep in its pool is checked in this order — the switch, out of office,
leads received today against the daily capacity, open leads against the limit, working hours (the
availability strategy, or ``working_hours_only``), then the strategy's own filter — and the first
failing check is that rep's worded reason. Nobody left: the decision has no winner and says why
(the service queues the lead). No rule applies: no winner and no rule.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import datetime

from django.utils.translation import gettext as _

from assignment.rules.availability import in_working_hours, out_of_office_until
from assignment.rules.strategies import STRATEGIES, Context, exclude_outside_hours
from assignment.rules.types import (
    POOL_REPS,
    POOL_TEAM,
    CandidateReport,
    Decision,
    LeadSnapshot,
    RepSnapshot,
    RuleSpec,
)
from scoring.rules import condition_holds, describe_condition, field_value


def rule_skip_reason(rule: RuleSpec, lead: LeadSnapshot, trigger: str) -> str:
    """Why ``rule`` does not apply to this lead and trigger, in words; empty when it applies."""
    if not rule.applies_to(trigger):
        return _("%(rule)s: not used for this trigger.") % {"rule": rule.name}
    facts = lead.facts()
    for condition in rule.conditions:
        if not condition_holds(condition, field_value(facts, condition.field)):
            return _("%(rule)s: condition “%(condition)s” does not hold.") % {
                "rule": rule.name,
                "condition": describe_condition(condition),
            }
    return ""


def in_pool(rule: RuleSpec, rep: RepSnapshot, lead: LeadSnapshot) -> bool:
    if rule.pool == POOL_TEAM:
        # A team rule without a team routes within the lead's own team.
        team_id = rule.team_id if rule.team_id is not None else lead.team_id
        return team_id is not None and rep.team_id == team_id
    if rule.pool == POOL_REPS:
        return rep.user_id in rule.rep_ids
    return True


def exclusion(rep: RepSnapshot, ctx: Context) -> str:
    """The first reason ``rep`` cannot take the lead now, in words; empty when eligible."""
    if not rep.is_available:
        return _("%(name)s has switched availability off.") % {"name": rep.name}
    until = out_of_office_until(rep, ctx.now)
    if until is not None:
        return _("%(name)s is out of office until %(date)s.") % {"name": rep.name, "date": until.isoformat()}
    if rep.daily_capacity is not None and rep.assigned_today >= rep.daily_capacity:
        return _("%(name)s already received %(today)s of %(daily)s leads today.") % {
            "name": rep.name,
            "today": rep.assigned_today,
            "daily": rep.daily_capacity,
        }
    if rep.max_open_leads is not None and rep.open_leads >= rep.max_open_leads:
        return _("%(name)s has %(open)s open leads; the limit is %(max)s.") % {
            "name": rep.name,
            "open": rep.open_leads,
            "max": rep.max_open_leads,
        }
    strategy = STRATEGIES[ctx.rule.strategy]
    if ctx.rule.options.get("working_hours_only") and strategy.exclude is not exclude_outside_hours:
        reason = exclude_outside_hours(rep, ctx)
        if reason:
            return reason
    return strategy.exclude(rep, ctx) if strategy.exclude is not None else ""


def decide(
    *,
    lead: LeadSnapshot,
    rules: Sequence[RuleSpec],
    reps: Sequence[RepSnapshot],
    trigger: str,
    now: datetime,
    rng: random.Random | None = None,
    exclude: frozenset[int] = frozenset(),
) -> Decision:
    """Route ``lead``: the first rule that applies decides; see the module docstring for the checks.

    ``exclude``: reps left out of this routing (the owner who missed the first-touch deadline).
    """
    skipped: list[str] = []
    for rule in rules:
        why_not = rule_skip_reason(rule, lead, trigger)
        if why_not:
            skipped.append(why_not)
            continue
        return _decide_with(rule, lead, reps, trigger, now, rng or random.Random(), tuple(skipped), exclude)
    return Decision(trigger, None, None, _("No enabled rule applies to this lead."), rules_skipped=tuple(skipped))


def _decide_with(
    rule: RuleSpec,
    lead: LeadSnapshot,
    reps: Sequence[RepSnapshot],
    trigger: str,
    now: datetime,
    rng: random.Random,
    skipped: tuple[str, ...],
    exclude: frozenset[int],
) -> Decision:
    ctx = Context(lead=lead, rule=rule, now=now, rng=rng)
    pool = sorted((rep for rep in reps if in_pool(rule, rep, lead)), key=lambda r: r.user_id)
    missed = _("%(name)s missed this lead's first-touch deadline.")
    reasons = {
        rep.user_id: missed % {"name": rep.name} if rep.user_id in exclude else exclusion(rep, ctx) for rep in pool
    }
    eligible = [rep for rep in pool if not reasons[rep.user_id]]

    def report(weights: dict[int, float]) -> tuple[CandidateReport, ...]:
        return tuple(
            CandidateReport(
                user_id=rep.user_id,
                name=rep.name,
                open_leads=rep.open_leads,
                max_open_leads=rep.max_open_leads,
                assigned_today=rep.assigned_today,
                daily_capacity=rep.daily_capacity,
                available=rep.is_available and out_of_office_until(rep, now) is None and in_working_hours(rep, now),
                weight=weights.get(rep.user_id),
                excluded=reasons[rep.user_id],
            )
            for rep in pool
        )

    if not eligible:
        reason = (
            _("%(rule)s matched, but its pool is empty.") % {"rule": rule.name}
            if not pool
            else _("%(rule)s matched, but none of its %(count)s reps can take the lead now.")
            % {"rule": rule.name, "count": len(pool)}
        )
        return Decision(trigger, rule, None, reason, report({}), rules_skipped=skipped)
    pick = STRATEGIES[rule.strategy].pick(eligible, ctx)
    reason = _("%(rule)s → %(name)s. %(why)s") % {"rule": rule.name, "name": pick.winner.name, "why": pick.reason}
    return Decision(
        trigger, rule, pick.winner.user_id, reason, report(dict(pick.weights)), pick.supporting, rules_skipped=skipped
    )
