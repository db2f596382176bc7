"""DRF's command of the same name (the portal's app comes first in
INSTALLED_APPS), making the token through portal.tokens: DRF's stores the
key as it is, and prints the key of a token the user already has, which the
database no longer holds."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import CommandError, CommandParser

from core.authentication import utc_minute
from core.commands import Command as PortalCommand
from portal import tokens


class Command(PortalCommand):
    help = (
        "Make an API token for a user and print its key, this once: the database keeps only a digest "
        "of it. A user has one token: with --reset, a new one replaces it (its key stops working); "
        "an expired one is replaced without."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username", type=str)
        parser.add_argument(
            "-r",
            "--reset",
            action="store_true",
            dest="reset_token",
            help="Replace the user's token, if any, with a new one.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        username = options["username"]
        users = get_user_model()._default_manager
        # As typed, else as accounts store a username and the login form reads
        # it (NFKC): "José" typed with a combining accent is that user.
        found = (
            users.filter(**{users.model.USERNAME_FIELD: username}).first()
            or users.filter(**{users.model.USERNAME_FIELD: users.model.normalize_username(username)}).first()
        )
        if found is None:
            raise CommandError(f"Cannot create the Token: user {username} does not exist")
        user = found
        try:
            make = tokens.token_replace if options["reset_token"] else tokens.token_create
            issued = make(user=user)
        except ValidationError:  # the user has a token: DRF's printed its key, which is not kept
            if options["reset_token"]:  # made by a writer that took no lock, since the old one went
                raise CommandError(
                    f"User {username} was given another token meanwhile, whose key is not kept; "
                    "nothing was changed: run the command again to replace it."
                ) from None
            raise CommandError(
                f"User {username} has a token already, whose key is not kept: "
                "--reset replaces it with a new one."
            ) from None
        # DRF's line, alone on stdout: scripts read the key from it.
        self.stdout.write(f"Generated token {issued.key} for user {username}")
        if issued.expires is not None:
            self.stderr.write(
                f"The token expires on {utc_minute(issued.expires)}, {settings.API_TOKEN_MAX_AGE_DAYS} days "
                "after it was made (PORTAL_API_TOKEN_MAX_AGE_DAYS)."
            )
