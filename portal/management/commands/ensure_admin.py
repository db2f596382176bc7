from __future__ import annotations

import argparse
import os
import secrets
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import CommandError, CommandParser
from django.db import models
from django.urls import reverse

from core.commands import Command as PortalCommand

ADMIN_EMAIL = "admin@example.com"

# Addresses a server listens on that a browser cannot open as such.
ANY_ADDRESS = {"0.0.0.0": "127.0.0.1", "::": "[::1]", "": "127.0.0.1"}  # noqa: S104 - mapped, not bound


def admin_url(host: str, port: int) -> str:
    """The admin's address on the server `make run` starts (HOST, PORT)."""
    host = ANY_ADDRESS.get(host, host)
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{port}{reverse('admin:index')}"


def _port(value: str) -> int:
    """A port of ``--port``: 99999 was taken, and the admin's address
    printed with it one no browser opens."""
    try:
        port = int(value)
    except ValueError:
        port = 0
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port from 1 to 65535; it is {value!r}")
    return port


def _keep(path: Path, password: str) -> None:
    """Write the generated password to ``path``, readable by this user
    alone from its first byte: written with the umask's mode, then made
    private, it was readable by every local user until then, and for good
    when the run stopped between."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with open(fd, "w", encoding="utf-8") as fh:
        os.fchmod(fd, 0o600)  # a file there already (left empty) keeps its mode otherwise
        fh.write(password)


def _kept_password(path: Path) -> str:
    """The password kept in ``path`` by an earlier run, "" if none is kept."""
    if not path.exists():
        return ""
    try:
        return path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:  # a folder there, another user's file, not text
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not UTF-8 text"
        raise CommandError(
            f"Cannot read the admin's password kept in {path}: {reason}; nothing was changed. "
            "Remove it (a password is generated again), or set PORTAL_ADMIN_PASSWORD."
        ) from exc


class Command(PortalCommand):
    help = (
        "Make sure an admin account exists. Credentials come from PORTAL_ADMIN_USERNAME / "
        "PORTAL_ADMIN_PASSWORD (which must pass the password validators), or a password is "
        "generated once, kept in var/admin_password and printed with the admin's URL on "
        "--host/--port (those of the server, as make run passes them)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1", help="Host the portal is served on.")
        parser.add_argument("--port", type=_port, default=8000, help="Port the portal is served on.")

    def handle(self, *args: Any, **options: Any) -> None:
        users = get_user_model()
        # Empty is unset, for both: a line `PORTAL_ADMIN_USERNAME=` left in a .env file.
        # As the account stores it and the login form reads it (NFKC): found
        # by the name it was created with (a full-width "chief" is "chief"), and
        # held to the rules as stored (a ligature is two or three letters).
        username = users.normalize_username(os.environ.get("PORTAL_ADMIN_USERNAME", "") or "admin")
        chosen = os.environ.get("PORTAL_ADMIN_PASSWORD", "")
        kept = settings.VAR_DIR / "admin_password"
        url = admin_url(options["host"], options["port"])
        # The rules of the account's form: a name with a space, or too long
        # for its column, was refused by no one on SQLite, and by PostgreSQL
        # with a traceback.
        field = users._meta.get_field(users.USERNAME_FIELD)
        try:
            if isinstance(field, models.Field):
                field.clean(username, None)
        except ValidationError as exc:
            raise CommandError(
                f"PORTAL_ADMIN_USERNAME is refused, nothing was changed: {' '.join(exc.messages)}"
            ) from exc
        user = users.objects.filter(username=username).first()
        password = chosen or _kept_password(kept)
        if user is not None and user.has_usable_password() and not chosen:
            # Its password is whoever set it last: printed only if it is the one kept here.
            promoted = self._make_admin(user)
            if password and user.check_password(password):
                self._report("updated" if promoted else "exists", url, username, password)
            else:
                self.stdout.write(
                    self.style.SUCCESS(
                        f"Admin account {'updated' if promoted else 'exists'}: {url}  user {username!r}  "
                        "(its password was set elsewhere and is not shown; "
                        "set PORTAL_ADMIN_PASSWORD to replace it)"
                    )
                )
            return
        if not password:
            password = secrets.token_urlsafe(12)
            try:
                _keep(kept, password)
            except OSError as exc:  # a file where the folder goes, a read-only disk
                raise CommandError(
                    f"Cannot keep the admin's password in {kept}: {exc.strerror or exc}; nothing was "
                    "changed. Set PORTAL_ADMIN_PASSWORD, or PORTAL_VAR_DIR to a folder it can write to."
                ) from exc
        # The validators judge it against the account it is for (a password
        # like the user name is refused); a generated one passes them.
        try:
            validate_password(password, user or users(username=username, email=ADMIN_EMAIL))
        except ValidationError as exc:
            source = "PORTAL_ADMIN_PASSWORD" if chosen else f"The password in {kept}"
            raise CommandError(f"{source} is refused, nothing was changed: {' '.join(exc.messages)}") from exc
        if user is None:
            users.objects.create_superuser(username=username, email=ADMIN_EMAIL, password=password)
            state = "created"
        else:
            # Set again, the password it has would count as changed, and cut
            # the admin's API token off (portal.signal_handlers) at each run.
            if not user.check_password(password):
                user.set_password(password)
            self._make_admin(user)
            user.save()
            state = "updated"
        self._report(state, url, username, password)

    def _make_admin(self, user: Any) -> bool:
        """Staff and superuser, active; whether it was not all that already."""
        if user.is_staff and user.is_superuser and user.is_active:
            return False
        user.is_staff = user.is_superuser = user.is_active = True
        user.save(update_fields=["is_staff", "is_superuser", "is_active"])
        return True

    def _report(self, state: str, url: str, username: str, password: str) -> None:
        self.stdout.write(
            self.style.SUCCESS(f"Admin account {state}: {url}  user {username!r}  password {password!r}")
        )
