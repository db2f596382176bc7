"""The folders import_feedback, import_images and import_supplier read, as
other programs fill them: litter of desktops and uploads, links, pipes, odd
names, and files still being written (core.dropfolder)."""

from __future__ import annotations

import contextlib
import io
import os
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from django.core.management import CommandError, call_command

from catalog import formats
from catalog.models import Feedback, Product
from core import dropfolder
from tests.uploads import corpus
from uploads.models import Image

REVIEW = "Fine\nAnn\n2021-02-03\nGood apples.\n"


def run(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = 0
    try:
        call_command(*args, stdout=out, stderr=err)
    except CommandError as exc:
        code = exc.returncode
    return code, out.getvalue(), err.getvalue()


def odd_name(folder: Path, raw: bytes) -> Path:
    """A file whose name holds bytes that are not UTF-8 (os.listdir gives them as surrogates)."""
    return folder / os.fsdecode(raw)


def litter(folder: Path, outside: Path, *, suffix: str) -> None:
    """What a desktop, an upload or a hand leaves in a folder besides the files meant for it."""
    (folder / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (folder / f"._001{suffix}").write_bytes(b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X")
    (folder / f".#draft{suffix}").symlink_to("root@host.1234")  # an editor's lock
    (folder / f"~$draft{suffix}").write_bytes(b"\x05Ann   ")  # Office's lock
    (folder / f"002{suffix}.part").write_bytes(b"half")
    (folder / f"003{suffix}.crdownload").write_bytes(b"half")
    (folder / f"folder{suffix}").mkdir()
    os.mkfifo(folder / f"pipe{suffix}")  # opened, it would wait for a writer for ever
    (folder / f"loop{suffix}").symlink_to(f"loop{suffix}")
    (folder / f"gone{suffix}").symlink_to(folder / f"nowhere{suffix}")
    (folder / f"outside{suffix}").symlink_to(outside)
    odd_name(folder, b"caf\xe9" + suffix.encode()).write_bytes(outside.read_bytes())
    (folder / f"two\nlines{suffix}").write_bytes(outside.read_bytes())


LEFT_OUT = [
    ("skipped", "~$draft{s}", "a temporary file"),
    ("skipped", "002{s}.part", "a temporary file"),
    ("skipped", "003{s}.crdownload", "a temporary file"),
    ("skipped", "folder{s}", "a folder"),
    ("rejected", "pipe{s}", "cannot be read: a named pipe, not a file"),
    ("rejected", "loop{s}", "cannot be read: Too many levels of symbolic links"),
    ("rejected", "gone{s}", "cannot be read: No such file or directory"),
    ("rejected", "outside{s}", "a link to a file outside the folder"),
    ("rejected", "caf\\xe9{s}", "its name is not UTF-8 text; rename the file"),
    ("rejected", "two\\nlines{s}", "its name holds a control character"),
]


def assert_left_out(err: str, *, suffix: str, prefix: str = "") -> None:
    for verdict, name, reason in LEFT_OUT:
        assert f"{verdict} {prefix}{name.format(s=suffix)}: {reason}" in err, err
    # Hidden files are passed over without a word, as ls does.
    assert "DS_Store" not in err
    assert "._001" not in err
    assert ".#draft" not in err
    # Every name is printed on one line.
    assert "two\nlines" not in err


@pytest.mark.django_db
def test_import_feedback_takes_the_reviews_and_names_everything_else(tmp_path: Path) -> None:
    folder, secret = tmp_path / "feedback", tmp_path / "secret.txt"
    folder.mkdir()
    secret.write_text("Secret\nOps\n2021-02-03\nThe root password.\n")
    (folder / "001.txt").write_text(REVIEW)
    (folder / "LICENSE").write_text("Apache License")
    litter(folder, secret, suffix=".txt")
    code, out, err = run("import_feedback", str(folder))
    assert code == 2
    assert out.strip() == "1 reviews created, 0 updated, 0 skipped as duplicates, 6 rejected."
    assert_left_out(err, suffix=".txt")
    assert "skipped LICENSE: not a .txt review" in err
    assert list(Feedback.objects.values_list("title", flat=True)) == ["Fine"]


@pytest.mark.django_db
def test_import_images_takes_the_images_and_names_everything_else(tmp_path: Path, commit: Any) -> None:
    folder, elsewhere = tmp_path / "icons", tmp_path / "private.png"
    folder.mkdir()
    elsewhere.write_bytes(corpus.png(corpus.quadrants(64, 48)))
    (folder / "001.png").write_bytes(corpus.png(corpus.quadrants(80, 60)))
    litter(folder, elsewhere, suffix=".png")
    with commit():
        code, out, err = run("import_images", str(folder), "--preset", "icon")
    assert code == 2
    assert out.startswith("1 images imported, 0 already there, 4 files skipped, 6 rejected.")
    assert_left_out(err, suffix=".png")
    assert list(Image.objects.values_list("original_name", flat=True)) == ["001.png"]


@pytest.mark.django_db(transaction=True)
def test_import_supplier_takes_the_delivery_and_names_everything_else(tmp_path: Path) -> None:
    folder, elsewhere = tmp_path / "supplier-data", tmp_path / "private.jpeg"
    (folder / "descriptions").mkdir(parents=True)
    (folder / "images").mkdir()
    elsewhere.write_bytes(corpus.jpeg(corpus.quadrants(64, 48)))
    (folder / "descriptions" / "001.txt").write_text("Apple\n50 lbs\nRed.\n")
    (folder / "images" / "001.jpeg").write_bytes(corpus.jpeg(corpus.quadrants(80, 60)))
    litter(folder / "images", elsewhere, suffix=".jpeg")
    code, out, err = run("import_supplier", str(folder), "--no-email", "--wait", "30")
    assert code == 2
    assert out.startswith(
        "1 products created, 0 updated, 0 unchanged, 0 rejected; 1 images imported, 0 already there, "
        "6 rejected, 0 failed, 4 files skipped."
    ), out
    assert_left_out(err, suffix=".jpeg", prefix="images/")
    assert list(Image.objects.values_list("original_name", flat=True)) == ["001.jpeg"]
    photo = Product.objects.get().image
    assert photo is not None
    assert photo.original_name == "001.jpeg"


def desk_litter(folder: Path) -> None:
    """What a desktop and a hand leave beside the .txt files of a folder."""
    (folder / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (folder / "Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1")
    (folder / "notes.docx").write_bytes(b"PK\x03\x04")
    (folder / "001.txt~").write_text("an editor's backup")
    (folder / "old").mkdir()
    (folder / "old" / "009.txt").write_text("not read")


DESK_LITTER = [  # by name, as the folder is read
    ("001.txt~", "a temporary file of an upload or an editor"),
    ("Thumbs.db", "not a .txt {what}"),
    ("notes.docx", "not a .txt {what}"),
    ("old", "a folder (folders in it are not read)"),
]


@pytest.mark.django_db
def test_import_feedback_skips_the_litter_beside_the_reviews_each_in_a_line(tmp_path: Path) -> None:
    folder = tmp_path / "feedback"
    folder.mkdir()
    (folder / "001.txt").write_text(REVIEW)
    desk_litter(folder)
    code, out, err = run("import_feedback", str(folder))
    assert code == 0, err  # nothing failed
    assert out.strip() == "1 reviews created, 0 updated, 0 skipped as duplicates, 0 rejected."
    lines = err.splitlines()
    assert lines == [f"skipped {name}: {reason.format(what='review')}" for name, reason in DESK_LITTER]
    assert list(Feedback.objects.values_list("title", flat=True)) == ["Fine"]


@pytest.mark.django_db(transaction=True)
def test_import_supplier_skips_the_litter_beside_the_descriptions_each_in_a_line(tmp_path: Path) -> None:
    folder = tmp_path / "supplier-data"
    (folder / "descriptions").mkdir(parents=True)
    (folder / "descriptions" / "001.txt").write_text("Apple\n50 lbs\nRed.\n")
    desk_litter(folder / "descriptions")
    code, out, err = run("import_supplier", str(folder), "--no-email", "--wait", "30")
    assert code == 0, err  # nothing failed
    assert out.startswith("1 products created, 0 updated, 0 unchanged, 0 rejected; 0 images imported")
    assert out.rstrip().endswith("4 files skipped."), out
    lines = err.splitlines()
    assert lines == [
        f"skipped descriptions/{name}: {reason.format(what='description')}" for name, reason in DESK_LITTER
    ]
    assert list(Product.objects.values_list("name", flat=True)) == ["Apple"]


def age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


@pytest.mark.django_db(transaction=True)
def test_a_delivery_file_still_being_written_is_left_for_the_next_run(tmp_path: Path, settings: Any) -> None:
    settings.IMPORT_SETTLE_SECONDS = 60
    folder = tmp_path / "supplier-data"
    (folder / "descriptions").mkdir(parents=True)
    (folder / "images").mkdir()
    (folder / "descriptions" / "001.txt").write_text("Apple\n50 lbs\nRed.\n")
    (folder / "images" / "001.jpeg").write_bytes(corpus.jpeg(corpus.quadrants(80, 60)))
    for path in (folder / "descriptions" / "001.txt", folder / "images" / "001.jpeg"):
        age(path, 3600)
    # The supplier's upload of the second product is under way: half of each file so far.
    (folder / "descriptions" / "002.txt").write_text("Banana\n3")
    photo = corpus.jpeg(corpus.quadrants(90, 60))
    (folder / "images" / "002.jpeg").write_bytes(photo[: len(photo) // 2])
    code, out, err = run("import_supplier", str(folder), "--no-email", "--wait", "30")
    assert code == 0, err  # nothing failed: the rest comes with the next run
    assert out.startswith("1 products created, 0 updated, 0 unchanged, 0 rejected; 1 images imported")
    for name in ("descriptions/002.txt", "images/002.jpeg"):
        # Its age as the run found it: a second or so, on a slow machine.
        assert re.search(
            rf"skipped {name}: changed \d+ s ago, maybe still being written; left for the next run", err
        ), err
    assert list(Product.objects.values_list("name", flat=True)) == ["Apple"]
    assert Image.objects.count() == 1

    (folder / "descriptions" / "002.txt").write_text("Banana\n30 lbs\nYellow.\n")
    (folder / "images" / "002.jpeg").write_bytes(photo)
    for path in (folder / "descriptions" / "002.txt", folder / "images" / "002.jpeg"):
        age(path, 61)
    code, out, err = run("import_supplier", str(folder), "--no-email", "--wait", "30")
    assert code == 0, err
    banana = Product.objects.get(name="Banana")
    assert banana.weight == 30
    assert banana.image is not None
    assert banana.image.status == Image.Status.READY


@pytest.mark.django_db
def test_a_review_still_being_written_is_left_for_the_next_run(tmp_path: Path, settings: Any) -> None:
    settings.IMPORT_SETTLE_SECONDS = 60
    folder = tmp_path / "feedback"
    folder.mkdir()
    (folder / "001.txt").write_text(REVIEW)
    age(folder / "001.txt", 61)
    (folder / "002.txt").write_text("Sour\nBob\n2021-02-04\nThe lemons were")
    code, out, err = run("import_feedback", str(folder))
    assert code == 0, err
    assert out.startswith("1 reviews created")
    assert re.search(r"skipped 002.txt: changed \d+ s ago, maybe still being written", err), err
    assert list(Feedback.objects.values_list("title", flat=True)) == ["Fine"]


def test_a_link_is_followed_to_a_file_of_the_same_folder_only(tmp_path: Path, settings: Any) -> None:
    settings.IMPORT_SETTLE_SECONDS = 0
    folder = tmp_path / "feedback"
    (folder / "inner").mkdir(parents=True)
    (folder / "001.txt").write_text(REVIEW)
    (folder / "inner" / "kept.txt").write_text(REVIEW)
    (folder / "sibling.txt").symlink_to("001.txt")
    (folder / "nested.txt").symlink_to(Path("inner") / "kept.txt")
    found = dropfolder.listing(folder)
    assert [path.name for path in found.files] == ["001.txt", "sibling.txt"]
    assert ("nested.txt", "a link to a file outside the folder; copy the file in instead") in found.rejected
    assert ("inner", "a folder (folders in it are not read)") in found.skipped


@contextlib.contextmanager
def appended_while_read(path: Path) -> Iterator[threading.Event]:
    """A program that goes on writing ``path`` after an import listed it: a
    byte lands once the import has the file open and has read it, before it
    checks the file is as it was. Put there, not by a thread racing the
    read: on a loaded machine the read of a few milliseconds was over before
    such a thread saw the file open. The event is set once the byte is
    written; were the import to check nothing, it stays unset."""
    wrote = threading.Event()
    check = dropfolder.check_unchanged

    def written_to_then_checked(checked: Path, fd: int, before: os.stat_result) -> None:
        if os.path.realpath(checked) == os.path.realpath(path) and not wrote.is_set():
            with path.open("ab", buffering=0) as fh:
                fh.write(b"\n")
            wrote.set()
        check(checked, fd, before)

    with mock.patch.object(dropfolder, "check_unchanged", written_to_then_checked):
        yield wrote


def big_photo(path: Path) -> None:
    """A photo with 20 MB of metadata after it: read for a while."""
    path.write_bytes(corpus.png(corpus.quadrants(80, 60)) + b"\0" * (20 * 1024 * 1024))


def test_a_file_written_to_after_it_was_opened_is_told_by_its_descriptor_and_path(tmp_path: Path) -> None:
    path = tmp_path / "001.txt"
    path.write_text(REVIEW)
    with path.open("rb") as fh:
        before = os.fstat(fh.fileno())
        fh.read()
        dropfolder.check_unchanged(path, fh.fileno(), before)  # as it was: no error
        with path.open("a") as writer:
            writer.write("More.\n")
        with pytest.raises(dropfolder.ChangedWhileRead, match=r"^changed while it was being read; left"):
            dropfolder.check_unchanged(path, fh.fileno(), before)
    with path.open("rb") as fh:
        before = os.fstat(fh.fileno())
        fh.read()
        replacement = tmp_path / "002.txt"
        replacement.write_bytes(path.read_bytes())  # the same bytes, another file
        replacement.replace(path)
        with pytest.raises(dropfolder.ChangedWhileRead):
            dropfolder.check_unchanged(path, fh.fileno(), before)


@pytest.mark.django_db
@pytest.mark.parametrize("settle", [0, 60])
def test_a_photo_written_to_while_it_is_read_is_left_for_the_next_run(
    tmp_path: Path, settings: Any, commit: Any, settle: int
) -> None:
    settings.IMPORT_SETTLE_SECONDS = settle
    settings.IMAGE_MAX_BYTES = 64 * 1024 * 1024
    folder = tmp_path / "icons"
    folder.mkdir()
    big_photo(folder / "001.png")
    age(folder / "001.png", 3600)
    with commit(), appended_while_read(folder / "001.png") as wrote:
        code, out, err = run("import_images", str(folder), "--preset", "icon")
    assert wrote.is_set()
    assert code == 0, err  # nothing failed: the file comes with the next run
    assert out.startswith("0 images imported, 0 already there, 1 files skipped."), out
    assert "skipped 001.png: changed while it was being read; left for the next run" in err
    assert not Image.objects.exists()


@pytest.mark.django_db
def test_a_review_written_to_while_it_is_read_is_left_for_the_next_run(
    tmp_path: Path, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.IMPORT_SETTLE_SECONDS = 0
    # Room for a review that is read for a while.
    monkeypatch.setattr(formats, "REVIEW_MAX_BYTES", 64 * 1024 * 1024)
    folder = tmp_path / "feedback"
    folder.mkdir()
    (folder / "001.txt").write_text(REVIEW + "Very good apples. " * 1_000_000)
    (folder / "002.txt").write_text(REVIEW.replace("Fine", "Also fine"))
    with appended_while_read(folder / "001.txt") as wrote:
        code, out, err = run("import_feedback", str(folder))
    assert wrote.is_set()
    assert code == 0, err
    assert out.startswith("1 reviews created"), out
    assert "skipped 001.txt: changed while it was being read; left for the next run" in err
    assert list(Feedback.objects.values_list("title", flat=True)) == ["Also fine"]


@pytest.mark.django_db(transaction=True)
def test_a_delivery_photo_written_to_while_it_is_read_is_left_for_the_next_run(
    tmp_path: Path, settings: Any
) -> None:
    settings.IMPORT_SETTLE_SECONDS = 0
    settings.IMAGE_MAX_BYTES = 64 * 1024 * 1024
    folder = tmp_path / "supplier-data"
    (folder / "descriptions").mkdir(parents=True)
    (folder / "images").mkdir()
    (folder / "descriptions" / "001.txt").write_text("Apple\n50 lbs\nRed.\n")
    big_photo(folder / "images" / "001.png")
    with appended_while_read(folder / "images" / "001.png") as wrote:
        code, out, err = run("import_supplier", str(folder), "--no-email", "--wait", "30")
    assert wrote.is_set()
    assert code == 0, err
    assert out.startswith(
        "1 products created, 0 updated, 0 unchanged, 0 rejected; 0 images imported, 0 already there, "
        "0 failed, 1 files skipped."
    ), out
    assert "skipped images/001.png: changed while it was being read; left for the next run" in err
    assert not Image.objects.exists()


def unreadable(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    """``folder`` as one the portal's user may not list (a supplier's upload
    kept private by its umask): the tests may run as root, which lists any."""
    scandir = os.scandir

    def refusing(path: Any = ".") -> Any:
        if os.fspath(path) == os.fspath(folder):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return scandir(path)

    monkeypatch.setattr(os, "scandir", refusing)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("command", "folder", "unlisted"),
    [
        ("import_feedback", "feedback", "feedback"),
        ("import_images", "icons", "icons"),
        ("import_supplier", "supplier-data", "supplier-data/images"),
    ],
)
def test_a_folder_that_cannot_be_listed_is_told_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: str, folder: str, unlisted: str
) -> None:
    (tmp_path / folder / "descriptions").mkdir(parents=True)
    (tmp_path / folder / "images").mkdir()
    (tmp_path / folder / "descriptions" / "001.txt").write_text("Apple\n50 lbs\nRed.\n")
    (tmp_path / folder / "001.txt").write_text(REVIEW)
    unreadable(monkeypatch, tmp_path / unlisted)
    args = ["--no-email"] if command == "import_supplier" else []
    with pytest.raises(CommandError) as raised:
        call_command(command, str(tmp_path / folder), *args, stdout=io.StringIO(), stderr=io.StringIO())
    assert str(raised.value) == (
        f"Cannot read the folder {tmp_path / unlisted}: Permission denied. Nothing was imported."
    )
    assert raised.value.returncode == 1
    assert not Feedback.objects.exists()
    assert not Product.objects.exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("command", "args", "refused", "named"),
    [
        ("import_feedback", [], "002.txt", "002.txt"),
        ("import_images", ["--preset", "icon"], "002.png", "002.png"),
        ("import_supplier", ["--no-email", "--wait", "30"], "descriptions/002.txt", "descriptions/002.txt"),
    ],
)
def test_a_file_the_import_may_not_open_is_named_in_the_same_words_by_each_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: str, args: list[str], refused: str, named: str
) -> None:
    folder = tmp_path / "drop"
    (folder / "descriptions").mkdir(parents=True)
    (folder / "images").mkdir()
    (folder / "001.txt").write_text(REVIEW)
    (folder / "002.txt").write_text(REVIEW.replace("Fine", "Also fine"))
    (folder / "002.png").write_bytes(corpus.png(corpus.quadrants(80, 60)))
    (folder / "descriptions" / "002.txt").write_text("Apple\n50 lbs\nRed.\n")
    os_open = os.open

    def refusing(path: Any, *rest: Any, **kwargs: Any) -> int:
        if os.fspath(path) == os.fspath(folder / refused):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return os_open(path, *rest, **kwargs)

    monkeypatch.setattr(os, "open", refusing)
    _code, _out, err = run(command, str(folder), *args)
    assert f"rejected {named}: cannot be read: Permission denied\n" in err, err
    assert str(folder) not in err  # one line naming the file, not the errno and its path


def swapped_after_listing(monkeypatch: pytest.MonkeyPatch, name: str, swap: Any) -> None:
    """The file ``name`` replaced by ``swap(path)`` once an import has listed
    its folder: what a program writing the folder can do at any moment."""
    listing = dropfolder.listing

    def then_swapped(folder: Path, **kwargs: Any) -> dropfolder.Listing:
        found = listing(folder, **kwargs)
        if (folder / name).exists():
            (folder / name).unlink()
            swap(folder / name)
        return found

    monkeypatch.setattr(dropfolder, "listing", then_swapped)


@pytest.mark.django_db
def test_a_review_swapped_for_a_link_out_of_the_folder_after_listing_is_not_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder, secret = tmp_path / "feedback", tmp_path / "secret.txt"
    folder.mkdir()
    secret.write_text("Secret\nOps\n2021-02-03\nThe root password.\n")
    (folder / "001.txt").write_text(REVIEW)
    (folder / "002.txt").write_text(REVIEW.replace("Fine", "Also fine"))
    swapped_after_listing(monkeypatch, "001.txt", lambda path: path.symlink_to(secret))
    code, out, err = run("import_feedback", str(folder))
    assert code == 0, err
    assert out.strip() == "1 reviews created, 0 updated, 0 skipped as duplicates, 0 rejected."
    assert "skipped 001.txt: changed while it was being read; left for the next run" in err
    assert list(Feedback.objects.values_list("title", flat=True)) == ["Also fine"]
    # The next run lists the link, and rejects it.
    monkeypatch.undo()
    code, _out, err = run("import_feedback", str(folder))
    assert code == 2
    assert "rejected 001.txt: a link to a file outside the folder" in err
    assert not Feedback.objects.filter(title="Secret").exists()


@pytest.mark.django_db
def test_a_photo_swapped_for_a_link_out_of_the_folder_after_listing_is_not_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, commit: Any
) -> None:
    folder, private = tmp_path / "icons", tmp_path / "private.png"
    folder.mkdir()
    private.write_bytes(corpus.png(corpus.quadrants(64, 48)))
    (folder / "001.png").write_bytes(corpus.png(corpus.quadrants(80, 60)))
    swapped_after_listing(monkeypatch, "001.png", lambda path: path.symlink_to(private))
    with commit():
        code, _out, err = run("import_images", str(folder), "--preset", "icon")
    assert code == 0, err
    assert "skipped 001.png: changed while it was being read; left for the next run" in err
    assert not Image.objects.exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("name", ["descriptions/002.txt", "images/001.jpeg"])
def test_a_delivery_file_swapped_for_a_pipe_after_listing_is_not_waited_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    folder = tmp_path / "supplier-data"
    (folder / "descriptions").mkdir(parents=True)
    (folder / "images").mkdir()
    (folder / "descriptions" / "001.txt").write_text("Apple\n50 lbs\nRed.\n")
    (folder / "descriptions" / "002.txt").write_text("Banana\n30 lbs\nYellow.\n")
    (folder / "images" / "001.jpeg").write_bytes(corpus.jpeg(corpus.quadrants(80, 60)))
    sub, _, file_name = name.partition("/")
    listing = dropfolder.listing

    def then_piped(listed: Path, **kwargs: Any) -> dropfolder.Listing:
        found = listing(listed, **kwargs)
        if listed.name == sub:
            (listed / file_name).unlink()
            os.mkfifo(listed / file_name)  # opened as before, the run would wait for a writer for ever
        return found

    monkeypatch.setattr(dropfolder, "listing", then_piped)
    outcome: list[tuple[int, str, str]] = []
    runner = threading.Thread(
        target=lambda: outcome.append(run("import_supplier", str(folder), "--no-email", "--wait", "30")),
        daemon=True,
    )
    runner.start()
    runner.join(20)
    if runner.is_alive():  # let it go: a writer's open ends the wait
        with contextlib.suppress(OSError), (folder / name).open("wb"):
            pass
        runner.join(60)
        pytest.fail(f"the import waited on the pipe {name}")
    code, _out, err = outcome[0]
    assert code == 0, err
    assert f"skipped {name}: changed while it was being read; left for the next run" in err


@pytest.mark.django_db
def test_a_settled_review_written_to_again_after_listing_is_left_for_the_next_run(
    tmp_path: Path, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The wait holds when the file is read, not only when it was listed: a
    supplier's upload that starts over a file the run found settled has
    written half of it when the import reaches it, and writes no more
    during the read itself."""
    settings.IMPORT_SETTLE_SECONDS = 60
    folder = tmp_path / "feedback"
    folder.mkdir()
    (folder / "001.txt").write_text(REVIEW)
    (folder / "002.txt").write_text(REVIEW.replace("Fine", "Also fine"))
    for path in folder.iterdir():
        age(path, 3600)
    listing = dropfolder.listing

    def then_written(folder: Path, **kwargs: Any) -> dropfolder.Listing:
        found = listing(folder, **kwargs)
        with (folder / "001.txt").open("r+") as fh:  # the same file, cut and half written
            fh.truncate(0)
            fh.write("Fine\nAnn\n2021-02-03\nGood app")
        return found

    monkeypatch.setattr(dropfolder, "listing", then_written)
    code, out, err = run("import_feedback", str(folder))
    assert code == 0, err
    assert out.strip() == "1 reviews created, 0 updated, 0 skipped as duplicates, 0 rejected."
    assert "skipped 001.txt: changed while it was being read; left for the next run" in err
    assert list(Feedback.objects.values_list("title", flat=True)) == ["Also fine"]
