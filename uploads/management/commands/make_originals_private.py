from __future__ import annotations

from typing import Any

from core.commands import Command as PortalCommand
from uploads import storage


class Command(PortalCommand):
    help = (
        "Move originals kept in the public media store (by an older release, or before a private "
        "bucket was configured) into the private store. Safe to run again."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        moved, kept = storage.originals_make_private()
        self.stdout.write(f"{moved} original(s) moved to the private store, {kept} already there.")
