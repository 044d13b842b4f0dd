"""App config for scoring; its models arrive with the issue named in the package docstring."""

from django.apps import AppConfig


class ScoringConfig(AppConfig):
    name = "scoring"
