"""The folders import_feedback, import_images and import_supplier read, as
other programs fill them: litter of desktops and uploads, links, pipes, odd
names, and files still being written (core.dropfolder)."""

from __future__ import annotations

import io
import os
import time
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

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
        assert f"skipped {name}: changed 0 s ago, maybe still being written; left for the next run" in err
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
    assert "skipped 002.txt: changed 0 s ago, maybe still being written" in err
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
