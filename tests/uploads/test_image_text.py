"""What an image's title and alt text refuse on every path that writes them
(the API's upload, the admin's upload and change forms, the upload service),
in the words a person's, a product's or a review's text is refused in: a
direction control, which makes the text read otherwise on screen, or a
control character, which shows as nothing or as another character."""

from __future__ import annotations

import html
import unicodedata
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from rest_framework.test import APIClient

from tests.factories import ImageFactory
from tests.uploads import corpus
from tests.uploads.test_focal_point import change_form
from uploads import processing, services
from uploads.models import Image

pytestmark = pytest.mark.django_db

API = "/api/v1/images/"
ADMIN_UPLOAD = "/admin/uploads/image/upload/"

CONTROLS = [("title", "\u202e"), ("alt", "\u2066"), ("title", "\u202a"), ("alt", "\u2069")]


def reason(control: str) -> str:
    return f"The text cannot contain the direction control U+{ord(control):04X}, which changes how it reads on screen."


def text_with(control: str) -> str:
    # "Ripe pears" on screen, for other words.
    return f"Ripe {control}sraep"


@pytest.mark.parametrize(("field", "control"), CONTROLS)
def test_an_upload_through_the_api_whose_text_would_read_otherwise_is_refused(
    token_client: APIClient, field: str, control: str
) -> None:
    response = token_client.post(
        API,
        {"file": SimpleUploadedFile("pear.jpg", corpus.jpeg()), field: text_with(control)},
        format="multipart",
    )

    assert response.status_code == 400
    assert response.json() == {field: [reason(control)]}
    assert not Image.objects.exists()


@pytest.mark.parametrize(("field", "control"), CONTROLS)
def test_an_upload_in_the_admin_whose_text_would_read_otherwise_is_refused_on_its_field(
    admin_client: Client, field: str, control: str
) -> None:
    response = admin_client.post(
        ADMIN_UPLOAD,
        {
            "files": [SimpleUploadedFile("pear.jpg", corpus.jpeg())],
            "preset": "web",
            field: text_with(control),
        },
    )

    assert response.status_code == 400
    assert response.context["form"].errors == {field: [reason(control)]}
    assert not Image.objects.exists()


@pytest.mark.parametrize(("field", "control"), CONTROLS)
def test_a_change_in_the_admin_whose_text_would_read_otherwise_is_refused_and_changes_nothing(
    admin_client: Client, field: str, control: str
) -> None:
    image = ImageFactory(title="Pears", alt="Ripe pears", processed=False)
    fields = {"title": image.title, "alt": image.alt, field: text_with(control)}

    response = admin_client.post(f"/admin/uploads/image/{image.pk}/change/", fields)

    assert response.status_code == 200
    assert reason(control) in html.unescape(response.content.decode())
    image.refresh_from_db()
    assert (image.title, image.alt) == ("Pears", "Ripe pears")


@pytest.mark.parametrize(("field", "control"), CONTROLS)
def test_the_upload_service_refuses_such_text_as_every_path_does(field: str, control: str) -> None:
    """The road of everything else that uploads (the demo content, scripts)."""
    with pytest.raises(ValidationError) as refused:
        services.image_upload(file=corpus.jpeg(), original_name="pear.jpg", **{field: text_with(control)})

    assert refused.value.message_dict == {field: [reason(control)]}
    assert not Image.objects.exists()


def test_alt_text_in_right_to_left_scripts_and_their_marks_is_kept(token_client: APIClient) -> None:
    alt = "\u05d0\u05d2\u05e1\u05d9\u05dd \u05d1\u05e9\u05dc\u05d9\u05dd\u200f (pears)"  # Hebrew, with a right-to-left mark
    response = token_client.post(
        API, {"file": SimpleUploadedFile("pear.jpg", corpus.jpeg()), "alt": alt}, format="multipart"
    )

    assert response.status_code == 201, response.json()
    assert Image.objects.get().alt == alt


def test_an_image_stored_with_such_text_before_the_rule_still_takes_a_focal_point(commit: Any) -> None:
    """The point is what is written: the text it did not touch is no reason
    to refuse it (the admin's form, which shows the text, asks for it fixed)."""
    image = ImageFactory(alt="Ripe pears")
    Image.objects.filter(pk=image.pk).update(alt=text_with("\u202e"))

    with commit():
        services.image_set_focal_point(image=image, focal_point=processing.FocalPoint(0.2, 0.3, None))

    image.refresh_from_db()
    assert (image.focal_x, image.focal_y) == (0.2, 0.3)


# --- Control characters -------------------------------------------------------

CONTROL_CHARACTERS = [
    ("title", "\x07", "0007"),
    ("alt", "\n", "000A"),
    ("alt", "\x7f", "007F"),
    ("title", "\x9d", "009D"),
]


def control_reason(code: str) -> str:
    return f"The text cannot contain the control character U+{code}."


@pytest.mark.parametrize(("field", "control", "code"), CONTROL_CHARACTERS)
def test_an_image_whose_text_holds_a_control_character_is_refused_on_every_path_naming_it(
    token_client: APIClient, admin_client: Client, field: str, control: str, code: str
) -> None:
    text = f"Ripe{control}pears"
    api = token_client.post(
        API, {"file": SimpleUploadedFile("pear.jpg", corpus.jpeg()), field: text}, format="multipart"
    )
    assert api.status_code == 400
    assert api.json() == {field: [control_reason(code)]}

    upload = admin_client.post(
        ADMIN_UPLOAD, {"files": [SimpleUploadedFile("pear.jpg", corpus.jpeg())], "preset": "web", field: text}
    )
    assert upload.status_code == 400
    assert upload.context["form"].errors == {field: [control_reason(code)]}

    with pytest.raises(ValidationError) as refused:
        services.image_upload(file=corpus.jpeg(), original_name="pear.jpg", **{field: text})
    assert refused.value.message_dict == {field: [control_reason(code)]}
    assert not Image.objects.exists()

    image = ImageFactory(title="Pears", alt="Ripe pears", processed=False)
    change = admin_client.post(
        f"/admin/uploads/image/{image.pk}/change/", {"title": image.title, "alt": image.alt, field: text}
    )
    assert change.status_code == 200
    assert control_reason(code) in html.unescape(change.content.decode())
    image.refresh_from_db()
    assert (image.title, image.alt) == ("Pears", "Ripe pears")


# --- Stored composed ----------------------------------------------------------

TITLE = "Poires m\u00fbres"
ALT = "Des poires m\u00fbres, cueillies \u00e0 la main"


def nfd(text: str) -> str:
    """The text as a Mac sends it: each accent apart from its letter."""
    decomposed = unicodedata.normalize("NFD", text)
    assert decomposed != text
    return decomposed


def test_an_image_s_text_is_stored_composed_on_every_path_that_writes_it(
    token_client: APIClient, admin_client: Client
) -> None:
    api = token_client.post(
        API,
        {"file": SimpleUploadedFile("pear.jpg", corpus.jpeg()), "title": nfd(TITLE), "alt": nfd(ALT)},
        format="multipart",
    )
    assert api.status_code == 201, api.json()
    upload = admin_client.post(
        ADMIN_UPLOAD,
        {
            "files": [SimpleUploadedFile("pear.jpg", corpus.jpeg(seed=2))],
            "preset": "web",
            "title": nfd(TITLE),
            "alt": nfd(ALT),
        },
    )
    assert upload.status_code == 302
    services.image_upload(file=corpus.jpeg(seed=3), original_name="pear.jpg", title=nfd(TITLE), alt=nfd(ALT))
    changed = ImageFactory(title="Pears", alt="Ripe pears", processed=False)
    change = admin_client.post(
        f"/admin/uploads/image/{changed.pk}/change/",
        {**change_form(admin_client, changed), "title": nfd(TITLE), "alt": nfd(ALT)},
    )
    assert change.status_code == 302, change.content.decode()[:3000]

    assert set(Image.objects.values_list("title", "alt")) == {(TITLE, ALT)}
    assert Image.objects.count() == 4
    found = token_client.get(API, {"search": "m\u00fbres"}).json()["results"]
    assert len(found) == 4


def test_a_patch_sending_back_the_text_as_it_was_uploaded_decomposed_changes_the_point(
    token_client: APIClient,
) -> None:
    image = ImageFactory(title=TITLE, alt=ALT)

    response = token_client.patch(
        f"{API}{image.pk}/",
        {"title": nfd(TITLE), "alt": nfd(ALT), "focal_point": {"x": 0.2, "y": 0.3}},
        format="json",
    )

    assert response.status_code == 202, response.json()
    image.refresh_from_db()
    assert (image.focal_x, image.focal_y, image.title) == (0.2, 0.3, TITLE)


# --- Lengths, counted composed ------------------------------------------------

LIMITS = [("title", 200), ("alt", 300)]


def accented(length: int) -> str:
    """``length`` accented letters sent decomposed: twice as many characters
    as the text stored."""
    return nfd("\u00e9" * length)


@pytest.mark.parametrize(("field", "limit"), LIMITS)
def test_an_upload_through_the_api_counts_a_decomposed_text_as_long_as_it_is_stored(
    token_client: APIClient, field: str, limit: int
) -> None:
    over = token_client.post(
        API,
        {"file": SimpleUploadedFile("pear.jpg", corpus.jpeg()), field: accented(limit + 1)},
        format="multipart",
    )
    assert over.status_code == 400
    assert over.json() == {field: [f"Ensure this field has no more than {limit} characters."]}
    assert not Image.objects.exists()

    response = token_client.post(
        API,
        {"file": SimpleUploadedFile("pear.jpg", corpus.jpeg()), field: accented(limit)},
        format="multipart",
    )

    assert response.status_code == 201, response.json()
    assert getattr(Image.objects.get(), field) == "\u00e9" * limit


@pytest.mark.parametrize(("field", "limit"), LIMITS)
def test_an_upload_in_the_admin_counts_a_decomposed_text_as_long_as_it_is_stored(
    admin_client: Client, field: str, limit: int
) -> None:
    over = admin_client.post(
        ADMIN_UPLOAD,
        {
            "files": [SimpleUploadedFile("pear.jpg", corpus.jpeg())],
            "preset": "web",
            field: accented(limit + 1),
        },
    )
    assert over.status_code == 400
    assert over.context["form"].errors == {
        field: [f"Ensure this value has at most {limit} characters (it has {limit + 1})."]
    }
    assert not Image.objects.exists()

    response = admin_client.post(
        ADMIN_UPLOAD,
        {"files": [SimpleUploadedFile("pear.jpg", corpus.jpeg())], "preset": "web", field: accented(limit)},
    )

    assert response.status_code == 302
    assert getattr(Image.objects.get(), field) == "\u00e9" * limit


@pytest.mark.parametrize(("field", "limit"), LIMITS)
def test_a_change_in_the_admin_counts_a_decomposed_text_as_long_as_it_is_stored(
    admin_client: Client, field: str, limit: int
) -> None:
    image = ImageFactory(title="Pears", alt="Ripe pears", processed=False)
    address = f"/admin/uploads/image/{image.pk}/change/"
    form = change_form(admin_client, image)

    over = admin_client.post(address, {**form, field: accented(limit + 1)})
    assert over.status_code == 200
    assert over.context["adminform"].form.errors == {
        field: [f"Ensure this value has at most {limit} characters (it has {limit + 1})."]
    }
    image.refresh_from_db()
    assert (image.title, image.alt) == ("Pears", "Ripe pears")

    response = admin_client.post(address, {**form, field: accented(limit)})

    assert response.status_code == 302, response.context["adminform"].form.errors
    image.refresh_from_db()
    assert getattr(image, field) == "\u00e9" * limit
