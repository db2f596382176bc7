"""On PostgreSQL, odd input is refused as the bad input it is, or finds
nothing, never a 500: a null character (PostgreSQL stores none in text and
cannot even compare text with one) is refused naming the field; a number no
column can hold finds no row; a page past the end is not found."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from catalog.models import Person, Product
from core.admin_counts import EstimatedCountPaginator
from tests.catalog.test_admin_feedback import (
    DRILL_DOWNS_AT_THE_CALENDAR_S_ENDS,
    NUMBERS_NO_COLUMN_HOLDS,
    _drill_down,
    reviews_at_the_calendar_s_ends,
)
from tests.factories import FeedbackFactory, ProductFactory, UserFactory
from tests.servers import PostgresServer
from tests.uploads import corpus
from uploads.models import Image

pytestmark = [pytest.mark.integration]


@pytest.fixture
def staff(postgres_database: PostgresServer) -> Client:
    client = Client()
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


PEOPLE = "name,username,phone,department,role,email,is_active\n"


@pytest.mark.parametrize(
    ("row", "error"),
    [
        # The key: the people stored would be looked up by it before the rows.
        (
            "Ada,ada\0,office: 1,Eng,Engineer,ada@example.com,1",
            "people.csv: holds a null character (character 60); save the file as UTF-8",
        ),
        (
            "Ada\0,ada,office: 1,Eng,Engineer,ada@example.com,1",
            "people.csv: holds a null character (character 56); save the file as UTF-8",
        ),
    ],
    ids=["key", "name"],
)
def test_an_import_of_people_with_a_null_character_is_refused_whole_saying_where(
    staff: Client, row: str, error: str
) -> None:
    page = staff.get("/admin/catalog/person/import/").content.decode()
    csv = re.search(r'<option value="(\d+)"[^>]*>csv</option>', page)
    assert csv
    upload = SimpleUploadedFile("people.csv", (PEOPLE + row + "\n").encode(), content_type="text/csv")

    response = staff.post("/admin/catalog/person/import/", {"format": csv.group(1), "import_file": upload})

    assert response.status_code == 400
    assert error in response.content.decode()  # refused as import_people refuses it, before any query
    assert not Person.objects.exists()


@NUMBERS_NO_COLUMN_HOLDS
def test_the_review_list_filtered_by_a_number_no_column_can_hold_lists_no_review(
    staff: Client, query: dict[str, str]
) -> None:
    FeedbackFactory(rating=4)

    response = staff.get("/admin/catalog/feedback/", query)

    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == []


@DRILL_DOWNS_AT_THE_CALENDAR_S_ENDS
def test_a_drill_down_at_the_calendar_s_ends_lists_its_reviews(
    staff: Client, monkeypatch: pytest.MonkeyPatch, query: dict[str, str], listed: set[str], links: list[str]
) -> None:
    reviews_at_the_calendar_s_ends()
    # Past one review, the list is counted by the planner's estimate of what it keeps (EXPLAIN).
    monkeypatch.setattr(EstimatedCountPaginator, "count_up_to", 1)

    response = staff.get("/admin/catalog/feedback/", query)

    assert response.status_code == 200
    changelist = response.context["cl"]
    assert {review.title for review in changelist.result_list} == listed
    counted = changelist.result_count
    assert counted == len(listed) or (changelist.paginator.estimated and counted > len(listed))
    assert _drill_down(response.content.decode()) == links


def test_the_search_for_a_product_to_link_answers_a_page_past_the_end_as_not_found(staff: Client) -> None:
    ProductFactory.create_batch(3)
    search = {"app_label": "catalog", "model_name": "feedback", "field_name": "product", "term": ""}

    assert len(staff.get("/admin/autocomplete/", search).json()["results"]) == 3
    assert staff.get("/admin/autocomplete/", {**search, "page": "2"}).status_code == 404


def test_a_file_name_longer_in_one_unicode_form_is_stored_and_linked(
    postgres_database: PostgresServer, django_capture_on_commit_callbacks: Any
) -> None:
    # NFC writes Devanagari "क़" (U+0958) as two characters: the stem of a
    # name of 255 is cut to its column, not refused by it as a server error.
    name = "\u0958" * 250 + ".jpeg"
    client = Client(raise_request_exception=False)

    fruit = client.post(
        "/fruits/", {"name": "Qila", "weight": 3, "image_name": name}, content_type="application/json"
    )
    with django_capture_on_commit_callbacks(execute=True):
        upload = client.post("/upload/", {"file": SimpleUploadedFile(name, corpus.photo_jpeg(120, 80))})

    assert (fruit.status_code, upload.status_code) == (201, 201)
    assert Product.objects.get().image == Image.objects.get()


@pytest.mark.parametrize(
    ("url", "body", "field"),
    [
        ("/fruits/", {"name": "Apple", "weight": "500", "description": "Ripe\0."}, "description"),
        ("/feedback/", {"title": "T\0", "name": "Ann", "date": "2020-01-01", "feedback": "Fine."}, "title"),
        ("/api/v1/people/", {"name": "Ada", "username": "ada\0"}, "username"),
        ("/api/v1/people/", {"name": "Ada\x07", "username": "ada"}, "name"),
    ],
    ids=["fruit", "review", "username", "bell"],
)
def test_a_control_character_in_a_posted_text_is_refused_naming_the_field(
    staff: Client, url: str, body: dict[str, str], field: str
) -> None:
    response = staff.post(url, body, content_type="application/json")

    assert response.status_code == 400
    assert field in response.json()
    assert not Person.objects.exists()
    assert not Product.objects.exists()
