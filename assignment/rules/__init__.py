"""The pure assignment engine (no ORM): lead and rep snapshots in, a decision with its reasons out."""

from assignment.rules.engine import decide, exclusion, in_pool, rule_skip_reason
from assignment.rules.strategies import STRATEGIES, smoothed_rate, wanted_tier
from assignment.rules.types import (
    BULK,
    GRADE_UP,
    MANUAL,
    NEW,
    POOL_EVERYONE,
    POOL_REPS,
    POOL_TEAM,
    QUEUE,
    TIERS,
    TRIGGERS,
    CandidateReport,
    Decision,
    LeadSnapshot,
    RepSnapshot,
    RuleSpec,
)

__all__ = [
    "BULK",
    "GRADE_UP",
    "MANUAL",
    "NEW",
    "POOL_EVERYONE",
    "POOL_REPS",
    "POOL_TEAM",
    "QUEUE",
    "STRATEGIES",
    "TIERS",
    "TRIGGERS",
    "CandidateReport",
    "Decision",
    "LeadSnapshot",
    "RepSnapshot",
    "RuleSpec",
    "decide",
    "exclusion",
    "in_pool",
    "rule_skip_reason",
    "smoothed_rate",
    "wanted_tier",
]
