"""Imports and exports in the admin: an export hands over every person's
email and phones and every review (hidden ones too), an import creates and
overwrites people, so each needs the model permissions, not just staff."""

from __future__ import annotations

import os
import re
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from catalog.models import Feedback, Person
from tests.factories import FeedbackFactory, PersonFactory, logged_in, staff_with

pytestmark = pytest.mark.django_db

PERSON_IMPORT = "/admin/catalog/person/import/"
PERSON_PROCESS_IMPORT = "/admin/catalog/person/process_import/"
PERSON_EXPORT = "/admin/catalog/person/export/"
FEEDBACK_EXPORT = "/admin/catalog/feedback/export/"
CSV = (
    "name,username,phone,department,role,email,is_active\nAda,ada,office: 1,Eng,Engineer,ada@example.com,1\n"
)


def choice(page: str, label: str) -> str:
    """The value of the format option labelled ``label`` in a form."""
    match = re.search(rf'<option value="(\d+)"[^>]*>{label}</option>', page)
    assert match, f"no {label} option"
    return match.group(1)


def export(client: Client, url: str) -> Any:
    """The export form sent as it comes: every column ticked, as CSV."""
    page = client.get(url)
    assert page.status_code == 200
    html = page.content.decode()
    columns = re.findall(r'type="checkbox" name="(\w+resource_\w+)"', html)
    return client.post(url, {"format": choice(html, "csv"), "resource": "0", **dict.fromkeys(columns, "on")})


def preview(client: Client, content: str = CSV) -> Any:
    page = client.get(PERSON_IMPORT)
    assert page.status_code == 200
    upload = SimpleUploadedFile("people.csv", content.encode(), content_type="text/csv")
    return client.post(PERSON_IMPORT, {"format": choice(page.content.decode(), "csv"), "import_file": upload})


def confirm_data(page: str) -> dict[str, str]:
    fields = ("import_file_name", "original_file_name", "format", "resource")
    found = {}
    for name in fields:
        match = re.search(rf'name="{name}" value="([^"]*)"', page)
        if match:
            found[name] = match.group(1)
    return found


@pytest.fixture
def people_and_reviews() -> None:
    PersonFactory(username="grace", email="grace@example.com", phone={"cell": "802-555-0100"})
    FeedbackFactory(title="Quietly hidden", status=Feedback.Status.HIDDEN)


@pytest.mark.usefixtures("people_and_reviews")
@pytest.mark.parametrize("url", [PERSON_IMPORT, PERSON_EXPORT, FEEDBACK_EXPORT])
def test_staff_without_permissions_can_neither_import_nor_export(url: str) -> None:
    client = logged_in(staff_with("catalog"))
    assert client.get(url).status_code == 403
    assert client.post(url, {"format": "0"}).status_code == 403


def test_staff_without_permissions_cannot_confirm_an_import() -> None:
    client = logged_in(staff_with("catalog"))
    response = client.post(
        PERSON_PROCESS_IMPORT,
        {"import_file_name": "x", "original_file_name": "people.csv", "format": "0", "resource": "0"},
    )
    assert response.status_code == 403
    assert not Person.objects.exists()


@pytest.mark.usefixtures("people_and_reviews")
def test_the_view_permission_lets_staff_export_but_not_import() -> None:
    client = logged_in(staff_with("catalog", "view_person", "view_feedback"))
    people = export(client, PERSON_EXPORT)
    reviews = export(client, FEEDBACK_EXPORT)
    assert people.status_code == 200
    assert "grace@example.com" in people.content.decode()
    assert reviews.status_code == 200
    assert "Quietly hidden" in reviews.content.decode()
    assert client.get(PERSON_IMPORT).status_code == 403


@pytest.mark.parametrize("one_of_them", ["add_person", "change_person"])
def test_importing_people_needs_both_add_and_change(one_of_them: str) -> None:
    assert logged_in(staff_with("catalog", "view_person", one_of_them)).get(PERSON_IMPORT).status_code == 403


def test_add_and_change_let_staff_import_people() -> None:
    client = logged_in(staff_with("catalog", "view_person", "add_person", "change_person"))
    page = preview(client)
    assert page.status_code == 200
    response = client.post(PERSON_PROCESS_IMPORT, confirm_data(page.content.decode()))
    assert response.status_code == 302
    assert Person.objects.get(username="ada").phone == {"office": "1"}


def test_people_are_imported_from_the_formats_the_command_reads_and_exported_to_more() -> None:
    client = logged_in(staff_with("catalog", "view_person", "add_person", "change_person"))
    imports = re.findall(
        r"<option value=\"\d+\"[^>]*>(\w+)</option>", client.get(PERSON_IMPORT).content.decode()
    )
    assert imports == ["csv", "tsv", "json", "yaml"]
    exports = re.findall(
        r"<option value=\"\d+\"[^>]*>(\w+)</option>", client.get(PERSON_EXPORT).content.decode()
    )
    assert "html" in exports


# --- Between the preview and the confirmation ------------------------------------


@pytest.fixture
def importer() -> Client:
    return logged_in(staff_with("catalog", "view_person", "add_person", "change_person"))


def test_an_import_is_confirmed_by_another_server_through_the_shared_cache(
    importer: Client, settings: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(tmp_path / "shared-cache"),
        }
    }
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "server-a"))
    (tmp_path / "server-a").mkdir()
    confirmation = confirm_data(preview(importer).content.decode())
    # The other server has a temp folder of its own.
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "server-b"))
    response = importer.post(PERSON_PROCESS_IMPORT, confirmation)
    assert response.status_code == 302
    assert Person.objects.filter(username="ada").exists()
    assert not any((tmp_path / "server-a").iterdir())
    assert not settings.IMPORT_FILES_DIR.exists()


def test_without_a_shared_cache_every_worker_of_the_machine_reads_the_file(
    importer: Client, settings: Any
) -> None:
    confirmation = confirm_data(preview(importer).content.decode())
    assert [p.name for p in settings.IMPORT_FILES_DIR.iterdir()] == [confirmation["import_file_name"]]
    assert importer.post(PERSON_PROCESS_IMPORT, confirmation).status_code == 302
    assert not any(settings.IMPORT_FILES_DIR.iterdir())


def test_an_import_confirmed_too_late_is_refused_asking_for_the_file_again(
    importer: Client, settings: Any
) -> None:
    confirmation = confirm_data(preview(importer).content.decode())
    settings.IMPORT_FILES_SECONDS = 0
    response = importer.post(PERSON_PROCESS_IMPORT, confirmation)
    assert response.status_code == 400
    assert "Upload the file again" in response.content.decode()
    assert 'name="import_file"' in response.content.decode()
    assert not Person.objects.exists()


def test_an_import_confirmed_twice_is_done_once(importer: Client) -> None:
    confirmation = confirm_data(preview(importer).content.decode())
    assert importer.post(PERSON_PROCESS_IMPORT, confirmation).status_code == 302
    Person.objects.all().delete()
    response = importer.post(PERSON_PROCESS_IMPORT, confirmation)
    assert response.status_code == 400
    assert not Person.objects.exists()


def test_previews_never_confirmed_are_swept(importer: Client, settings: Any) -> None:
    old = confirm_data(preview(importer).content.decode())["import_file_name"]
    path = settings.IMPORT_FILES_DIR / old
    stale = time.time() - settings.IMPORT_FILES_SECONDS - 1
    os.utime(path, (stale, stale))
    preview(importer)
    assert not path.exists()
    assert len(list(settings.IMPORT_FILES_DIR.iterdir())) == 1


def test_a_confirmation_reads_no_file_but_its_own(importer: Client, tmp_path: Path) -> None:
    other = tmp_path / "other.csv"
    other.write_text(CSV)
    confirmation = confirm_data(preview(importer).content.decode())
    for name in (str(other), "../other.csv"):
        response = importer.post(PERSON_PROCESS_IMPORT, {**confirmation, "import_file_name": name})
        assert response.status_code == 400
    assert other.exists()
    assert not Person.objects.exists()
