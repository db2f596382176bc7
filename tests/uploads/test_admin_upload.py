"""The image admin's upload page for staff who may add images but not see
them: it leads them only where they may go."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from tests.factories import logged_in, staff_with
from tests.uploads import corpus
from uploads.models import Image

pytestmark = pytest.mark.django_db

UPLOAD = "/admin/uploads/image/upload/"
IMAGES = "/admin/uploads/image/"


def upload(client: Client, commit: Any) -> Any:
    with commit():
        return client.post(UPLOAD, {"files": [SimpleUploadedFile("a.jpg", corpus.jpeg())], "preset": "web"})


def test_staff_who_may_only_add_images_land_on_the_admin_index_after_an_upload(commit: Any) -> None:
    client = logged_in(staff_with("uploads", "add_image", username="uploader"))
    response = upload(client, commit)
    assert response.status_code == 302
    assert response["Location"] == "/admin/"
    landing = client.get(response["Location"])
    assert landing.status_code == 200
    assert "1 image(s) uploaded" in landing.content.decode()
    assert Image.objects.count() == 1


def test_the_upload_page_links_nowhere_they_may_not_go() -> None:
    client = logged_in(staff_with("uploads", "add_image", username="uploader"))
    page = client.get(UPLOAD).content.decode()
    assert client.get(IMAGES).status_code == 403
    assert f'href="{IMAGES}"' not in page
    assert "data-changelist-url" not in page
    assert "data-change-url" not in page


def test_staff_who_may_see_images_go_back_to_the_list(commit: Any) -> None:
    client = logged_in(staff_with("uploads", "add_image", "view_image", username="uploader"))
    page = client.get(UPLOAD).content.decode()
    assert f'data-changelist-url="{IMAGES}"' in page
    assert f'href="{IMAGES}"' in page
    response = upload(client, commit)
    assert response["Location"] == IMAGES


def test_an_upload_of_an_empty_form_is_refused_saying_what_it_lacks() -> None:
    """A POST of no fields at all (no file, no preset) is refused as one of
    a preset without a file: on the page, each field saying what it needs.
    The form was read as never sent, and the 400 said nothing."""
    client = logged_in(staff_with("uploads", "add_image", username="uploader"))

    response = client.post(UPLOAD, {})

    assert response.status_code == 400
    errors = response.context["form"].errors
    assert errors["files"] == ["This field is required."]
    assert errors["preset"] == ["This field is required."]
    assert 'class="errorlist' in response.content.decode()
    assert not Image.objects.exists()


def test_the_upload_form_is_laid_out_as_the_admin_lays_out_a_form() -> None:
    """Each field's label in the column of labels beside its box, as on every
    change form (with the admin's form styles, which the page did not load),
    and its help where the box's aria-describedby says it is: the page named
    an id no element had, so a screen reader read no help."""
    client = logged_in(staff_with("uploads", "add_image", username="uploader"))
    page = client.get(UPLOAD).content.decode()
    assert re.search(r'<link rel="stylesheet" href="[^"]*/admin/css/forms\.css"', page), "no form styles"
    form = page[page.index('id="image-upload-form"') :]
    form = form[: form.index("</form>")]

    for name in ("files", "preset", "title", "alt"):
        assert re.search(rf'<div class="flex-container">\s*<label for="id_{name}"', form), name
    described = re.findall(r'aria-describedby="([^"]+)"', form)
    assert described, "no field is described by its help"
    for ids in described:
        for named in ids.split():
            assert f'id="{named}"' in form, f"aria-describedby names {named}, which no element has"
    assert 'id="id_files_helptext"' in form
