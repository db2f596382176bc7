from __future__ import annotations

import os
import sys

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

application = get_wsgi_application()


def _serving() -> bool:
    """runserver and gunicorn serve this application; tests and other commands
    only import it, and must not start background threads."""
    return sys.argv[1:2] == ["runserver"] or os.environ.get("SERVER_SOFTWARE", "").startswith("gunicorn/")


if _serving():
    # Embedded (no broker): process uploads in the background and sweep.
    from uploads import embedded

    embedded.start()
