"""Plain facts the assignment engine decides on: a lead snapshot, rep snapshots, rules, and the decision."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from scoring.rules import Condition, LeadFacts

# Trigger keys (the values of ``assignment.models.Trigger``).
NEW, GRADE_UP, MANUAL, BULK, QUEUE, SLA = "new", "grade_up", "manual", "bulk", "queue", "sla"
TRIGGERS = (NEW, GRADE_UP, MANUAL, BULK, QUEUE, SLA)
# The triggers a rule may list (queue and SLA routings are the service's own).
RULE_TRIGGERS = (NEW, GRADE_UP, MANUAL, BULK)
# Pool kinds (``assignment.models.PoolKind``).
POOL_TEAM, POOL_REPS, POOL_EVERYONE = "team", "reps", "everyone"
# Seniority tiers, lowest first (``assignment.models.Tier``).
TIERS = ("junior", "mid", "senior")
# Roles of supporting members in collaborative assignment (``assignment.models.MemberRole`` minus owner).
SUPPORT_ROLES = ("support", "specialist", "sales_engineer")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class LeadSnapshot:
    """The lead as the rules see it: its field values (score, grade, stage, source included) and custom attributes."""

    id: int | None
    fields: Mapping[str, Any] = field(default_factory=dict)
    attributes: Mapping[str, Any] = field(default_factory=dict)
    owner_id: int | None = None
    team_id: int | None = None

    def facts(self) -> LeadFacts:
        return LeadFacts(fields=self.fields, attributes=self.attributes)


@dataclass(frozen=True)
class RepSnapshot:
    """A person who may receive the lead, with their load at decision time and their profile."""

    user_id: int
    name: str
    team_id: int | None = None
    is_available: bool = True
    open_leads: int = 0
    assigned_today: int = 0
    daily_capacity: int | None = None
    max_open_leads: int | None = None
    time_zone: str = "UTC"
    working_hours: Mapping[str, Any] = field(default_factory=dict)
    out_of_office: tuple[tuple[date, date], ...] = ()
    territories: tuple[str, ...] = ()
    industries: tuple[str, ...] = ()
    tier: str = "mid"
    skills: tuple[str, ...] = ()
    won: int = 0  # leads this rep owned that converted
    lost: int = 0  # … that were lost


@dataclass(frozen=True)
class RuleSpec:
    """One routing rule as data; ``last_user_id`` is its round-robin cursor."""

    id: int | None
    name: str
    strategy: str
    conditions: tuple[Condition, ...] = ()
    triggers: frozenset[str] = frozenset({NEW, MANUAL, BULK})
    pool: str = POOL_EVERYONE
    team_id: int | None = None
    rep_ids: frozenset[int] = frozenset()
    options: Mapping[str, Any] = field(default_factory=dict)
    last_user_id: int | None = None

    def applies_to(self, trigger: str) -> bool:
        # A lead taken from the queue is still a lead without an owner: the new-lead rules route it.
        # An SLA reassignment re-runs the rule that assigned the lead, whatever its triggers.
        return trigger == SLA or (NEW if trigger == QUEUE else trigger) in self.triggers


@dataclass(frozen=True)
class CandidateReport:
    """One candidate as the decision record shows it: load, capacity, availability, weight, why excluded."""

    user_id: int
    name: str
    open_leads: int
    max_open_leads: int | None
    assigned_today: int
    daily_capacity: int | None
    available: bool
    weight: float | None = None
    excluded: str = ""

    def as_json(self) -> dict[str, Any]:
        return {
            "user": self.user_id,
            "name": self.name,
            "open": self.open_leads,
            "max_open": self.max_open_leads,
            "today": self.assigned_today,
            "daily": self.daily_capacity,
            "available": self.available,
            "weight": None if self.weight is None else round(self.weight, 4),
            "excluded": self.excluded,
        }


@dataclass(frozen=True)
class Decision:
    """What the engine decided: the rule, the winner (None: queue the lead) and every reason."""

    trigger: str
    rule: RuleSpec | None
    winner_id: int | None
    reason: str
    candidates: tuple[CandidateReport, ...] = ()
    supporting: tuple[tuple[int, str], ...] = ()  # (user id, role) of collaborative members
    rules_skipped: tuple[str, ...] = ()  # earlier rules that did not match, each in words

    @property
    def matched(self) -> bool:
        return self.rule is not None

    def candidates_json(self) -> list[dict[str, Any]]:
        return [candidate.as_json() for candidate in self.candidates]
