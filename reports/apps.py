"""App config for reports; its models arrive with the issue named in the package docstring."""

from django.apps import AppConfig


class ReportsConfig(AppConfig):
    name = "reports"
