from __future__ import annotations

import json
from typing import Any

from django.core.management.base import CommandError, CommandParser

from core.commands import Command as PortalCommand
from uploads import storage


class Command(PortalCommand):
    help = (
        "Print the media bucket's policy (anyone may read renditions/, nothing else), or apply it "
        "with --apply. Originals stay private either way."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--apply", action="store_true", help="Set the policy on the media bucket.")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            policy = storage.public_read_policy_apply() if options["apply"] else storage.public_read_policy()
        except TypeError as exc:
            raise CommandError("Media are stored on local disk; there is no bucket policy to set.") from exc
        self.stdout.write(json.dumps(policy, indent=2))
        if options["apply"]:
            self.stdout.write("Policy applied: renditions are public, originals private.")
