"""Odd multipart bodies sent to the pages and endpoints that take files: a
file under a name that names no file (``..``, ``photos/``) is refused saying
so, not answered as if no file had been sent; an empty file input is no file;
two files where one is taken are refused, not one of them dropped."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadhandler import FileUploadHandler
from django.test import Client
from rest_framework.test import APIClient

from catalog.models import Feedback
from tests.factories import logged_in, staff_with
from tests.uploads import corpus
from uploads.models import Image

pytestmark = pytest.mark.django_db

BOUNDARY = "name-test-boundary"
# Names Django's parser would drop: a folder, the folder itself, its parent,
# a path ending in a separator, an entity for "..", a control character alone.
UNUSABLE = ["..", ".", "photos/", "C:\\photos\\", "&#46;&#46;", "\x07"]


def multipart(
    fields: dict[str, str | bytes],
    files: dict[str, tuple[str | bytes, bytes]] | list[tuple[str, tuple[str | bytes, bytes]]],
) -> bytes:
    """A multipart body as a client sends it, the values and file names
    exactly as given (bytes as they are, text as UTF-8)."""

    def raw(text: str | bytes) -> bytes:
        return text if isinstance(text, bytes) else text.encode()

    parts = [
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
        + raw(value)
        + b"\r\n"
        for name, value in fields.items()
    ]
    for name, (file_name, data) in files.items() if isinstance(files, dict) else files:
        head = (
            f"--{BOUNDARY}\r\n".encode()
            + f'Content-Disposition: form-data; name="{name}"; filename="'.encode()
            + raw(file_name)
            + b'"\r\nContent-Type: application/octet-stream\r\n\r\n'
        )
        parts.append(head + data + b"\r\n")
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


def post(client: Client, url: str, body: bytes, **extra: Any) -> Any:
    return client.post(url, body, content_type=f"multipart/form-data; boundary={BOUNDARY}", **extra)


def said(name: str) -> str:
    return f"The file's name {name!r} is not a usable file name"


@pytest.mark.parametrize("name", UNUSABLE)
def test_the_course_upload_says_the_file_s_name_is_refused(client: Client, name: str) -> None:
    response = post(client, "/upload/", multipart({}, {"file": (name, corpus.jpeg())}))
    assert response.status_code == 400
    [message] = response.json()["file"]
    assert message.startswith(said(name)), message
    assert Image.objects.count() == 0


@pytest.mark.parametrize("url", ["/upload/", "/api/v1/images/"])
def test_a_file_input_left_empty_is_no_file_sent(token_client: APIClient, url: str) -> None:
    # What a browser sends for a file input with nothing chosen.
    response = post(token_client, url, multipart({}, {"file": ("", b"")}))
    assert response.status_code == 400
    assert response.json() == {"file": ["No file was submitted."]}


def test_a_name_with_a_folder_is_taken_by_its_last_part(client: Client) -> None:
    response = post(client, "/upload/", multipart({}, {"file": ("photos/006.jpg", corpus.jpeg())}))
    assert response.status_code == 201, response.content
    assert response.json()["file"] == "006.jpg"


@pytest.mark.parametrize("name", ["..", "photos/"])
def test_the_images_api_says_the_file_s_name_is_refused(token_client: APIClient, name: str) -> None:
    body = multipart({"preset": "web"}, {"file": (name, corpus.jpeg())})
    response = post(token_client, "/api/v1/images/", body)
    assert response.status_code == 400
    [message] = response.json()["file"]
    assert message.startswith(said(name)), message
    assert Image.objects.count() == 0


def test_the_admin_s_upload_page_says_the_file_s_name_is_refused() -> None:
    client = logged_in(staff_with("uploads", "add_image", "view_image", username="uploader"))
    body = multipart({"preset": "web"}, {"files": ("..", corpus.jpeg())})
    response = post(client, "/admin/uploads/image/upload/", body)
    assert response.status_code == 400
    assert "The file&#x27;s name &#x27;..&#x27; is not a usable file name" in response.content.decode()
    assert Image.objects.count() == 0


def test_the_admin_s_import_page_says_the_file_s_name_is_refused() -> None:
    client = logged_in(staff_with("catalog", "add_person", "change_person", "view_person"))
    body = multipart({"format": "0", "resource": "0"}, {"import_file": ("..", b"name\nAda\n")})
    response = post(client, "/admin/catalog/person/import/", body)
    assert response.status_code == 400
    assert "The file&#x27;s name &#x27;..&#x27; is not a usable file name" in response.content.decode()


@pytest.mark.parametrize("url", ["/upload/", "/api/v1/images/"])
def test_two_files_where_one_is_taken_are_refused_not_one_dropped(token_client: APIClient, url: str) -> None:
    body = multipart({}, [("file", ("a.jpg", corpus.jpeg())), ("file", ("b.jpg", corpus.jpeg()))])
    response = post(token_client, url, body)
    assert response.status_code == 400
    assert response.json() == {"file": ["Send one file per request; this one has 2."]}
    assert Image.objects.count() == 0


@pytest.mark.parametrize("url", ["/upload/", "/api/v1/images/"])
def test_a_file_over_the_limit_cut_off_while_it_streams_is_named_as_sent(
    token_client: APIClient, settings: Any, url: str
) -> None:
    settings.IMAGE_MAX_BYTES = 1000
    body = multipart({}, {"file": ("photos/", b"\xff\xd8" + b"\0" * 2000)})
    response = post(token_client, url, body)
    assert response.status_code == 413
    detail = response.json()["detail"]
    # The parser's stand-in name is no name the client knows of.
    assert detail.startswith("The file 'photos/' is larger than the limit"), detail
    assert "unusable-name" not in detail
    assert Image.objects.count() == 0


def test_the_admin_s_upload_page_names_a_file_over_the_limit_as_sent(settings: Any) -> None:
    settings.IMAGE_MAX_BYTES = 1000
    client = logged_in(staff_with("uploads", "add_image", "view_image", username="uploader"))
    body = multipart(
        {"preset": "web"}, [("files", ("a.jpg", corpus.jpeg()[:900])), ("files", ("..", b"\0" * 2000))]
    )
    response = post(client, "/admin/uploads/image/upload/", body)
    assert response.status_code == 413
    page = response.content.decode()
    assert "The file &#x27;..&#x27; is larger than the limit" in page
    assert "unusable-name" not in page


# "Café" as a file saved as Latin-1 holds it: 43 61 66 E9, no UTF-8.
LATIN_1_CAFE = "Café".encode("latin-1")
NOT_UTF8 = ["Not UTF-8 text; send the text as UTF-8."]


def review(**fields: str | bytes) -> dict[str, str | bytes]:
    return {"title": "Great", "name": "Ann", "date": "2017-12-21", "feedback": "Good.", **fields}


@pytest.mark.parametrize("field", ["title", "feedback"])
def test_a_course_review_s_text_that_is_not_utf8_is_refused_naming_its_field(
    client: Client, field: str
) -> None:
    response = post(client, "/feedback/", multipart(review(**{field: LATIN_1_CAFE}), {}))
    assert response.status_code == 400
    assert response.json() == {field: NOT_UTF8}
    assert not Feedback.objects.exists()


def test_an_api_review_s_text_that_is_not_utf8_is_refused_naming_its_field(client: Client) -> None:
    body = multipart(
        {"title": LATIN_1_CAFE, "name": "Ann", "date": "2017-12-21", "text": "Good.", "rating": "5"}, {}
    )
    response = post(client, "/api/v1/feedback/", body)
    assert response.status_code == 400
    assert response.json() == {"title": NOT_UTF8}
    assert not Feedback.objects.exists()


def test_an_image_s_title_that_is_not_utf8_is_refused_naming_its_field(token_client: APIClient) -> None:
    body = multipart({"title": LATIN_1_CAFE}, {"file": ("a.jpg", corpus.jpeg())})
    response = post(token_client, "/api/v1/images/", body)
    assert response.status_code == 400
    assert response.json() == {"title": NOT_UTF8}
    assert Image.objects.count() == 0


def test_the_admin_s_upload_page_names_a_field_that_is_not_utf8() -> None:
    client = logged_in(staff_with("uploads", "add_image", "view_image", username="uploader"))
    body = multipart({"preset": b"w\xe9b"}, {"files": ("a.jpg", corpus.jpeg())})
    response = post(client, "/admin/uploads/image/upload/", body)
    assert response.status_code == 400
    assert "preset: Not UTF-8 text; send the text as UTF-8." in response.content.decode()
    assert Image.objects.count() == 0


def test_a_replacement_character_and_accents_sent_as_utf8_are_kept(
    client: Client, token_client: APIClient
) -> None:
    reviewed = post(client, "/feedback/", multipart(review(title="Caf\ufffd", feedback="Très bon."), {}))
    assert reviewed.status_code == 201, reviewed.content
    assert Feedback.objects.values_list("title", "text").get() == ("Caf\ufffd", "Très bon.")
    body = multipart({"title": "Café \ufffd"}, {"file": ("Café.jpg", corpus.jpeg())})
    uploaded = post(token_client, "/api/v1/images/", body)
    assert uploaded.status_code == 201, uploaded.content
    assert Image.objects.values_list("title", "original_name").get() == ("Café \ufffd", "Café.jpg")


def charset_refused(charset: str) -> str:
    return f"The form&#x27;s charset &#x27;{charset}&#x27; is no text encoding a form is read in"


# Codecs Python has that read no form: of bytes to bytes (base64), of text to
# text (rot13), or that cannot mark a byte they do not read (IDNA).
NO_FORM_CHARSETS = ["base64", "rot13", "idna"]


@pytest.mark.parametrize("charset", NO_FORM_CHARSETS)
@pytest.mark.parametrize("url", ["/feedback/", "/api/v1/feedback/", "/upload/", "/api/v1/images/"])
def test_a_multipart_form_in_a_charset_that_reads_no_form_is_a_400_saying_so(
    token_client: APIClient, url: str, charset: str
) -> None:
    body = multipart(review(title="Dr.xn--ab-"), {"file": ("a.jpg", corpus.jpeg())})
    content_type = f"multipart/form-data; boundary={BOUNDARY}; charset={charset}"
    response = token_client.generic("POST", url, body, content_type=content_type)
    assert response.status_code == 400
    assert response.json() == {
        "detail": f"The form's charset '{charset}' is no text encoding a form is read in; "
        "send the form as UTF-8."
    }
    assert not Feedback.objects.exists()
    assert Image.objects.count() == 0


def disposed(*parts: tuple[bytes, bytes]) -> bytes:
    """A multipart body of parts given by their Content-Disposition's
    parameters and their data, both bytes exactly as sent."""
    body = b"".join(
        f"--{BOUNDARY}\r\nContent-Disposition: form-data; ".encode() + params + b"\r\n\r\n" + data + b"\r\n"
        for params, data in parts
    )
    return body + f"--{BOUNDARY}--\r\n".encode()


def a_jpeg(params: bytes = b'name="file"; filename="a.jpg"') -> tuple[bytes, bytes]:
    return params, corpus.jpeg()


# A field whose name is "Café" saved as Latin-1: Django's parser dropped the part.
LATIN_1_NAMED = (b'name="' + LATIN_1_CAFE + b'"', b"x")
NAME_NOT_UTF8 = "The field name 'Caf\ufffd' is not UTF-8 text; send the name as UTF-8."


def fields(**values: str | bytes) -> list[tuple[bytes, bytes]]:
    return [
        (f'name="{name}"'.encode(), value if isinstance(value, bytes) else value.encode())
        for name, value in values.items()
    ]


@pytest.mark.parametrize(
    ("url", "body"),
    [
        ("/feedback/", disposed(*fields(**review()), LATIN_1_NAMED)),
        (
            "/api/v1/feedback/",
            disposed(
                *fields(title="Great", name="Ann", date="2017-12-21", text="Good.", rating="5"), LATIN_1_NAMED
            ),
        ),
        ("/api/v1/images/", disposed(LATIN_1_NAMED, a_jpeg())),
        ("/upload/", disposed(LATIN_1_NAMED, a_jpeg())),
    ],
    ids=["course review", "api review", "images api", "course upload"],
)
def test_a_field_name_that_is_not_utf8_is_refused_quoting_it(
    token_client: APIClient, url: str, body: bytes
) -> None:
    response = post(token_client, url, body)
    assert response.status_code == 400, response.content
    assert response.json() == {"detail": NAME_NOT_UTF8}
    assert not Feedback.objects.exists()
    assert Image.objects.count() == 0


@pytest.mark.parametrize("charset", NO_FORM_CHARSETS)
@pytest.mark.parametrize("as_multipart", [True, False], ids=["multipart", "urlencoded"])
def test_the_admin_s_pages_say_a_form_in_a_charset_that_reads_no_form_is_refused(
    charset: str, as_multipart: bool
) -> None:
    client = logged_in(staff_with("uploads", "add_image", "view_image", username="uploader"))
    if as_multipart:
        body = multipart({"preset": "web"}, {"files": ("a.jpg", corpus.jpeg())})
        content_type = f"multipart/form-data; boundary={BOUNDARY}; charset={charset}"
    else:
        body, content_type = b"preset=web", f"application/x-www-form-urlencoded; charset={charset}"
    for url in ["/admin/uploads/image/upload/", "/admin/uploads/image/"]:
        response = client.generic("POST", url, body, content_type=content_type)
        assert response.status_code == 400, (url, response.status_code)
        assert charset_refused(charset) in response.content.decode()
    assert Image.objects.count() == 0


def test_a_plain_form_s_field_name_that_is_not_utf8_is_quoted_as_well(client: Client) -> None:
    body = b"title=Great&name=Ann&date=2017-12-21&feedback=Good.&Caf%E9=x"
    response = client.post("/feedback/", body, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400
    assert response.json() == {"detail": NAME_NOT_UTF8}
    assert not Feedback.objects.exists()


def test_the_admin_s_upload_page_quotes_a_field_name_that_is_not_utf8() -> None:
    client = logged_in(staff_with("uploads", "add_image", "view_image", username="uploader"))
    body = disposed(*fields(preset="web"), LATIN_1_NAMED, a_jpeg(b'name="files"; filename="a.jpg"'))
    response = post(client, "/admin/uploads/image/upload/", body)
    assert response.status_code == 400
    assert "The field name &#x27;Caf\ufffd&#x27; is not UTF-8 text" in response.content.decode()
    assert Image.objects.count() == 0


FILE_NAME_NOT_UTF8 = "The file's name 'Caf\ufffd.jpg' is not UTF-8 text; send the name as UTF-8."


@pytest.mark.parametrize(
    "params",
    [b'name="file"; filename="Caf\xe9.jpg"', b"name=\"file\"; filename*=UTF-8''Caf%E9.jpg"],
    ids=["as bytes", "rfc 2231"],
)
@pytest.mark.parametrize("url", ["/upload/", "/api/v1/images/"])
def test_a_file_name_that_is_not_utf8_is_refused_quoting_it(
    token_client: APIClient, url: str, params: bytes
) -> None:
    response = post(token_client, url, disposed(a_jpeg(params)))
    assert response.status_code == 400, response.content
    assert response.json() == {"file": [FILE_NAME_NOT_UTF8]}
    assert Image.objects.count() == 0


def test_the_admin_s_upload_page_quotes_a_file_name_that_is_not_utf8() -> None:
    client = logged_in(staff_with("uploads", "add_image", "view_image", username="uploader"))
    body = disposed(*fields(preset="web"), a_jpeg(b'name="files"; filename="Caf\xe9.jpg"'))
    response = post(client, "/admin/uploads/image/upload/", body)
    assert response.status_code == 400
    page = response.content.decode()
    assert "files: The file&#x27;s name &#x27;Caf\ufffd.jpg&#x27; is not UTF-8 text" in page
    assert Image.objects.count() == 0


def test_a_file_name_sent_rfc_2231_encoded_is_read(token_client: APIClient) -> None:
    body = disposed(a_jpeg(b"name=\"file\"; filename*=UTF-8''Caf%C3%A9 %E2%82%AC.jpg"))
    response = post(token_client, "/api/v1/images/", body)
    assert response.status_code == 201, response.content
    assert Image.objects.values_list("original_name", flat=True).get() == "Café €.jpg"


@pytest.mark.parametrize(
    ("params", "kept"),
    [
        ('name="file"; filename=Voilà.jpg'.encode(), "Voilà.jpg"),
        ('name="file"; filename=Voilà'.encode(), "Voilà"),
        ('name="file"; filename=ĠÅ'.encode(), "ĠÅ"),
    ],
    ids=["unquoted", "unquoted, a in a grave accent last", "unquoted, two such letters last"],
)
def test_a_utf8_file_name_sent_unquoted_is_read_as_django_reads_it(
    token_client: APIClient, params: bytes, kept: str
) -> None:
    # The UTF-8 of à and Å ends in bytes that, read one by one, are spaces
    # (U+00A0, U+0085): the name is read as Django reads it, whole.
    response = post(token_client, "/api/v1/images/", disposed(a_jpeg(params)))
    assert response.status_code == 201, response.content
    assert Image.objects.values_list("original_name", flat=True).get() == kept


def not_escaped(name: str) -> str:
    return (
        f"{name} is not percent-encoded, as a name*= or filename*= value must be; "
        "send the name as UTF-8, each byte past ASCII as %XX."
    )


@pytest.mark.parametrize(
    ("params", "said"),
    [
        (
            "name=\"file\"; filename*=UTF-8''Café.jpg".encode(),
            {"file": [not_escaped("The file's name 'Café.jpg'")]},
        ),
        (
            "name=\"file\"; filename*=UTF-8''€.jpg".encode(),
            {"file": [not_escaped("The file's name '€.jpg'")]},
        ),
        ("name*=UTF-8''Café; filename=\"a.jpg\"".encode(), {"detail": not_escaped("The field name 'Café'")}),
    ],
    ids=["file name", "file name past Latin-1", "field name"],
)
def test_a_name_sent_rfc_2231_encoded_without_its_escapes_is_refused_quoting_it(
    token_client: APIClient, params: bytes, said: dict[str, Any]
) -> None:
    # Django's parser read the name's letters past ASCII as U+FFFD (or as
    # "u20ac" for the euro sign) and kept the file under that name.
    response = post(token_client, "/api/v1/images/", disposed(a_jpeg(params)))
    assert response.status_code == 400, response.content
    assert response.json() == said
    assert Image.objects.count() == 0


@pytest.mark.parametrize(("url", "as_staff"), [("/upload/", False), ("/api/v1/images/", True)])
@pytest.mark.parametrize("file_name", [None, ""], ids=["no-filename", "empty-filename"])
def test_a_photo_sent_as_a_text_field_is_told_to_go_as_a_file_not_as_utf8_text(
    client: Client, token_client: APIClient, url: str, as_staff: bool, file_name: str | None
) -> None:
    """``curl -F "file=<photo.jpg"``, or a part with ``filename=""``: Django
    reads a part with no file name as a text field, and a photo's bytes are
    no text; the way out is a file name, not UTF-8."""
    name = "" if file_name is None else f'; filename="{file_name}"'
    body = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"{name}\r\n'
        "Content-Type: image/jpeg\r\n\r\n".encode()
        + corpus.jpeg()
        + f"\r\n--{BOUNDARY}--\r\n".encode()
    )
    response = post(token_client if as_staff else client, url, body)
    assert response.status_code == 400
    [message] = response.json()["file"]
    assert "file name" in message, message
    assert "send the text as UTF-8" not in message
    assert Image.objects.count() == 0


# How much of a body Django's parser reads at a time (its upload handlers' chunk size).
READ = FileUploadHandler.chunk_size


def test_a_field_name_that_is_not_utf8_is_refused_wherever_a_read_of_the_body_cuts_its_part(
    token_client: APIClient,
) -> None:
    """The headers of a part are checked as they stream past: one whose
    boundary or headers come in two reads is checked as one that comes in
    one."""
    before = disposed(a_jpeg()).removesuffix(f"--{BOUNDARY}--\r\n".encode())
    part = disposed(LATIN_1_NAMED)
    headers = len(part) - len(b"x\r\n--" + BOUNDARY.encode() + b"--\r\n")
    for cut in range(1, headers):
        # The jpeg's end padded for the read to end ``cut`` bytes into the part.
        padding = READ - cut - len(before)
        file = (b'name="file"; filename="a.jpg"', corpus.jpeg() + b"\0" * padding)
        body = disposed(file, LATIN_1_NAMED)
        assert body[READ - cut : READ] == part[:cut]
        response = post(token_client, "/api/v1/images/", body)
        assert (response.status_code, response.json()) == (400, {"detail": NAME_NOT_UTF8}), cut
    assert Image.objects.count() == 0


@pytest.mark.parametrize(
    ("params", "charset", "said"),
    [
        (
            b'name="file"; filename="a.jpg"; size="\xe9"',
            "utf-8",
            "The part's Content-Disposition is not UTF-8 text; send it as UTF-8.",
        ),
        (
            b"name=\"file\"; filename*=x-unknown''a.jpg",
            "utf-8",
            "The file's name 'a.jpg' is in a charset of no known name ('x-unknown'); send the name as UTF-8.",
        ),
        (
            'name="file"; filename="Café.jpg"'.encode(),
            "us-ascii",
            "The file's name 'Caf\ufffd\ufffd.jpg' is not US-ASCII text; send the name as US-ASCII.",
        ),
        (
            b"name=\"file\"; filename*=idna''%FF.jpg",
            "utf-8",
            "The file's name '\ufffd.jpg' is not IDNA text; send the name as UTF-8.",
        ),
    ],
    ids=["a byte elsewhere", "a charset of no name", "text not in the form's charset", "not idna"],
)
def test_a_content_disposition_django_would_drop_or_misread_is_refused_naming_why(
    token_client: APIClient, params: bytes, charset: str, said: str
) -> None:
    content_type = f"multipart/form-data; boundary={BOUNDARY}; charset={charset}"
    response = token_client.generic(
        "POST", "/api/v1/images/", disposed(a_jpeg(params)), content_type=content_type
    )
    assert response.status_code == 400, response.content
    assert response.json() == {"file": [said]}
    assert Image.objects.count() == 0


@pytest.mark.parametrize(
    ("parts", "kept"),
    [
        ([a_jpeg(b'filename="b.jpg"'), a_jpeg()], "a.jpg"),
        ([a_jpeg(b"name=\"file\"; filename*=base64''YWJj.jpg")], "YWJj.jpg"),
    ],
    ids=["a part of no field", "a charset of no text"],
)
def test_a_part_django_reads_as_it_is_is_read_so(
    token_client: APIClient, parts: list[tuple[bytes, bytes]], kept: str
) -> None:
    """A part that names no field Django's parser leaves out; a name in a
    codec of no text (base64) it takes as sent."""
    response = post(token_client, "/api/v1/images/", disposed(*parts))
    assert response.status_code == 201, response.content
    assert Image.objects.values_list("original_name", flat=True).get() == kept


def test_the_admin_s_upload_page_names_a_refused_file_by_its_own_name_not_another_s() -> None:
    """Each file kept under a stand-in name has its own: the first of two
    is not told by the name the second was sent under."""
    client = logged_in(staff_with("uploads", "add_image", "view_image", username="uploader"))
    body = multipart(
        {"preset": "web"}, [("files", ("..", corpus.jpeg())), ("files", ("photos/", corpus.jpeg()))]
    )
    response = post(client, "/admin/uploads/image/upload/", body)
    assert response.status_code == 400
    assert "The file&#x27;s name &#x27;..&#x27; is not a usable file name" in response.content.decode()
    assert Image.objects.count() == 0


def test_a_form_refused_for_a_field_not_utf8_leaves_no_temporary_file_of_its_files(
    token_client: APIClient, settings: Any, tmp_path: Path
) -> None:
    """The parser closes what it read of the files, as Django's does on an
    error: the request closes only the files it is given."""
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path)
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 0  # each file streamed to a temporary file
    body = multipart({"title": LATIN_1_CAFE}, {"file": ("a.jpg", corpus.jpeg())})
    response = post(token_client, "/api/v1/images/", body)
    assert response.json() == {"title": NOT_UTF8}
    assert list(tmp_path.iterdir()) == []
