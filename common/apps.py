"""Shared building blocks: normalization, pagination, API error shape, middleware."""

from django.apps import AppConfig


class CommonConfig(AppConfig):
    name = "common"

    def ready(self) -> None:
        from django.db.backends.signals import connection_created

        from common.db import register_sqlite_functions, use_fast_timestamptz_loader

        connection_created.connect(use_fast_timestamptz_loader, dispatch_uid="common.fast_timestamptz")
        connection_created.connect(register_sqlite_functions, dispatch_uid="common.sqlite_functions")
