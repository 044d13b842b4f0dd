"""App config for scoring: rule sets, rules, grade bands, thresholds and score history."""

from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate


def ensure_default_rule_set(*, using: str = "default", **kwargs: Any) -> None:
    """Store the default rule set when there is none: after ``flush`` (tests, ``manage.py flush``)
    empties the tables that the migration's data step filled, scoring still works out of the box."""
    from scoring.models import ScoringRuleSet
    from scoring.services import default_rule_set_create

    if not ScoringRuleSet.objects.using(using).exists():
        default_rule_set_create(using=using)


class ScoringConfig(AppConfig):
    name = "scoring"

    def ready(self) -> None:
        post_migrate.connect(ensure_default_rule_set, sender=self, dispatch_uid="scoring_default_rule_set")
