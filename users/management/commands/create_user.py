"""``manage.py create_user USERNAME --role rep|marketing|manager|admin [--team TEAM] --password PW``."""

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from users.models import Role
from users.services import team_get_or_create, user_create


class Command(BaseCommand):
    help = "Create a user with a role; --team makes a manager lead the team, anyone else join it."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--role", required=True, choices=Role.values)
        parser.add_argument("--password", required=True)
        parser.add_argument("--team", help="Team name; created when missing.")
        parser.add_argument("--email", default="")

    # One transaction: a refused user (duplicate username…) leaves no new team behind.
    @transaction.atomic
    def handle(self, *args: Any, **options: Any) -> None:
        team = team_get_or_create(name=options["team"]) if options["team"] else None
        try:
            user = user_create(
                username=options["username"],
                password=options["password"],
                role=Role(options["role"]),
                team=team,
                email=options["email"],
            )
        except ValidationError as exc:
            raise CommandError("; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())) from exc
        self.stdout.write(f"Created {user.username} ({options['role']}{', team ' + team.name if team else ''}).")
