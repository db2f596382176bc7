from __future__ import annotations

import os
import secrets
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser
from django.urls import reverse

# Addresses a server listens on that a browser cannot open as such.
ANY_ADDRESS = {"0.0.0.0": "127.0.0.1", "::": "[::1]", "": "127.0.0.1"}  # noqa: S104 - mapped, not bound


def admin_url(host: str, port: int) -> str:
    """The admin's address on the server `make run` starts (HOST, PORT)."""
    host = ANY_ADDRESS.get(host, host)
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{port}{reverse('admin:index')}"


class Command(BaseCommand):
    help = (
        "Make sure an admin account exists. Credentials come from PORTAL_ADMIN_USERNAME / "
        "PORTAL_ADMIN_PASSWORD, or a password is generated once, kept in var/admin_password "
        "and printed with the admin's URL on --host/--port (those of the server, as make run passes them)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1", help="Host the portal is served on.")
        parser.add_argument("--port", type=int, default=8000, help="Port the portal is served on.")

    def handle(self, *args: Any, **options: Any) -> None:
        username = os.environ.get("PORTAL_ADMIN_USERNAME", "admin")
        password = os.environ.get("PORTAL_ADMIN_PASSWORD", "")
        kept = settings.VAR_DIR / "admin_password"
        if not password:
            if kept.exists():
                password = kept.read_text().strip()
            else:
                password = secrets.token_urlsafe(12)
                kept.parent.mkdir(parents=True, exist_ok=True)
                kept.write_text(password)
                kept.chmod(0o600)
        users = get_user_model()
        user = users.objects.filter(username=username).first()
        if user is None:
            users.objects.create_superuser(username=username, email="admin@example.com", password=password)
            state = "created"
        elif os.environ.get("PORTAL_ADMIN_PASSWORD") or not user.has_usable_password():
            user.set_password(password)
            user.is_staff = user.is_superuser = True
            user.save()
            state = "updated"
        else:
            state = "exists"
        self.stdout.write(
            self.style.SUCCESS(
                f"Admin account {state}: {admin_url(options['host'], options['port'])}  "
                f"user {username!r}  password {password!r}"
            )
        )
