"""Shared building blocks: normalization, pagination, API error shape, middleware."""

from django.apps import AppConfig


class CommonConfig(AppConfig):
    name = "common"
