"""App config for nurturing; its models arrive with the issue named in the package docstring."""

from django.apps import AppConfig


class NurturingConfig(AppConfig):
    name = "nurturing"
