"""``manage.py create_api_key --user USERNAME --name NAME``: prints the key alone on its last line."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from users.models import User
from users.services import api_key_create


class Command(BaseCommand):
    help = "Create an API key acting as USERNAME. The key is shown once; only its hash is stored."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--user", required=True)
        parser.add_argument("--name", required=True)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            user = User.objects.get(username=options["user"])
        except User.DoesNotExist:
            raise CommandError(f"No user named {options['user']!r}.") from None
        api_key, key = api_key_create(user=user, name=options["name"])
        self.stderr.write(
            f"API key {api_key.name!r} for {user.username} (prefix {api_key.prefix}). Send it as 'Authorization: Api-Key <key>':"
        )
        self.stdout.write(key)
