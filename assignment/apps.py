"""App config for assignment; its models arrive with the issue named in the package docstring."""

from django.apps import AppConfig


class AssignmentConfig(AppConfig):
    name = "assignment"
