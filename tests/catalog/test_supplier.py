from __future__ import annotations

import datetime as dt
import io
import socket
import threading
import tracemalloc
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core import mail
from django.core.files.storage import storages
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone
from PIL import Image as PILImage
from pypdf import PdfReader

from catalog import services as catalog_services
from catalog.models import Product
from portal.celery import app
from tests.catalog.weights import TOO_HEAVY, WEIGHTS
from tests.factories import ImageFactory, ProductFactory
from tests.servers import SMTPServer, free_port, trickling_smtp
from tests.uploads import corpus
from uploads import selectors as upload_selectors
from uploads import services as upload_services
from uploads import storage
from uploads.models import Image, Rendition
from uploads.services import image_process

LAB = Path(__file__).resolve().parent.parent / "data" / "lab"

# Transactional: the import runs as in production, each upload committing and
# its processing starting after the commit, while the import waits for it.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def delivery(tmp_path: Path) -> Path:
    """A supplier folder like the real ones: RGBA LZW TIFFs, CRLF text, strays."""
    folder = tmp_path / "supplier-data"
    (folder / "descriptions").mkdir(parents=True)
    (folder / "images").mkdir()
    for path in (LAB / "descriptions").glob("*.txt"):
        (folder / "descriptions" / path.name).write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    (folder / "descriptions" / "010.txt").write_text("Lemon’s best\n200 lbs\nSour.\n", encoding="utf-8")
    (folder / "descriptions" / "011.txt").write_text("Broken\nheavy\nNo weight.\n")
    for stem, size in (("001", (1500, 1000)), ("005", (1200, 800)), ("007", (900, 600))):
        (folder / "images" / f"{stem}.tiff").write_bytes(corpus.supplier_tiff(size))
    (folder / "images" / "010.jpg").write_bytes(corpus.photo_jpeg(900, 600))
    (folder / "images" / "LICENSE").write_text("Apache License")
    (folder / "images" / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (folder / "images" / "README").write_text("images for the store")
    return folder


def run(*args: str, code: int = 2) -> tuple[str, str]:
    """Run the command; the delivery holds a broken description, so unless a
    test says otherwise it exits 2 (what landed stays, cron learns not all did)."""
    out, err = io.StringIO(), io.StringIO()
    returned = 0
    try:
        call_command(*args, stdout=out, stderr=err)
    except CommandError as exc:
        returned = exc.returncode
    assert returned == code, err.getvalue()
    return out.getvalue(), err.getvalue()


def test_a_clean_delivery_exits_zero_and_a_mail_outage_loses_only_the_mail(
    delivery: Path, settings: Any
) -> None:
    (delivery / "descriptions" / "011.txt").unlink()
    out, _ = run("import_supplier", str(delivery), "--no-email", code=0)
    assert out.startswith("4 products created, 0 updated, 0 unchanged, 0 rejected")

    # A real SMTP connection to a port nobody listens on.
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", free_port()
    out, err = run("import_supplier", str(delivery), "--email", "supplier@example.com", code=2)
    assert out.startswith("0 products created, 0 updated, 4 unchanged, 0 rejected")  # the summary still
    assert "report not mailed: " in err
    assert "Report mailed" not in out

    settings.REPORT_RECIPIENTS = []
    out, err = run("import_supplier", str(delivery), code=0)
    assert "report not mailed: no recipients" in err
    assert "Report mailed" not in out


def test_a_mail_folder_that_cannot_be_written_is_a_report_not_mailed_not_a_traceback(
    delivery: Path, settings: Any, tmp_path: Path
) -> None:
    (tmp_path / "mail").write_text("not a folder")
    settings.EMAIL_BACKEND = "core.mail.FileEmailBackend"
    settings.EMAIL_FILE_PATH = str(tmp_path / "mail")
    out, err = run("import_supplier", str(delivery), "--email", "supplier@example.com")
    assert out.startswith("4 products created")
    assert (
        "report not mailed: mail cannot be written: Path for saving email messages exists, "
        f"but is not a directory: {tmp_path / 'mail'}"
    ) in err
    assert "Report mailed" not in out


def test_a_supplier_import_is_logged_in_one_line(delivery: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("INFO", logger="catalog"):
        out, _ = run("import_supplier", str(delivery), "--no-email")
    lines = [r.getMessage() for r in caplog.records if "supplier import" in r.getMessage()]
    assert lines == [f"supplier import {delivery}: {out.strip()}"]
    assert "products created" in out


def test_a_supplier_delivery_becomes_linked_products_and_a_mailed_report(delivery: Path) -> None:
    out, err = run("import_supplier", str(delivery), "--email", "supplier@example.com")
    assert out.startswith(
        "4 products created, 0 updated, 0 unchanged, 1 rejected; 4 images imported, 0 already there, "
        "0 failed, 2 files skipped."
    )
    assert "skipped images/LICENSE" in err
    assert "rejected descriptions/011.txt: line 2: weight must be a whole number" in err
    apple = Product.objects.select_related("image").get(name="Apple")
    assert (apple.weight, apple.image_name) == (500, "001.tiff")
    assert apple.image is not None
    assert apple.image.status == Image.Status.READY
    rendition = apple.image.renditions.get()
    assert (rendition.format, rendition.width, rendition.height) == ("jpeg", 600, 400)
    assert Product.objects.get(name="Lemon’s best").image is not None

    [message] = mail.outbox
    assert message.subject == "Upload Completed - Online Fruit Store"
    assert message.body == (
        "All fruits are uploaded to our website successfully. A detailed list is attached to this email."
    )
    assert message.from_email == "automation@example.com"
    assert message.to == ["supplier@example.com"]
    _, pdf, mimetype = message.attachments[0]
    assert mimetype == "application/pdf"
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    today = timezone.localdate()
    assert f"Processed Update on {today:%B %d, %Y}" in text
    assert "name: Apple" in text
    assert "weight: 500 lbs" in text


def test_the_supplier_rendition_is_an_rgb_jpeg_of_the_tiff(delivery: Path, settings: Any) -> None:
    run("import_supplier", str(delivery), "--no-email")
    rendition = Product.objects.get(name="Mango").image.renditions.get()  # type: ignore[union-attr]
    with PILImage.open(Path(settings.MEDIA_ROOT) / rendition.storage_key) as img:
        assert (img.format, img.mode, img.size) == ("JPEG", "RGB", (600, 400))


def test_a_description_holding_a_control_character_is_rejected_naming_its_file_and_line(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "supplier-data"
    (folder / "descriptions").mkdir(parents=True)
    (folder / "images").mkdir()
    (folder / "descriptions" / "001.txt").write_text("Apple\n500 lbs\nRipe.\n\tCrisp\x0c and sweet.\n")
    (folder / "descriptions" / "002.txt").write_text("Pe\x07ar\n300 lbs\nRipe.\n")
    (folder / "descriptions" / "003.txt").write_text("Plum\n100 lbs\nRipe.\nSweet\tand crisp.\n")

    out, err = run("import_supplier", str(folder), "--no-email")

    assert out.startswith("1 products created, 0 updated, 0 unchanged, 2 rejected")
    assert (
        "rejected descriptions/001.txt: line 4 (the description) cannot contain the control character "
        "U+000C (tabs and the line breaks LF and CR are allowed)." in err
    )
    assert (
        "rejected descriptions/002.txt: line 1 (the product name) cannot contain the control character U+0007."
        in err
    )
    assert list(Product.objects.values_list("name", "description")) == [("Plum", "Ripe.\nSweet\tand crisp.")]


def test_importing_the_same_delivery_again_changes_nothing(delivery: Path) -> None:
    run("import_supplier", str(delivery), "--no-email")
    before = list(Product.objects.order_by("pk").values())
    images_before = list(Image.objects.order_by("pk").values_list("pk", "sha256", "status"))
    out, _ = run("import_supplier", str(delivery), "--no-email")
    assert out.startswith(
        "0 products created, 0 updated, 4 unchanged, 1 rejected; 0 images imported, 4 already there"
    )
    assert list(Product.objects.order_by("pk").values()) == before
    assert list(Image.objects.order_by("pk").values_list("pk", "sha256", "status")) == images_before


def test_a_changed_description_updates_its_product(delivery: Path) -> None:
    run("import_supplier", str(delivery), "--no-email")
    (delivery / "descriptions" / "001.txt").write_text("Apple\n520 lbs\nEven crisper.\n")
    out, _ = run("import_supplier", str(delivery), "--no-email")
    assert out.startswith("0 products created, 1 updated, 3 unchanged")
    assert Product.objects.get(name="Apple").weight == 520


def test_the_report_can_be_written_to_a_file(delivery: Path, tmp_path: Path) -> None:
    report = tmp_path / "processed.pdf"
    run("import_supplier", str(delivery), "--no-email", "--report", str(report))
    assert report.read_bytes().startswith(b"%PDF")
    assert mail.outbox == []


def test_a_report_path_that_cannot_be_written_is_refused_before_anything_is_imported(
    delivery: Path, tmp_path: Path
) -> None:
    report = tmp_path / "missing" / "processed.pdf"
    with pytest.raises(CommandError) as refused:
        call_command(
            "import_supplier", str(delivery), "--email", "supplier@example.com", "--report", str(report)
        )
    assert refused.value.returncode == 1
    assert str(refused.value) == f"Cannot write {report}: no folder {report.parent}. Nothing was imported."
    assert (Product.objects.count(), Image.objects.count(), mail.outbox) == (0, 0, [])

    with pytest.raises(CommandError, match="it is a folder"):
        call_command("import_supplier", str(delivery), "--no-email", "--report", str(tmp_path))
    assert list(tmp_path.iterdir()) == [delivery]  # the check leaves nothing behind


# What a mail server is never asked about: several addresses in one
# (Django's SMTP backend fails on them only as it sends, after the import),
# a blank one (dropped without a word: "Report mailed to ." and no mail), a
# line break, text that is no address.
BAD_ADDRESSES = ["a@example.com,b@example.com", "", "a@example.com\nBcc: b@example.com", "buyers"]


@pytest.mark.parametrize("address", BAD_ADDRESSES)
def test_a_recipient_that_is_no_address_is_refused_before_anything_is_imported(
    delivery: Path, settings: Any, address: str
) -> None:
    settings.EMAIL_BACKEND = "core.mail.EmailBackend"
    with SMTPServer() as smtp:
        settings.EMAIL_HOST, settings.EMAIL_PORT = smtp.host, smtp.port
        with pytest.raises(CommandError) as refused:
            call_command("import_supplier", str(delivery), "--email", "ops@example.com", "--email", address)
    assert refused.value.returncode == 1
    assert str(refused.value) == (
        f"--email: not an email address: {address!r}"
        + (" holds a line break" if "\n" in address else "")
        + " (one address each, such as name@example.com or Name <name@example.com>). Nothing was imported."
    )
    assert (Product.objects.count(), Image.objects.count(), smtp.messages) == (0, 0, [])


def test_recipients_of_the_setting_are_checked_as_well(delivery: Path, settings: Any) -> None:
    settings.REPORT_RECIPIENTS = ["buyers@example.com;qa@example.com"]
    with pytest.raises(CommandError, match=r"^PORTAL_REPORT_RECIPIENTS: not an email address: ") as refused:
        call_command("import_supplier", str(delivery))
    assert refused.value.returncode == 1
    assert (Product.objects.count(), mail.outbox) == (0, [])
    # Not mailed, not asked.
    run("import_supplier", str(delivery), "--no-email")


def test_a_report_that_cannot_be_written_after_the_import_is_still_mailed(
    delivery: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "reports"
    folder.mkdir()
    report = folder / "processed.pdf"
    build = catalog_services.report_build

    def folder_gone(**kwargs: Any) -> bytes:  # removed while the import ran
        folder.rmdir()
        return build(**kwargs)

    monkeypatch.setattr(catalog_services, "report_build", folder_gone)
    out, err = run(
        "import_supplier", str(delivery), "--email", "supplier@example.com", "--report", str(report)
    )
    assert f"report not written to {report}: no folder {folder}" in err
    assert "Traceback" not in err
    assert out.rstrip().endswith("Report mailed to supplier@example.com.")
    [message] = mail.outbox
    assert message.attachments[0][1].startswith(b"%PDF")
    assert Product.objects.count() == 4


def test_a_thumbnail_lost_from_the_store_leaves_a_gap_not_a_crash(delivery: Path, tmp_path: Path) -> None:
    run("import_supplier", str(delivery), "--no-email")
    apple = Product.objects.select_related("image").get(name="Apple")
    assert apple.image is not None
    lost = apple.image.renditions.get().storage_key
    storages["default"].delete(lost)
    report = tmp_path / "again.pdf"

    out, _ = run("import_supplier", str(delivery), "--no-email", "--report", str(report))

    assert out.startswith("0 products created")
    pages = "".join(page.extract_text() for page in PdfReader(report).pages)
    assert "Apple" in pages
    assert "(no image)" in pages


def test_a_report_shows_the_rendition_nearest_600_pixels_wide_of_those_a_pdf_takes() -> None:
    """Of a photo's renditions the report embeds the one nearest a page's
    600 px in a format a PDF takes (JPEG, PNG, WebP), never an AVIF."""
    image = ImageFactory(size=(1600, 1200))
    image.renditions.all().delete()
    for name, fmt, width in (("a", "avif", 600), ("b", "webp", 300), ("c", "jpeg", 640), ("d", "png", 1200)):
        key = f"renditions/report/{name}.{fmt}"
        storage.put(key, f"{fmt} {width}".encode())
        Rendition.objects.create(
            image=image, name=f"w{width}", format=fmt, width=width, height=width, bytes=8, storage_key=key
        )
    product = ProductFactory.create(image=image)

    [item] = catalog_services.report_items([product])

    assert item.thumbnail == b"jpeg 640"


@pytest.mark.parametrize("status", [Image.Status.PENDING, Image.Status.PROCESSING, Image.Status.FAILED])
def test_a_report_shows_no_rendition_of_a_photo_not_ready(status: str) -> None:
    """A photo processed again keeps the renditions of its run before until
    the new ones are made, cut from what it was (its original replaced,
    perhaps): the report shows none of them, as /img/ and the API do not."""
    image = ImageFactory(size=(1600, 1200))
    assert image.renditions.exists()
    Image.objects.filter(pk=image.pk).update(status=status)
    product = ProductFactory.create(image=image)

    [item] = catalog_services.report_items([Product.objects.select_related("image").get(pk=product.pk)])

    assert (item.name, item.thumbnail) == (product.name, None)


def test_staff_download_the_report_for_a_day_from_the_admin(delivery: Path, admin_client: Client) -> None:
    run("import_supplier", str(delivery), "--no-email")
    today = timezone.localdate()
    response = admin_client.get("/admin/catalog/product/report/", {"date": today.isoformat()})
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert f"processed-{today.isoformat()}.pdf" in response["Content-Disposition"]
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(response.content)).pages)
    assert "name: Kiwifruit" in text
    old = today - dt.timedelta(days=400)
    response = admin_client.get("/admin/catalog/product/report/", {"date": old.isoformat()})
    assert f"Processed Update on {old:%B %d, %Y}" in "".join(
        page.extract_text() for page in PdfReader(io.BytesIO(response.content)).pages
    )
    assert "name: Kiwifruit" not in "".join(
        page.extract_text() for page in PdfReader(io.BytesIO(response.content)).pages
    )


def pdf_text_and_links(content: bytes) -> tuple[str, list[str]]:
    pages = PdfReader(io.BytesIO(content)).pages
    links = [
        annotation.get_object()["/A"]["/URI"] for page in pages for annotation in page.get("/Annots", [])
    ]
    return "".join(page.extract_text() for page in pages), links


def test_a_day_report_holds_at_most_its_cap_and_says_how_many_more_changed_and_where(
    admin_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(catalog_services, "REPORT_MAX_PRODUCTS", 3)
    for name in ("Elderberry", "Apple", "Date", "Cherry", "Banana"):
        ProductFactory(name=name)
    other_day = ProductFactory(name="Fig")
    Product.objects.filter(pk=other_day.pk).update(updated_at=timezone.now() - dt.timedelta(days=2))
    today = timezone.localdate().isoformat()

    response = admin_client.get("/admin/catalog/product/report/", {"date": today})

    assert response.status_code == 200
    text, links = pdf_text_and_links(response.content)
    assert [
        name for name in ("Apple", "Banana", "Cherry", "Date", "Elderberry") if f"name: {name}" in text
    ] == [
        "Apple",
        "Banana",
        "Cherry",
    ]
    assert "2 more products were changed that day: this report lists the first 3 by name" in text
    [link] = set(links)  # one per line the address runs over
    assert link.startswith("http://testserver/admin/catalog/product/?")
    listed = admin_client.get(link.removeprefix("http://testserver"))
    assert listed.status_code == 200
    assert sorted(p.name for p in listed.context["cl"].queryset) == [
        "Apple", "Banana", "Cherry", "Date", "Elderberry",
    ]  # fmt: skip


def test_a_day_report_within_its_cap_says_nothing_more(
    admin_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(catalog_services, "REPORT_MAX_PRODUCTS", 3)
    for name in ("Apple", "Banana", "Cherry"):
        ProductFactory(name=name)

    response = admin_client.get("/admin/catalog/product/report/", {"date": timezone.localdate().isoformat()})

    text, links = pdf_text_and_links(response.content)
    assert "name: Cherry" in text
    assert "more product" not in text
    assert links == []


def test_a_supplier_report_holds_at_most_its_cap_and_says_how_many_more_were_processed(
    delivery: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    monkeypatch.setattr(catalog_services, "REPORT_MAX_PRODUCTS", 2)
    settings.BASE_URL = "https://portal.example.com"
    report = tmp_path / "processed.pdf"

    run("import_supplier", str(delivery), "--no-email", "--report", str(report))

    text, links = pdf_text_and_links(report.read_bytes())
    names = sorted(Product.objects.values_list("name", flat=True))
    assert len(names) == 4
    assert [name for name in names if f"name: {name}" in text] == names[:2]
    assert "2 more products were processed by this import: this report lists the first 2 by name" in text
    [link] = set(links)  # one per line the address runs over
    assert link == (
        "https://portal.example.com/admin/catalog/product/"
        f"?updated_at__date={timezone.localdate().isoformat()}"
    )


def test_a_supplier_report_without_the_portals_address_says_how_many_more_without_a_link(
    delivery: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    monkeypatch.setattr(catalog_services, "REPORT_MAX_PRODUCTS", 3)
    settings.BASE_URL = ""
    report = tmp_path / "processed.pdf"

    run("import_supplier", str(delivery), "--no-email", "--report", str(report))

    text, links = pdf_text_and_links(report.read_bytes())
    assert "1 more product was processed by this import: this report lists the first 3 by name" in text
    assert links == []


def test_the_report_download_refuses_a_bad_date(admin_client: Client) -> None:
    response = admin_client.get("/admin/catalog/product/report/", {"date": "yesterday"})
    assert response.status_code == 400
    assert "YYYY-MM-DD" in response.content.decode()


@pytest.mark.parametrize("date", ["20240102", "2024-W01-2", "2024W012"])
def test_the_report_download_reads_its_date_as_reviews_are_read(admin_client: Client, date: str) -> None:
    refused = admin_client.get("/admin/catalog/product/report/", {"date": date})
    assert refused.status_code == 400
    assert refused.content.decode() == f"date must be YYYY-MM-DD, got {date!r}"
    taken = admin_client.get("/admin/catalog/product/report/", {"date": "2024-1-2"})
    assert taken.status_code == 200
    assert 'filename="processed-2024-01-02.pdf"' in taken["Content-Disposition"]


def test_the_report_download_quotes_a_long_refused_date_cut_with_its_length(admin_client: Client) -> None:
    """As every other refused value is quoted: the whole of it made a page as long."""
    date = "2024-01-02" + "x" * 9_990
    response = admin_client.get("/admin/catalog/product/report/", {"date": date})
    assert response.status_code == 400
    assert response.content.decode() == f"date must be YYYY-MM-DD, got {date[:60]!r}… (10,000 characters)"


def test_the_report_download_needs_staff(client: Client) -> None:
    response = client.get("/admin/catalog/product/report/")
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_a_folder_without_deliveries_is_refused(tmp_path: Path) -> None:

    with pytest.raises(CommandError, match="neither descriptions/ nor images/"):
        call_command("import_supplier", str(tmp_path))


@pytest.fixture
def worker_not_running() -> Iterator[None]:
    """Processing goes to the (in-memory) broker, as with a Celery worker that
    has not picked it up yet: nothing in this process runs it."""

    eager = app.conf.task_always_eager
    app.conf.task_always_eager = False
    yield
    app.conf.task_always_eager = eager


def test_the_import_leaves_processing_to_the_worker_and_reports_what_is_not_done(
    delivery: Path, worker_not_running: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    waits: list[float] = []
    wait_settled = upload_selectors.images_wait_settled

    def waited(ids: list[int], timeout: float) -> dict[int, Image]:
        waits.append(timeout)
        # No worker comes: a wait past a minute fails the test below, not ten minutes on.
        return wait_settled(ids, min(timeout, 60))

    monkeypatch.setattr(upload_selectors, "images_wait_settled", waited)
    out, err = run("import_supplier", str(delivery), "--no-email", "--wait", "0.5")
    assert waits == [0.5]  # --wait, not the default of SUPPLIER_WAIT_SECONDS
    assert out.startswith(
        "4 products created, 0 updated, 0 unchanged, 1 rejected; 4 images imported, 0 already there, "
        "0 failed, 4 still processing, 2 files skipped."
    )
    assert "still processing images/001.tiff after 0.5 s" in err
    assert set(Image.objects.values_list("status", flat=True)) == {Image.Status.PENDING}
    # Linked already: the catalog shows the photo once the worker is done.
    assert Product.objects.get(name="Apple").image == Image.objects.get(original_name="001.tiff")

    # The worker catches up; the same delivery again waits for nothing more.

    for pk in Image.objects.values_list("pk", flat=True):
        image_process(image_id=pk)
    out, err = run("import_supplier", str(delivery), "--no-email", "--wait", "0.5")
    assert out.startswith(
        "0 products created, 0 updated, 4 unchanged, 1 rejected; 0 images imported, 4 already there, "
        "0 failed, 2 files skipped."
    )
    assert "still processing" not in err


def test_a_photo_that_fails_processing_is_reported_with_its_reason(delivery: Path) -> None:

    (delivery / "images" / "005.tiff").write_bytes(corpus.truncated_jpeg())
    out, err = run("import_supplier", str(delivery), "--no-email")
    assert "4 images imported, 0 already there, 1 failed, 2 files skipped." in out
    assert "rejected images/005.tiff: " in err
    # Not shown, as with a worker (where it fails after being linked); staff
    # see it failed among the images, and once reprocessed it shows.
    kiwi = Product.objects.get(name="Kiwifruit")
    assert kiwi.image is None
    failed = Image.objects.get(original_name="005.tiff")
    assert failed.status == Image.Status.FAILED


def test_a_failed_photo_beside_another_of_its_stem_is_reported_and_fails_the_run(delivery: Path) -> None:
    (delivery / "descriptions" / "011.txt").unlink()  # else the run fails for it anyway
    (delivery / "images" / "005.jpg").write_bytes(corpus.truncated_jpeg())

    out, err = run("import_supplier", str(delivery), "--no-email")

    assert "5 images imported, 0 already there, 1 failed" in out
    assert "rejected images/005.jpg: " in err
    assert Image.objects.get(original_name="005.jpg").status == Image.Status.FAILED
    # The product shows the photo of its stem that was processed.
    assert Product.objects.get(name="Kiwifruit").image == Image.objects.get(original_name="005.tiff")


def test_one_photo_delivered_under_two_names_shows_on_both_products(delivery: Path) -> None:
    (delivery / "images" / "005.tiff").write_bytes((delivery / "images" / "001.tiff").read_bytes())
    out, _ = run("import_supplier", str(delivery), "--no-email")
    assert "3 images imported, 1 already there, 0 failed" in out
    apple = Product.objects.get(name="Apple")
    kiwi = Product.objects.get(name="Kiwifruit")
    assert (apple.image_name, kiwi.image_name) == ("001.tiff", "005.tiff")
    assert apple.image is not None
    assert kiwi.image == apple.image


def test_a_second_description_of_one_stem_is_rejected_not_taken_over_the_first(tmp_path: Path) -> None:
    """``001.txt`` and ``001.TXT`` (or ``café.txt`` in both Unicode forms)
    are two files on Linux but describe one product: the second replaced
    the first unseen, and each run flipped the product between the two."""
    (tmp_path / "descriptions").mkdir()
    (tmp_path / "images").mkdir()
    (tmp_path / "descriptions" / "001.TXT").write_text("Pear\n200 lbs\nGreen.\n")
    (tmp_path / "descriptions" / "001.txt").write_text("Apple\n100 lbs\nRed.\n")
    (tmp_path / "descriptions" / "002.txt").write_text("Plum\n50 lbs\nPurple.\n")
    (tmp_path / "images" / "001.jpg").write_bytes(corpus.photo_jpeg(90, 60))

    out, err = run("import_supplier", str(tmp_path), "--no-email")

    assert out.startswith("2 products created, 0 updated, 0 unchanged, 1 rejected;")
    assert (
        "rejected descriptions/001.txt: its product (stem '001') is described by "
        "descriptions/001.TXT already: a delivery describes each product once" in err
    )
    assert dict(Product.objects.values_list("name", "weight")) == {"Pear": 200, "Plum": 50}
    assert Product.objects.get(name="Pear").image is not None

    out, _ = run("import_supplier", str(tmp_path), "--no-email")

    assert out.startswith("0 products created, 0 updated, 2 unchanged, 1 rejected;")


def test_a_photo_links_to_its_description_whichever_unicode_form_their_names_are_in(tmp_path: Path) -> None:
    # A Mac writes "é" in a file name as "e" and a combining accent (NFD);
    # most other systems, and a typed name, as one character (NFC).
    first, second = tmp_path / "first", tmp_path / "second"
    for folder in (first / "images", first / "descriptions", second / "descriptions"):
        folder.mkdir(parents=True)
    for stem in ("café", "brûlée"):
        (first / "images" / f"{unicodedata.normalize('NFD', stem)}.jpg").write_bytes(
            corpus.photo_jpeg(90, 60)
        )
    (first / "descriptions" / "café.txt").write_text("Coffee\n1 lbs\nBeans.\n")
    (second / "descriptions" / "brûlée.txt").write_text("Crème brûlée\n1 lbs\nSweet.\n")

    run("import_supplier", str(first), "--no-email", code=0)
    run("import_supplier", str(second), "--no-email", code=0)

    coffee = Product.objects.get(name="Coffee")
    assert coffee.image is not None
    assert unicodedata.normalize("NFC", coffee.image.original_name) == "café.jpg"
    cream = Product.objects.get(name="Crème brûlée")
    assert cream.image is not None
    assert unicodedata.normalize("NFC", cream.image.original_name) == "brûlée.jpg"


def test_of_two_photos_of_one_stem_the_product_shows_the_later_upload(tmp_path: Path) -> None:
    """As linking has it: the newest photo of a stem is the one shown, so
    the product shows what a later upload, or a deletion, leaves it."""
    (tmp_path / "descriptions").mkdir()
    (tmp_path / "images").mkdir()
    (tmp_path / "descriptions" / "030.txt").write_text("Quince\n1 lbs\nYellow.\n")
    (tmp_path / "images" / "030.jpg").write_bytes(corpus.photo_jpeg(90, 60))
    (tmp_path / "images" / "030.png").write_bytes(corpus.png(corpus.solid(color=(20, 160, 40))))

    catalog_services.supplier_import(tmp_path, wait_seconds=0)

    later = Image.objects.get(original_name="030.png")
    assert later.pk > Image.objects.get(original_name="030.jpg").pk  # uploaded in the folder's order
    quince = Product.objects.get(name="Quince")
    assert (quince.image, quince.image_name) == (later, "030.png")


def test_a_photo_deleted_while_the_import_waits_for_it_is_neither_failed_nor_processing(
    delivery: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Staff may delete a photo from the admin in the minutes the import
    waits: it is no longer the delivery's to report on."""
    (delivery / "descriptions" / "011.txt").unlink()
    wait = upload_selectors.images_wait_settled

    def delete_one_then_wait(ids: list[int], timeout: float) -> dict[int, Image]:
        upload_services.image_delete(image=Image.objects.get(original_name="010.jpg"))
        return wait(ids, timeout)

    monkeypatch.setattr(upload_selectors, "images_wait_settled", delete_one_then_wait)

    summary = catalog_services.supplier_import(delivery, wait_seconds=0)

    assert (summary.images_created, summary.images_failed, summary.images_unsettled) == (4, [], [])
    assert not Image.objects.filter(original_name="010.jpg").exists()


def test_a_photo_named_with_spaces_around_it_links_to_its_description(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    for folder in (first / "images", first / "descriptions", second / "descriptions"):
        folder.mkdir(parents=True)
    (first / "images" / " 006.jpg").write_bytes(corpus.photo_jpeg(90, 60))
    (first / "images" / "\xa0007.jpg").write_bytes(corpus.photo_jpeg(60, 90))
    (first / "descriptions" / "006.txt").write_text("Pear\n1 lbs\nGreen.\n")
    # Delivered apart: linked through the stored stems, not within one run.
    (second / "descriptions" / "007.txt").write_text("Plum\n1 lbs\nPurple.\n")

    run("import_supplier", str(first), "--no-email", code=0)
    run("import_supplier", str(second), "--no-email", code=0)

    pear = Product.objects.get(name="Pear")
    assert pear.image is not None
    assert pear.image.original_name == " 006.jpg"
    plum = Product.objects.get(name="Plum")
    assert plum.image is not None
    assert plum.image.original_name == "\xa0007.jpg"


def test_a_photo_refused_or_unreadable_is_rejected_and_fails_the_run(delivery: Path, settings: Any) -> None:
    settings.IMAGE_MAX_PIXELS = 5_000_000
    (delivery / "descriptions" / "011.txt").unlink()
    (delivery / "images" / "010.jpg").write_bytes(corpus.garbage())  # the photo of a description
    (delivery / "descriptions" / "012.txt").write_text("Pear\n100 lbs\nSweet.\n")
    (delivery / "images" / "012").write_bytes(corpus.garbage())  # no extension, but described
    (delivery / "images" / "huge.png").write_bytes(corpus.png_bomb())
    (delivery / "images" / "unreadable.jpg").symlink_to("/proc/self/mem")  # EIO, even for root
    (delivery / "descriptions" / "013.txt").symlink_to("/proc/self/mem")
    out, err = run("import_supplier", str(delivery), "--email", "supplier@example.com")
    assert out.startswith(
        "5 products created, 0 updated, 0 unchanged, 1 rejected; 3 images imported, 0 already there, "
        "4 rejected, 0 failed, 2 files skipped."
    )
    assert "rejected images/010.jpg: Unsupported file type" in err
    assert "rejected images/012: Unsupported file type" in err
    assert "rejected images/huge.png: Image has 10000000000 pixels" in err
    # Links out of the folder are not followed (reading these would fail with EIO).
    assert "rejected images/unreadable.jpg: a link to a file outside the folder" in err
    assert "rejected descriptions/013.txt: a link to a file outside the folder" in err
    assert "skipped images/LICENSE" in err
    assert "skipped images/README" in err
    assert Product.objects.get(name="Lemon’s best").image is None


def test_a_product_whose_photo_is_refused_is_named_by_the_photo_delivered(tmp_path: Path) -> None:
    (tmp_path / "descriptions").mkdir()
    (tmp_path / "images").mkdir()
    for stem, name in (("020", "Pear"), ("021", "Plum"), ("022", "Quince")):
        (tmp_path / "descriptions" / f"{stem}.txt").write_text(f"{name}\n1 lbs\nRipe.\n")
    (tmp_path / "images" / "020.tiff").write_bytes(corpus.garbage())
    (tmp_path / "images" / "021.png").write_bytes(corpus.garbage())

    summary = catalog_services.supplier_import(tmp_path, wait_seconds=0)

    assert [label for label, _ in summary.images_rejected] == ["images/020.tiff", "images/021.png"]
    products = dict(Product.objects.values_list("name", "image_name"))
    # Quince had no photo: the name the course's scripts post for it.
    assert products == {"Pear": "020.tiff", "Plum": "021.png", "Quince": "022.jpeg"}
    assert not Product.objects.filter(image__isnull=False).exists()


def test_a_product_whose_photo_the_listing_refuses_is_named_by_the_photo_delivered(tmp_path: Path) -> None:
    """A photo left out as it is found (a link to nothing, or to a file
    outside the folder) is delivered as much as one refused once read."""
    (tmp_path / "descriptions").mkdir()
    (tmp_path / "images").mkdir()
    for stem, name in (("023", "Rhubarb"), ("024", "Sloe")):
        (tmp_path / "descriptions" / f"{stem}.txt").write_text(f"{name}\n1 lbs\nRipe.\n")
    (tmp_path / "images" / "023.png").symlink_to(tmp_path / "gone.png")
    outside = tmp_path / "elsewhere.webp"
    outside.write_bytes(corpus.garbage())
    (tmp_path / "images" / "024.webp").symlink_to(outside)

    summary = catalog_services.supplier_import(tmp_path, wait_seconds=0)

    assert [label for label, _ in summary.images_rejected] == ["images/023.png", "images/024.webp"]
    products = dict(Product.objects.values_list("name", "image_name"))
    assert products == {"Rhubarb": "023.png", "Sloe": "024.webp"}


def test_images_still_processing_after_the_wait_fail_the_run(
    delivery: Path, worker_not_running: None
) -> None:
    (delivery / "descriptions" / "011.txt").unlink()
    with pytest.raises(CommandError, match="4 image\\(s\\) still processing") as raised:
        call_command("import_supplier", str(delivery), "--no-email", "--wait", "0.2", stdout=io.StringIO())
    assert raised.value.returncode == 2


def test_a_report_refused_for_one_recipient_is_not_counted_as_mailed_to_them(
    delivery: Path, settings: Any
) -> None:
    (delivery / "descriptions" / "011.txt").unlink()
    settings.EMAIL_BACKEND = "core.mail.EmailBackend"
    with SMTPServer(refuse=["bad@example.com"]) as smtp:
        settings.EMAIL_HOST, settings.EMAIL_PORT = smtp.host, smtp.port
        out, err = run(
            "import_supplier",
            str(delivery),
            "--email",
            "bad@example.com",
            "--email",
            "ops@example.com",
            code=2,
        )
        [message] = smtp.wait_for(1)
    assert message.envelope_to == ["ops@example.com"]
    assert out.rstrip().endswith("Report mailed to ops@example.com.")
    assert "report not mailed to bad@example.com: 550 5.1.1 No such user here" in err


def test_recipients_the_server_refused_or_took_are_named_as_they_were_given(
    delivery: Path, settings: Any
) -> None:
    # Not as they went on the wire: a display name in MIME words, a domain in punycode.
    (delivery / "descriptions" / "011.txt").unlink()
    settings.EMAIL_BACKEND = "core.mail.EmailBackend"
    with SMTPServer(refuse=["bad@xn--bcher-kva.de"]) as smtp:
        settings.EMAIL_HOST, settings.EMAIL_PORT = smtp.host, smtp.port
        out, err = run(
            "import_supplier",
            str(delivery),
            "--email",
            "Jürgen Weiß <bad@bücher.de>",
            "--email",
            "Grüße <ops@example.com>",
            code=2,
        )
        [message] = smtp.wait_for(1)
    assert message.envelope_to == ["ops@example.com"]
    assert out.rstrip().endswith("Report mailed to Grüße <ops@example.com>.")
    assert "report not mailed to Jürgen Weiß <bad@bücher.de>: 550 5.1.1 No such user here" in err


def test_a_report_refused_for_every_recipient_names_each_with_the_servers_reply(
    delivery: Path, settings: Any
) -> None:
    (delivery / "descriptions" / "011.txt").unlink()
    settings.EMAIL_BACKEND = "core.mail.EmailBackend"
    with SMTPServer(refuse=["bad@example.com", "gone@example.com"]) as smtp:
        settings.EMAIL_HOST, settings.EMAIL_PORT = smtp.host, smtp.port
        out, err = run(
            "import_supplier", str(delivery), "--email", "bad@example.com", "--email", "gone@example.com"
        )
        assert smtp.messages == []
    assert "Report mailed" not in out
    assert (
        "report not mailed to bad@example.com: 550 5.1.1 No such user here; "
        "not mailed to gone@example.com: 550 5.1.1 No such user here"
    ) in err
    assert "b'" not in err


def test_a_mail_server_refusing_the_login_or_the_sender_is_named_with_its_reply(
    delivery: Path, settings: Any
) -> None:
    (delivery / "descriptions" / "011.txt").unlink()
    settings.EMAIL_BACKEND = "core.mail.EmailBackend"
    with SMTPServer(username="portal", password="right") as smtp:
        server = f"{smtp.host}:{smtp.port}"
        settings.EMAIL_HOST, settings.EMAIL_PORT = smtp.host, smtp.port
        settings.EMAIL_HOST_USER, settings.EMAIL_HOST_PASSWORD = "portal", "wrong"
        _, err = run("import_supplier", str(delivery), "--email", "buyers@example.com")
        assert (
            f"report not mailed: the mail server {server} refused the login as portal: "
            "535 5.7.8 Authentication credentials invalid"
        ) in err
        # No credentials at all: servers that want them refuse the sender.
        settings.EMAIL_HOST_USER, settings.EMAIL_HOST_PASSWORD = "", ""
        _, err = run("import_supplier", str(delivery), "--email", "buyers@example.com")
        assert (
            f"report not mailed: the mail server {server} refused the sender automation@example.com: "
            "530 5.7.0 Authentication required"
        ) in err
        assert smtp.messages == []


def test_the_report_mail_reads_right_for_its_recipients(delivery: Path, settings: Any) -> None:
    (delivery / "descriptions" / "011.txt").unlink()
    (delivery / "descriptions" / "012.txt").write_text("梨 Nashi\n30 lbs\nCrisp.\n", encoding="utf-8")
    (delivery / "descriptions" / "013.txt").write_text("تفاح أحمر\n40 lbs\nRed.\n", encoding="utf-8")
    settings.EMAIL_BACKEND = "core.mail.EmailBackend"
    settings.DEFAULT_FROM_EMAIL = "Obststand Müller <automation@example.com>"
    with SMTPServer() as smtp:
        settings.EMAIL_HOST, settings.EMAIL_PORT = smtp.host, smtp.port
        run("import_supplier", str(delivery), "--email", "Jürgen Weiß <buyers@example.com>", code=0)
        [message] = smtp.wait_for(1)

    assert message["Subject"] == "Upload Completed - Online Fruit Store"
    assert message["From"] == "Obststand Müller <automation@example.com>"
    assert message["To"] == "Jürgen Weiß <buyers@example.com>"
    assert message.envelope_to == ["buyers@example.com"]
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    assert body.get_content().strip() == (
        "All fruits are uploaded to our website successfully. A detailed list is attached to this email."
    )
    [attachment] = message.iter_attachments()
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_filename() == f"processed-{timezone.localdate().isoformat()}.pdf"
    pdf = attachment.get_content()
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    assert "name: 梨 Nashi" in text
    assert "weight: 40 lbs" in text


@pytest.mark.parametrize("advertised", [True, False], ids=["size-advertised", "refused-after-data"])
def test_a_report_too_large_for_the_mail_server_is_mailed_without_it_saying_where_it_is(
    delivery: Path, settings: Any, advertised: bool
) -> None:
    (delivery / "descriptions" / "011.txt").unlink()
    settings.EMAIL_BACKEND = "core.mail.EmailBackend"
    with SMTPServer(max_message_bytes=20_000, advertise_size=advertised) as smtp:
        settings.EMAIL_HOST, settings.EMAIL_PORT = smtp.host, smtp.port
        out, err = run("import_supplier", str(delivery), "--email", "buyers@example.com", code=2)
        [message] = smtp.wait_for(1)

    today = timezone.localdate()
    assert message["Subject"] == "Upload Completed - Online Fruit Store"
    assert message.envelope_to == ["buyers@example.com"]
    assert list(message.iter_attachments()) == []
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    text = body.get_content()
    assert text.startswith("All fruits are uploaded to our website successfully.")
    assert "A detailed list is attached" not in text
    if advertised:  # the server's limit, when it says it
        assert "larger than the mail server takes (20,000 bytes)" in text
    assert f"/admin/catalog/product/report/?date={today.isoformat()}" in text
    assert out.rstrip().endswith("Report mailed to buyers@example.com without the PDF.")
    assert "report not attached: the message is " in err
    if advertised:
        assert "the mail server takes at most 20,000 bytes" in err
    else:
        assert "(552 5.3.4 Message size exceeds fixed maximum message size)" in err


def too_large_report_text(settings: Any) -> str:
    """The body of the mail sent for a report too large for the mail server."""
    settings.EMAIL_BACKEND = "core.mail.EmailBackend"
    with SMTPServer(max_message_bytes=20_000) as smtp:
        settings.EMAIL_HOST, settings.EMAIL_PORT = smtp.host, smtp.port
        outcome = catalog_services.report_send(
            pdf=b"%PDF" + b"x" * 40_000, recipients=["buyers@example.com"], date=dt.date(2024, 5, 17)
        )
        [message] = smtp.wait_for(1)
    assert outcome.not_attached
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    return str(body.get_content())


@pytest.mark.parametrize("base_url", ["https://portal.example.com", "https://example.com:8443/portal"])
def test_a_report_too_large_for_the_mail_server_links_to_it_on_the_portal_s_address(
    settings: Any, base_url: str
) -> None:
    settings.BASE_URL = base_url
    text = too_large_report_text(settings)
    assert (
        "Staff can download the day's report from the admin: "
        f"{base_url}/admin/catalog/product/report/?date=2024-05-17\n"
    ) in text


def test_a_report_too_large_for_the_mail_server_gives_its_path_as_one_without_the_portal_s_address(
    settings: Any,
) -> None:
    """With no address to give, the path, saying it is one: a link a mail
    client could not open would be taken for a broken one."""
    settings.BASE_URL = ""
    text = too_large_report_text(settings)
    assert (
        "Staff can download the day's report from the admin, at this path on the portal's web address: "
        "/admin/catalog/product/report/?date=2024-05-17\n"
    ) in text
    assert "http" not in text


@pytest.mark.parametrize("advertised", [True, False], ids=["size-advertised", "refused-after-data"])
def test_a_report_too_large_and_refused_for_one_recipient_says_both(
    delivery: Path, settings: Any, advertised: bool
) -> None:
    """The mail without the PDF, refused for one recipient: mailed to the
    other without the PDF, and the run fails for both reasons."""
    (delivery / "descriptions" / "011.txt").unlink()
    settings.EMAIL_BACKEND = "core.mail.EmailBackend"
    with SMTPServer(max_message_bytes=20_000, advertise_size=advertised, refuse=["bad@example.com"]) as smtp:
        settings.EMAIL_HOST, settings.EMAIL_PORT = smtp.host, smtp.port
        with pytest.raises(CommandError) as raised:
            call_command(
                "import_supplier",
                str(delivery),
                "--email",
                "bad@example.com",
                "--email",
                "ops@example.com",
                stdout=(out := io.StringIO()),
                stderr=(err := io.StringIO()),
            )
        [message] = smtp.wait_for(1)

    assert message.envelope_to == ["ops@example.com"]
    assert list(message.iter_attachments()) == []
    assert out.getvalue().rstrip().endswith("Report mailed to ops@example.com without the PDF.")
    assert "report not attached: the message is " in err.getvalue()
    assert "report not mailed to bad@example.com: 550 5.1.1 No such user here" in err.getvalue()
    assert str(raised.value) == "report not mailed, report too large to attach."
    assert raised.value.returncode == 2


def test_a_description_file_over_the_limit_is_rejected_unread(delivery: Path) -> None:
    with (delivery / "descriptions" / "012.txt").open("wb") as fh:
        fh.write(b"Pear\n100 lbs\n")
        fh.truncate(1024**3)  # sparse: no disk used
    _, err = run("import_supplier", str(delivery), "--no-email")
    assert "rejected descriptions/012.txt: larger than 1,048,576 bytes, the most a description file" in err
    assert not Product.objects.filter(name="Pear").exists()


def test_a_weight_past_the_most_a_product_holds_is_a_rejected_description(delivery: Path) -> None:
    # Longer than int() reads (4,300 digits), and one past PostgreSQL's integer column.
    (delivery / "descriptions" / "012.txt").write_text(f"Pear\n{'9' * 5000} lbs\nHeavy.\n")
    (delivery / "descriptions" / "013.txt").write_text("Quince\n2147483648 lbs\nHeavy.\n")
    _, err = run("import_supplier", str(delivery), "--no-email")
    assert "rejected descriptions/012.txt: line 2: weight must be at most 2,147,483,647 lbs" in err
    assert "rejected descriptions/013.txt: line 2: weight must be at most 2,147,483,647 lbs" in err
    assert not Product.objects.filter(name__in=["Pear", "Quince"]).exists()
    assert Product.objects.filter(name="Lemon’s best").exists()


def test_a_description_weight_is_read_as_the_endpoints_and_the_admin_read_it(tmp_path: Path) -> None:
    (tmp_path / "descriptions").mkdir()
    cases = [*WEIGHTS, (TOO_HEAVY, None)]
    for number, (weight, _) in enumerate(cases, start=100):
        (tmp_path / "descriptions" / f"{number}.txt").write_text(f"Fruit {number}\n{weight}\nRipe.\n")
    summary = catalog_services.supplier_import(tmp_path, wait_seconds=0)
    stored = dict(Product.objects.values_list("name", "weight"))
    assert {name: stored.get(f"Fruit {name}") for name in range(100, 100 + len(cases))} == {
        number: expected for number, (_, expected) in enumerate(cases, start=100)
    }
    assert len(summary.products.rejected) == sum(expected is None for _, expected in cases)


def test_a_description_in_utf32_is_read_with_its_byte_order_mark_and_named_without(tmp_path: Path) -> None:
    (tmp_path / "descriptions").mkdir()
    (tmp_path / "descriptions" / "020.txt").write_bytes("Pear\r\n100 lbs\r\nJuicy.\r\n".encode("utf-32"))
    (tmp_path / "descriptions" / "021.txt").write_bytes("Quince\n200 lbs\nHard.\n".encode("utf-32-le"))
    summary = catalog_services.supplier_import(tmp_path, wait_seconds=0)
    assert Product.objects.get(name="Pear").description == "Juicy."
    assert summary.products.rejected == [
        (
            "descriptions/021.txt",
            "holds a null character (character 2); it looks like UTF-32 without a byte order mark; "
            "save the file as UTF-8",
        )
    ]


@pytest.fixture
def silent_smtp(settings: Any) -> Iterator[socket.socket]:
    """A mail server that takes connections and never says a word."""
    with socket.create_server(("127.0.0.1", 0)) as silent:
        silent.listen(8)
        settings.EMAIL_BACKEND = "core.mail.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", silent.getsockname()[1]
        settings.EMAIL_TIMEOUT = 1
        yield silent


def test_a_mail_server_that_never_answers_costs_the_import_its_timeout_not_for_ever(
    delivery: Path, silent_smtp: socket.socket
) -> None:
    (delivery / "descriptions" / "011.txt").unlink()
    out, err = run("import_supplier", str(delivery), "--email", "supplier@example.com", code=2)
    port = silent_smtp.getsockname()[1]
    # The read's own time-out, not the report's deadline of twice EMAIL_TIMEOUT.
    assert (
        f"report not mailed: the mail server 127.0.0.1:{port} did not answer within 1 s (EMAIL_TIMEOUT)"
        in err
    )
    assert out.startswith("4 products created")


def test_a_mail_server_that_trickles_is_given_twice_email_timeout_for_the_report(
    delivery: Path, settings: Any
) -> None:
    (delivery / "descriptions" / "011.txt").unlink()
    listener = socket.create_server(("127.0.0.1", 0))
    left = threading.Event()
    threading.Thread(target=trickling_smtp, args=(listener, left), daemon=True).start()
    settings.EMAIL_BACKEND = "core.mail.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", listener.getsockname()[1]
    settings.EMAIL_TIMEOUT = 1  # no read waits that long
    with listener:
        out, err = run("import_supplier", str(delivery), "--email", "supplier@example.com")
    # Set only by a client that hangs up before the trickle ends (20 s of it).
    assert left.wait(timeout=30), "the import kept reading the trickle"
    assert (
        f"report not mailed: the mail server 127.0.0.1:{settings.EMAIL_PORT} "
        "did not take the mail within 2 s (twice EMAIL_TIMEOUT)"
    ) in err
    assert out.startswith("4 products created")


def _scripted_smtp(listener: socket.socket, replies: list[bytes]) -> None:
    """Answers one client with ``replies``: the greeting, then one for each
    line the client sends; then hangs up."""
    connection, _ = listener.accept()
    with connection, connection.makefile("rb") as lines:
        connection.sendall(replies[0])
        for reply in replies[1:]:
            if not lines.readline():
                return
            connection.sendall(reply)


@pytest.mark.parametrize(
    ("replies", "refusal"),
    [
        (
            [b"554 5.3.2 mail.example.com takes no mail\r\n"],
            "refused the connection: 554 5.3.2 mail.example.com takes no mail",
        ),
        (
            [b"220 hi\r\n", b"550 5.7.1 who?\r\n", b"550 5.7.1 who?\r\n"],
            "refused the greeting (EHLO): 550 5.7.1 who?",
        ),
        (
            [b"220 hi\r\n", b"250 hi\r\n", b"421 4.3.2 going down\r\n"],
            "closed the connection (421 4.3.2 going down)",
        ),
    ],
    ids=["greeting", "ehlo", "closing"],
)
def test_a_mail_server_refusing_the_session_is_named_with_its_reply_in_plain_words(
    delivery: Path, settings: Any, replies: list[bytes], refusal: str
) -> None:
    """Not smtplib's tuple of the code and the reply's bytes; and a server
    going down (421) is not said to refuse the sender."""
    (delivery / "descriptions" / "011.txt").unlink()
    listener = socket.create_server(("127.0.0.1", 0))
    threading.Thread(target=_scripted_smtp, args=(listener, replies), daemon=True).start()
    settings.EMAIL_BACKEND = "core.mail.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", listener.getsockname()[1]
    with listener:
        _, err = run("import_supplier", str(delivery), "--email", "supplier@example.com")
    assert f"report not mailed: the mail server 127.0.0.1:{settings.EMAIL_PORT} {refusal}\n" in err
    assert "b'" not in err


def test_a_photo_far_over_the_byte_limit_is_rejected_without_being_read(
    delivery: Path, settings: Any
) -> None:
    settings.IMAGE_MAX_BYTES = 1024 * 1024
    with (delivery / "images" / "020.jpg").open("wb") as fh:  # sparse: no disk, 200 MB to read
        fh.truncate(200 * 1024 * 1024)
    tracemalloc.start()
    try:
        _, err = run("import_supplier", str(delivery), "--no-email")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "rejected images/020.jpg: The file is 209,715,200 bytes; the limit is 1,048,576 bytes" in err
    assert peak < 50 * 1024 * 1024, f"{peak:,} bytes allocated"


@pytest.mark.parametrize("wait", ["-5", "nan", "inf", "1e400"])
def test_import_supplier_refuses_a_wait_that_is_no_number_of_seconds_before_importing(
    delivery: Path, wait: str
) -> None:
    # A negative wait gave up at once, and NaN or infinity waited for ever.
    with pytest.raises(
        CommandError, match=rf"--wait: must be a number of seconds, 0 or more; it is '{wait}'"
    ):
        call_command("import_supplier", str(delivery), "--no-email", "--wait", wait, stdout=io.StringIO())
    assert not Product.objects.exists()
