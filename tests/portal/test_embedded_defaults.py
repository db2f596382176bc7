"""The embedded set-up of `make run` with nothing configured: SQLite in WAL
mode, uploaded files under var/media, mail written to var/mail, images
processed in this process, uploads up to 25 MB and 50 megapixels. Run as a fresh machine runs it, in a process of
its own with none of the deployment's variables."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.processes import manage_py

ROOT = Path(__file__).resolve().parent.parent.parent

PROBE = """
import json
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.mail import send_mail
from django.db import connection

with connection.cursor() as cursor:
    cursor.execute("PRAGMA journal_mode")
    journal = cursor.fetchone()[0]
send_mail("Probe", "Written where the embedded set-up keeps mail.", None, ["ops@example.com"])
stored = default_storage.save("probe/hello.txt", ContentFile(b"hello"))

import io
from PIL import Image
from uploads import services

def refusal(data):
    try:
        services.image_upload(file=data, original_name="probe")
    except (services.ImageTooLarge, services.ImageInvalid) as exc:
        return str(exc)
    except Exception as exc:  # accepted, then no table to write it to
        return f"not refused: {exc!r}"
    return "not refused"

wide = io.BytesIO()
Image.new("L", (8000, 7000)).save(wide, "PNG")  # 56 MP in a small file
print(json.dumps({
    "vendor": connection.vendor,
    "database": str(connection.settings_dict["NAME"]),
    "journal": journal,
    "stored": stored,
    "media_url": default_storage.url(stored),
    "broker": settings.BROKER_CONFIGURED,
    "too_many_bytes": refusal(bytes(25 * 1024 * 1024 + 1)),
    "too_many_pixels": refusal(wide.getvalue()),
}))
"""


def test_a_fresh_machine_gets_sqlite_in_wal_mode_media_and_mail_under_var_and_the_upload_limits(
    tmp_path: Path,
) -> None:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DATABASE_", "CELERY_", "CACHE_", "AWS_", "EMAIL_", "DJANGO_", "PORTAL_"))
    }
    var = tmp_path / "var"
    env["PORTAL_VAR_DIR"] = str(var)
    result = manage_py("shell", "-c", PROBE, env=env)
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout.strip().splitlines()[-1])

    assert (found["vendor"], found["journal"]) == ("sqlite", "wal")
    assert found["database"] == str(var / "db.sqlite3")
    assert (var / "media" / found["stored"]).read_bytes() == b"hello"
    assert found["media_url"] == f"/media/{found['stored']}"
    [mailed] = list((var / "mail").iterdir())
    assert "Subject: Probe" in mailed.read_text()
    assert "From: automation@example.com" in mailed.read_text()
    assert found["broker"] is False  # images are processed in-process
    # The upload limits: 25 MB and 50 megapixels.
    assert found["too_many_bytes"] == "The file is 26,214,401 bytes; the limit is 26,214,400 bytes (25 MB)."
    assert "the limit is 50000000" in found["too_many_pixels"]
