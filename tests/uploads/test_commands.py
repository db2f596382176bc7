from __future__ import annotations

import io
import resource
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.files.storage import default_storage
from django.core.management import CommandError, call_command
from PIL import Image as PILImage

from tests.uploads import corpus
from uploads import services
from uploads.models import Image, Rendition

pytestmark = pytest.mark.django_db


@pytest.fixture
def run(commit: Any) -> Any:
    def run(*args: str) -> tuple[str, str]:
        out, err = io.StringIO(), io.StringIO()
        with commit():
            call_command(*args, stdout=out, stderr=err)
        return out.getvalue(), err.getvalue()

    return run


@pytest.fixture
def icon_delivery(tmp_path: Path) -> Path:
    folder = tmp_path / "icons"
    folder.mkdir()
    (folder / "ic_edit_location_black_48dp").write_bytes(corpus.icon_tiff())
    (folder / "ic_add_black_48dp").write_bytes(corpus.icon_tiff(side=96))
    (folder / "LICENSE").write_text("Apache License 2.0")
    (folder / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (folder / "README.md").write_text("# icons")
    return folder


def test_import_images_handles_icons_without_extensions_and_skips_stray_files(
    icon_delivery: Path, tmp_path: Path, run: Any
) -> None:
    export = tmp_path / "out"
    out, err = run("import_images", str(icon_delivery), "--preset", "icon", "--export", str(export))
    assert out.startswith("2 images imported, 0 already there, 2 files skipped")
    assert "skipped LICENSE:" in err
    assert "skipped README.md:" in err
    assert sorted(p.name for p in export.iterdir()) == [
        "ic_add_black_48dp.jpg",
        "ic_edit_location_black_48dp.jpg",
    ]
    with PILImage.open(export / "ic_edit_location_black_48dp.jpg") as icon:
        assert (icon.format, icon.mode, icon.size) == ("JPEG", "RGB", (128, 128))
    assert set(Image.objects.values_list("status", flat=True)) == {"ready"}


def test_a_file_already_uploaded_under_another_name_is_exported_under_the_folders_name(
    icon_delivery: Path, tmp_path: Path, run: Any
) -> None:
    export = tmp_path / "out"
    (icon_delivery / "ic_add_black_48dp").rename(icon_delivery / "renamed_icon")
    run("import_images", str(icon_delivery), "--preset", "icon")  # stored under the old names
    (icon_delivery / "renamed_icon").rename(icon_delivery / "ic_add_black_48dp")

    out, _ = run("import_images", str(icon_delivery), "--preset", "icon", "--export", str(export))

    assert out.startswith("0 images imported, 2 already there")
    assert sorted(p.name for p in export.iterdir()) == [
        "ic_add_black_48dp.jpg",
        "ic_edit_location_black_48dp.jpg",
    ]


def test_a_rendition_that_cannot_be_written_is_named_and_the_others_are_exported(
    tmp_path: Path, run: Any
) -> None:
    folder, export = tmp_path / "in", tmp_path / "out"
    folder.mkdir()
    long = "L" * 250 + ".jpg"  # a name the file system takes, but not with "-thumb" added
    (folder / long).write_bytes(corpus.jpeg(corpus.solid((200, 0, 0), (48, 32))))
    (folder / "short.jpg").write_bytes(corpus.jpeg(corpus.solid((0, 200, 0), (48, 32))))

    with pytest.raises(CommandError) as raised:
        run("import_images", str(folder), "--export", str(export))

    assert raised.value.returncode == 2
    assert "rendition(s) not exported" in str(raised.value)
    written = sorted(p.name for p in export.iterdir())
    assert "short-thumb.jpg" in written
    assert all(name.startswith("short-") for name in written)
    assert Image.objects.filter(status=Image.Status.READY).count() == 2


@pytest.mark.parametrize(
    ("where", "why"),
    [("file", "it is a file"), ("file/out", "Not a directory")],
    ids=["a-file", "under-a-file"],
)
def test_an_export_folder_that_cannot_be_made_is_refused_before_anything_is_imported(
    icon_delivery: Path, tmp_path: Path, where: str, why: str
) -> None:
    (tmp_path / "file").write_text("not a folder")
    export = tmp_path / where
    with pytest.raises(CommandError) as refused:
        call_command("import_images", str(icon_delivery), "--export", str(export), stdout=io.StringIO())
    assert refused.value.returncode == 1
    assert str(refused.value) == f"Cannot make the --export folder {export}: {why}. Nothing was imported."
    assert Image.objects.count() == 0
    assert (tmp_path / "file").read_text() == "not a folder"


def test_files_of_one_stem_are_all_exported_none_overwritten(tmp_path: Path, run: Any) -> None:
    folder, export = tmp_path / "in", tmp_path / "out"
    folder.mkdir()
    colours = {"photo.jpg": (200, 0, 0), "photo.png": (0, 200, 0), "photo.tiff": (0, 0, 200)}
    for name, colour in colours.items():
        kind = {"jpg": "JPEG", "png": "PNG", "tiff": "TIFF"}[name.split(".")[1]]
        (folder / name).write_bytes(corpus._save(corpus.solid(colour, (48, 32)), kind))

    (folder / "same.jpg").write_bytes((folder / "photo.jpg").read_bytes())

    out, err = run("import_images", str(folder), "--preset", "supplier", "--export", str(export))

    assert out.startswith("3 images imported, 1 already there")
    assert "not exported same.jpg: the same file as photo.jpg" in err
    assert sorted(p.name for p in export.iterdir()) == ["photo-png.jpg", "photo-tiff.jpg", "photo.jpg"]
    assert "exported photo.png as photo-png.jpg: photo.jpg came from another file" in err
    for exported, source in [
        ("photo.jpg", "photo.jpg"),
        ("photo-png.jpg", "photo.png"),
        ("photo-tiff.jpg", "photo.tiff"),
    ]:
        with PILImage.open(export / exported) as img:
            pixel = img.convert("RGB").getpixel((10, 10))
        assert isinstance(pixel, tuple)
        assert all(abs(a - b) <= 12 for a, b in zip(pixel, colours[source], strict=True)), (exported, pixel)


def test_a_file_whose_name_is_whitespace_and_an_extension_is_exported_under_a_name_that_is_not_hidden(
    tmp_path: Path, run: Any
) -> None:
    # Its stem, trimmed, is empty: named after it, the rendition would be
    # ".jpg", which folders hide and a later import of them skips.
    folder, export = tmp_path / "in", tmp_path / "out"
    folder.mkdir()
    (folder / " .png").write_bytes(corpus._save(corpus.solid((200, 0, 0), (48, 32)), "PNG"))
    (folder / "\u3000.tiff").write_bytes(corpus._save(corpus.solid((0, 200, 0), (48, 32)), "TIFF"))
    (folder / " 006.png ").write_bytes(corpus._save(corpus.solid((0, 0, 200), (48, 32)), "PNG"))

    out, err = run("import_images", str(folder), "--preset", "supplier", "--export", str(export))

    assert out.startswith("3 images imported, 0 already there")
    assert "exported" not in err
    assert sorted(p.name for p in export.iterdir()) == sorted([" .jpg", "\u3000.jpg", "006.jpg"])


def test_files_whose_names_differ_only_in_case_are_exported_for_a_folder_that_ignores_it(
    tmp_path: Path, run: Any
) -> None:
    # On macOS or a Windows share, "a.jpg" written after "A.jpg" overwrites it.
    folder, export = tmp_path / "in", tmp_path / "out"
    folder.mkdir()
    colours = {"A.jpg": (200, 0, 0), "a.jpg": (0, 200, 0), "Café.png": (0, 0, 200), "CAFÉ.png": (0, 200, 200)}
    for name, colour in colours.items():
        kind = "PNG" if name.endswith(".png") else "JPEG"
        (folder / name).write_bytes(corpus._save(corpus.solid(colour, (48, 32)), kind))

    _, err = run("import_images", str(folder), "--preset", "supplier", "--export", str(export))

    exported = sorted(p.name for p in export.iterdir())
    assert exported == ["A.jpg", "CAFÉ.jpg", "Café-png.jpg", "a-jpg.jpg"]
    assert len({name.casefold() for name in exported}) == 4
    assert (
        "exported a.jpg as a-jpg.jpg: A.jpg came from another file, "
        "and a folder that ignores case (macOS, Windows) takes a.jpg for it"
    ) in err
    assert "exported Café.png as Café-png.jpg: CAFÉ.jpg came from another file" in err


def test_exported_names_clash_as_a_macs_folder_compares_them_and_no_more(tmp_path: Path, run: Any) -> None:
    """A Mac's folder (APFS, case-insensitive) folds case fully: STRASSE is
    straße there, and a final sigma is a sigma; the Turkish dotted capital
    and dotless small i are letters of their own, on Windows too."""
    folder, export = tmp_path / "in", tmp_path / "out"
    folder.mkdir()
    names = [
        "STRASSE.jpg",
        "straße.png",
        "ΟΔΟΣ.jpg",
        "οδος.png",
        "İzmir.jpg",
        "izmir.png",
        "ılık.jpg",
        "Ilık.png",
    ]
    for n, name in enumerate(names):
        kind = "PNG" if name.endswith(".png") else "JPEG"
        (folder / name).write_bytes(corpus._save(corpus.solid((30 * n, 0, 200), (48, 32)), kind))

    _, err = run("import_images", str(folder), "--preset", "supplier", "--export", str(export))

    assert sorted(p.name for p in export.iterdir()) == sorted(
        [
            "STRASSE.jpg",
            "straße-png.jpg",
            "ΟΔΟΣ.jpg",
            "οδος-png.jpg",
            "İzmir.jpg",
            "izmir.jpg",
            "ılık.jpg",
            "Ilık.jpg",
        ]
    )
    assert "exported straße.png as straße-png.jpg: STRASSE.jpg came from another file" in err
    assert "exported οδος.png as οδος-png.jpg: ΟΔΟΣ.jpg came from another file" in err


def test_exported_names_whose_folds_differ_only_in_unicode_form_clash(tmp_path: Path, run: Any) -> None:
    """Folded, "ΐ" (one character) is iota, diaeresis, acute, and "Ϊ́" (the
    capital with a diaeresis, then an acute: no one character is both) is
    the small iota with a diaeresis, then an acute: one letter in two
    Unicode forms, which a Mac's folder compares as one."""
    folder, export = tmp_path / "in", tmp_path / "out"
    folder.mkdir()
    for n, (name, kind) in enumerate([("\u0390.jpg", "JPEG"), ("\u03aa\u0301.png", "PNG")]):
        (folder / name).write_bytes(corpus._save(corpus.solid((90 * n, 0, 200), (48, 32)), kind))

    _, err = run("import_images", str(folder), "--preset", "supplier", "--export", str(export))

    assert sorted(p.name for p in export.iterdir()) == ["\u0390.jpg", "\u03aa\u0301-png.jpg"]
    assert "exported \u03aa\u0301.png as \u03aa\u0301-png.jpg: \u0390.jpg came from another file" in err
    assert "izmir" not in err
    assert "lık" not in err


def test_import_images_twice_changes_nothing(icon_delivery: Path, run: Any) -> None:
    run("import_images", str(icon_delivery), "--preset", "icon")
    out, _ = run("import_images", str(icon_delivery), "--preset", "icon")
    assert out.startswith("0 images imported, 2 already there")
    assert Image.objects.count() == 2


@pytest.mark.parametrize("export", [False, True])
def test_an_image_deleted_while_the_import_runs_is_named_not_a_traceback(
    tmp_path: Path, run: Any, monkeypatch: pytest.MonkeyPatch, export: bool
) -> None:
    """Staff deleting in the admin a photo the import has just stored: the
    run read it back for its outcome and stopped on a traceback, the other
    images imported and untold."""
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(corpus.photo_jpeg(90, 60))
    (folder / "b.jpg").write_bytes(corpus.photo_jpeg(60, 90))
    imported = services.image_import

    def deleted_once_stored(**kwargs: Any) -> tuple[Image, bool]:
        image, created = imported(**kwargs)
        if kwargs["original_name"] == "a.jpg":
            Image.objects.filter(pk=image.pk).delete()
        return image, created

    monkeypatch.setattr(services, "image_import", deleted_once_stored)
    args = ["--export", str(tmp_path / "out")] if export else []

    out, err = run("import_images", str(folder), *args)

    assert out.startswith("2 images imported, 0 already there, 0 files skipped, 1 deleted meanwhile")
    assert "deleted a.jpg: the image was deleted while the import ran; the next run imports it again" in err
    assert list(Image.objects.values_list("original_name", "status")) == [("b.jpg", "ready")]
    if export:
        exported = [p.name for p in (tmp_path / "out").iterdir()]
        assert exported
        assert all(name.startswith("b-") for name in exported)


def test_an_image_import_is_logged_in_one_line(
    run: Any, icon_delivery: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level("INFO", logger="uploads"):
        out, _ = run("import_images", str(icon_delivery), "--preset", "icon")
    lines = [r.getMessage() for r in caplog.records if "image import" in r.getMessage()]
    assert lines == [f"image import {icon_delivery}: {out.strip()}"]
    assert out.startswith("2 images imported, 0 already there, 2 files skipped")


def test_reprocess_images_can_pick_failed_ones(run: Any, tmp_path: Path) -> None:
    (tmp_path / "a.jpg").write_bytes(corpus.jpeg())
    (tmp_path / "b.png").write_bytes(corpus.png())
    run("import_images", str(tmp_path))
    Image.objects.filter(original_name="a.jpg").update(status=Image.Status.FAILED, error="boom")
    out, _ = run("reprocess_images", "--status", "failed")
    assert out.strip() == "1 images queued for processing."
    assert set(Image.objects.values_list("status", flat=True)) == {"ready"}


def test_reprocess_images_refuses_ids_no_image_has_and_queues_nothing(run: Any, tmp_path: Path) -> None:
    (tmp_path / "a.jpg").write_bytes(corpus.jpeg())
    run("import_images", str(tmp_path))
    a = Image.objects.get()
    with pytest.raises(CommandError) as refused:
        run("reprocess_images", str(a.pk), str(a.pk + 1), str(a.pk + 7), "--preset", "icon")
    assert refused.value.returncode == 1
    assert str(refused.value) == f"No image has the id {a.pk + 1} or {a.pk + 7}. Nothing was queued."
    a.refresh_from_db()
    assert (a.preset, a.status) == ("web", "ready")


def test_reprocess_images_names_an_id_past_any_column_s_as_no_image_s(run: Any, tmp_path: Path) -> None:
    """The database's driver cannot send such a number: it was a traceback."""
    (tmp_path / "a.jpg").write_bytes(corpus.jpeg())
    run("import_images", str(tmp_path))
    a = Image.objects.get()
    with pytest.raises(CommandError) as refused:
        run("reprocess_images", str(a.pk), str(10**20), "-5")
    assert refused.value.returncode == 1
    assert str(refused.value) == f"No image has the id -5 or {10**20}. Nothing was queued."
    a.refresh_from_db()
    assert a.status == "ready"


def test_reprocess_images_can_switch_the_preset_of_the_images_it_picks(run: Any, tmp_path: Path) -> None:
    (tmp_path / "a.jpg").write_bytes(corpus.jpeg(corpus.quadrants(800, 600)))
    (tmp_path / "b.png").write_bytes(corpus.png(corpus.quadrants(800, 600)))
    run("import_images", str(tmp_path))
    a = Image.objects.get(original_name="a.jpg")
    out, _ = run("reprocess_images", str(a.pk), "--preset", "icon")
    assert out.strip() == "1 images queued for processing."
    a.refresh_from_db()
    assert (a.preset, a.status) == ("icon", "ready")
    assert list(a.renditions.values_list("name", "format", "width", "height")) == [("icon", "jpeg", 128, 128)]
    b = Image.objects.get(original_name="b.png")
    assert b.preset == "web"
    assert b.renditions.filter(name="w640").exists()


def test_a_photo_refused_or_unreadable_is_rejected_and_fails_the_run(
    icon_delivery: Path, commit: Any, settings: Any
) -> None:
    settings.IMAGE_MAX_PIXELS = 1_000_000
    (icon_delivery / "broken.jpg").write_bytes(corpus.garbage())
    (icon_delivery / "huge").write_bytes(corpus.png_bomb())
    (icon_delivery / "empty.png").write_bytes(corpus.zero_bytes())
    # Reading it would fail (EIO), even for root; a link out of the folder
    # is not followed at all.
    (icon_delivery / "unreadable.jpg").symlink_to("/proc/self/mem")
    (icon_delivery / "moved.jpg").symlink_to(icon_delivery / "nowhere.jpg")
    out, err = io.StringIO(), io.StringIO()
    with commit(), pytest.raises(CommandError, match="5 file") as raised:
        call_command("import_images", str(icon_delivery), "--preset", "icon", stdout=out, stderr=err)
    assert raised.value.returncode == 2
    # What could be read and checked landed; strays are still only skipped.
    assert out.getvalue().startswith("2 images imported, 0 already there, 2 files skipped, 5 rejected.")
    assert "skipped LICENSE:" in err.getvalue()
    assert "rejected broken.jpg: Unsupported file type" in err.getvalue()
    assert "rejected huge: Image has 10000000000 pixels" in err.getvalue()
    assert "rejected empty.png: The file is empty." in err.getvalue()
    assert "rejected unreadable.jpg: a link to a file outside the folder" in err.getvalue()
    assert "rejected moved.jpg: cannot be read: No such file or directory" in err.getvalue()
    assert Image.objects.count() == 2


def test_a_file_far_over_the_byte_limit_is_rejected_without_being_read(
    icon_delivery: Path, run: Any, settings: Any
) -> None:
    settings.IMAGE_MAX_BYTES = 1024 * 1024
    with (icon_delivery / "huge.jpg").open("wb") as fh:  # sparse: no disk, 200 MB to read
        fh.truncate(200 * 1024 * 1024)
    tracemalloc.start()
    try:
        with pytest.raises(CommandError, match="1 file") as raised:
            run("import_images", str(icon_delivery), "--preset", "icon")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert raised.value.returncode == 2
    assert peak < 50 * 1024 * 1024, f"{peak:,} bytes allocated"
    assert Image.objects.count() == 2


def test_a_rendition_cut_short_by_a_full_disk_is_not_left_in_the_export(
    tmp_path: Path, run: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder, export = tmp_path / "in", tmp_path / "out"
    folder.mkdir()
    (folder / "photo.jpg").write_bytes(corpus.photo_jpeg(300, 200))
    export_files = services.image_export_files
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)

    def files_on_a_full_disk(*args: Any, **kwargs: Any) -> Iterator[tuple[str, bytes]]:
        # Past 100 bytes a write fails (EFBIG, as ENOSPC would) after
        # writing what fits: a file cut short, as on a full disk.
        for target, data in export_files(*args, **kwargs):
            resource.setrlimit(resource.RLIMIT_FSIZE, (100, hard))
            try:
                yield target, data
            finally:
                resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))

    monkeypatch.setattr(services, "image_export_files", files_on_a_full_disk)

    with pytest.raises(CommandError) as raised:
        run("import_images", str(folder), "--export", str(export))

    assert "rendition(s) not exported" in str(raised.value)
    assert list(export.iterdir()) == []


def test_an_export_folder_that_is_the_folder_imported_is_refused_before_anything_is_imported(
    icon_delivery: Path, tmp_path: Path
) -> None:
    # Written there, the renditions would be imported as photos by the next
    # run, which would write theirs beside them, and so on at every run.
    (tmp_path / "link").symlink_to(icon_delivery)
    before = sorted(p.name for p in icon_delivery.iterdir())
    for export in (icon_delivery, tmp_path / "link", icon_delivery / "."):
        with pytest.raises(CommandError) as refused:
            call_command("import_images", str(icon_delivery), "--export", str(export), stdout=io.StringIO())
        assert refused.value.returncode == 1
        assert str(refused.value) == (
            f"Cannot write the renditions to {export}: it is the folder imported, whose next import "
            "would take them for photos. Nothing was imported."
        )
    assert Image.objects.count() == 0
    assert sorted(p.name for p in icon_delivery.iterdir()) == before


def test_an_image_whose_renditions_are_missing_from_the_store_is_named_and_the_others_are_exported(
    tmp_path: Path, run: Any, commit: Any
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.png").write_bytes(corpus.png(corpus.quadrants(80, 60)))
    (folder / "b.png").write_bytes(corpus.png(corpus.quadrants(90, 60)))
    run("import_images", str(folder), "--preset", "icon")
    # The store lost a's rendition (a bucket restored from an older backup).
    lost = Image.objects.get(original_name="a.png")
    for key in Rendition.objects.filter(image=lost).values_list("storage_key", flat=True):
        default_storage.delete(key)
    export, err = tmp_path / "out", io.StringIO()
    with pytest.raises(CommandError) as raised, commit():
        call_command(
            "import_images",
            str(folder),
            "--preset",
            "icon",
            "--export",
            str(export),
            stdout=io.StringIO(),
            stderr=err,
        )
    assert raised.value.returncode == 2
    assert str(raised.value) == "1 rendition(s) not exported."
    assert (
        f"not exported a.png: its renditions cannot be read from the file store (No such file or directory); "
        f"reprocess_images {lost.pk} makes them again"
    ) in err.getvalue()
    assert sorted(p.name for p in export.iterdir()) == ["b.jpg"]
    run("reprocess_images", str(lost.pk))
    run("import_images", str(folder), "--preset", "icon", "--export", str(tmp_path / "again"))
    assert sorted(p.name for p in (tmp_path / "again").iterdir()) == ["a.jpg", "b.jpg"]


def test_import_images_refuses_an_empty_export_folder_before_importing(
    icon_delivery: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What `--export "$OUT"` passes with OUT unset: the current folder got the renditions.
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    with pytest.raises(CommandError, match="argument --export: is empty; give the folder"):
        call_command("import_images", str(icon_delivery), "--export", "", stdout=io.StringIO())
    assert list(here.iterdir()) == []
    assert not Image.objects.exists()
