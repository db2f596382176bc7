from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import CommandError, CommandParser

from catalog import formats
from catalog.models import Person
from core import files
from core.commands import Command as PortalCommand


class Command(PortalCommand):
    help = "Write the staff directory as CSV, JSON or YAML (to stdout, or --output FILE)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--format", choices=["csv", "json", "yaml"], default="csv")
        parser.add_argument("--output", "-o", type=Path)
        parser.add_argument("--active-only", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        people = Person.objects.order_by("department", "name")
        if options["active_only"]:
            people = people.filter(is_active=True)
        text = formats.dump_people(
            people.values("name", "username", "phone", "department", "role", "email", "is_active"),
            options["format"],
        )
        if options["output"]:
            try:
                files.write_replacing(options["output"], text.encode("utf-8"))
            except files.NotWritten as exc:
                raise CommandError(str(exc)) from exc
            self.stderr.write(f"{people.count()} people written to {options['output']}.")
        else:
            self.stdout.write(text, ending="")
