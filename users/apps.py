"""App config for users: people, teams, roles and API keys."""

from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class UsersConfig(AppConfig):
    name = "users"
    verbose_name = _("People")

    def ready(self) -> None:
        from users.services import role_groups_sync

        # Role groups need the permissions that exist only after migrate has run,
        # so they are (re)built after every migrate, idempotently.
        def _sync(**kwargs: object) -> None:
            role_groups_sync()

        post_migrate.connect(_sync, dispatch_uid="users.role_groups_sync", weak=False)
