"""The course's web-service contract, as its clients use it."""

from __future__ import annotations

import datetime as dt
import functools
import json
from pathlib import Path
from typing import Any

import jsonschema
import jsonschema_rs
import pytest
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from catalog import formats, services
from catalog.models import Feedback, Product
from tests.catalog.weights import TOO_HEAVY, WEIGHTS
from tests.factories import UserFactory, api_key
from tests.uploads import corpus
from uploads.models import Image

pytestmark = pytest.mark.django_db

REVIEW = {"title": "Great service", "name": "John", "date": "2017-12-21", "feedback": "Very good."}


@pytest.mark.parametrize("url", ["/feedback/", "/feedback"])
@pytest.mark.parametrize("as_json", [True, False], ids=["json", "form"])
def test_feedback_is_created_from_json_or_form_with_or_without_slash(
    client: Client, url: str, as_json: bool
) -> None:
    if as_json:
        response = client.post(url, REVIEW, content_type="application/json")
    else:
        response = client.post(url, REVIEW)
    assert response.status_code == 201
    body = response.json()
    assert body == {"id": body["id"], **REVIEW}
    review = Feedback.objects.get(pk=body["id"])
    assert (review.text, review.source, review.status) == ("Very good.", "api", "published")


def test_feedback_strings_are_trimmed_unknown_keys_ignored_and_blanks_allowed(client: Client) -> None:
    data = {"title": "  ", "name": " Ann ", "date": "2020-02-02", "feedback": "", "extra": "ignored"}
    response = client.post("/feedback/", data, content_type="application/json")
    assert response.status_code == 201
    assert response.json() == {
        "id": response.json()["id"],
        "title": "",
        "name": "Ann",
        "date": "2020-02-02",
        "feedback": "",
    }


@pytest.mark.parametrize("as_json", [True, False], ids=["json", "form"])
def test_every_feedback_field_is_trimmed_the_date_included(client: Client, as_json: bool) -> None:
    lines = {"title": "Great service\n", "name": " John\n", "date": "2017-12-21\n", "feedback": "Good.\n"}
    if as_json:
        response = client.post("/feedback/", lines, content_type="application/json")
    else:
        response = client.post("/feedback/", lines)
    assert response.status_code == 201, response.content
    body = response.json()
    assert body == {
        "id": body["id"],
        "title": "Great service",
        "name": "John",
        "date": "2017-12-21",
        "feedback": "Good.",
    }
    review = Feedback.objects.get(pk=body["id"])
    assert (review.title, review.name, review.date, review.text) == (
        "Great service",
        "John",
        dt.date(2017, 12, 21),
        "Good.",
    )


@pytest.mark.parametrize("date", ["2017-12-21 x", "2017-12-21\n2018-01-01", "\n"])
def test_a_date_with_more_than_whitespace_around_it_is_still_refused(client: Client, date: str) -> None:
    response = client.post("/feedback/", {**REVIEW, "date": date}, content_type="application/json")
    assert response.status_code == 400
    assert "date" in response.json()


def test_every_fruit_field_is_trimmed_the_weight_included(client: Client) -> None:
    lines = {"name": "Apple\n", "weight": "500 lbs\n", "description": " Red.\n", "image_name": "001.jpeg\n"}
    response = client.post("/fruits/", lines, content_type="application/json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body == {
        "id": body["id"],
        "name": "Apple",
        "weight": 500,
        "description": "Red.",
        "image_name": "001.jpeg",
    }
    product = Product.objects.get(pk=body["id"])
    assert (product.name, product.weight, product.image_name, product.image_stem) == (
        "Apple",
        500,
        "001.jpeg",
        "001",
    )


def test_feedback_from_multipart_works(client: Client) -> None:
    response = client.post("/feedback/", {**REVIEW, "attachment": SimpleUploadedFile("x.txt", b"x")})
    assert response.status_code == 201


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"date": "21/12/2017"}, "date"),
        ({"date": ""}, "date"),
        ({"title": "x" * 101}, "title"),
        ({"feedback": "x" * 5001}, "feedback"),
        # Refused by the model, which names it "text": told by the name it was sent as.
        ({"feedback": "Good \u202e.dab"}, "feedback"),
    ],
)
def test_bad_feedback_gets_400_with_drf_style_messages(
    client: Client, change: dict[str, str], field: str
) -> None:
    response = client.post("/feedback/", {**REVIEW, **change}, content_type="application/json")
    assert response.status_code == 400
    assert isinstance(response.json()[field], list)
    assert Feedback.objects.count() == 0


@pytest.mark.parametrize(
    ("content_type", "sent"), [("", "no Content-Type"), ("text/plain", "the content type 'text/plain'")]
)
def test_a_body_of_a_type_not_read_gets_415_naming_the_types_that_are(
    client: Client, content_type: str, sent: str
) -> None:
    """A script posting ``data=json.dumps(review)`` sends no content type:
    the answer says which would do, not only that this one does not."""
    response = client.generic("POST", "/feedback/", json.dumps(REVIEW).encode(), content_type=content_type)

    assert response.status_code == 415
    assert response.json() == {
        "detail": f"The body was sent with {sent}; send it as application/json, "
        "application/x-www-form-urlencoded or multipart/form-data."
    }
    assert not Feedback.objects.exists()


def test_an_upload_of_a_type_not_read_gets_415_naming_the_types_that_are(client: Client) -> None:
    response = client.post("/upload/", {"file": "aGVsbG8="}, content_type="application/json")

    assert response.status_code == 415
    assert response.json() == {
        "detail": "The body was sent with the content type 'application/json'; send it as "
        "multipart/form-data or application/x-www-form-urlencoded."
    }


def test_a_missing_date_gets_400(client: Client) -> None:
    data = {k: v for k, v in REVIEW.items() if k != "date"}
    response = client.post("/feedback/", data, content_type="application/json")
    assert response.json() == {"date": ["This field is required."]}


def test_broken_json_gets_400(client: Client) -> None:
    response = client.post("/feedback/", "{not json", content_type="application/json")
    assert response.status_code == 400
    assert "JSON parse error" in response.json()["detail"]


@pytest.mark.parametrize("url", ["/feedback/", "/api/v1/feedback/"])
def test_json_that_is_not_text_in_its_charset_gets_400_saying_so_not_in_the_codecs_words(
    client: Client, url: str
) -> None:
    body = json.dumps({**REVIEW, "name": "Zoë"}, ensure_ascii=False).encode()
    # generic(): the test client's post() would encode the body in the charset itself.
    response = client.generic("POST", url, body, content_type="application/json; charset=ascii")
    assert response.status_code == 400
    assert response.json() == {"detail": "JSON parse error - the body is not text in its charset 'ascii'."}
    assert not Feedback.objects.exists()


@pytest.mark.parametrize("url", ["/feedback/", "/api/v1/feedback/", "/fruits/"])
def test_json_nested_past_the_limit_gets_400_not_a_crash(client: Client, url: str) -> None:
    # Deep enough for the standard library's decoder to run out of stack.
    body = '{"date": "2024-01-01", "x": ' + "[" * 2000 + "]" * 2000 + "}"
    response = client.post(url, body, content_type="application/json")
    assert response.status_code == 400
    assert "the limit is 32" in response.json()["detail"]
    assert Feedback.objects.count() == 0


@pytest.mark.parametrize(("levels", "status"), [(32, 201), (33, 400)])
def test_nesting_up_to_the_limit_is_read(client: Client, levels: int, status: int) -> None:
    # The review itself is one level; a field the endpoint ignores holds the rest.
    body = json.dumps({**REVIEW, "extra": json.loads("[" * (levels - 1) + "]" * (levels - 1))})
    response = client.post("/feedback/", body, content_type="application/json")
    assert response.status_code == status, response.content


def test_get_feedback_lists_published_reviews_as_json(client: Client) -> None:
    client.post("/feedback/", REVIEW, content_type="application/json")
    Feedback.objects.create(title="Hidden", name="x", date=dt.date(2020, 1, 1), status="hidden")
    response = client.get("/feedback/")
    assert response.status_code == 200
    [listed] = response.json()
    assert listed == {"id": listed["id"], **REVIEW}  # as the post answered it


@pytest.mark.parametrize(
    ("url", "page"),
    [
        ("/feedback/", "/reviews/"),
        ("/feedback", "/reviews/"),
        ("/fruits/", "/catalog/"),
        ("/fruits", "/catalog/"),
        ("/upload/", "/catalog/"),
        ("/upload", "/catalog/"),
    ],
)
def test_a_browser_at_the_lab_urls_gets_the_public_pages(client: Client, url: str, page: str) -> None:
    html = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
    response = client.get(url, HTTP_ACCEPT=html, follow=True)
    assert response.redirect_chain == [(page, 302)]
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")


@functools.cache
def fruit_weight_schemas() -> tuple[dict[str, Any], dict[str, Any]]:
    """What the API's schema says ``/fruits/`` takes, and answers, as ``weight``."""
    schemas = Client().get("/api/schema/?format=json").json()["components"]["schemas"]
    return schemas["LabFruitRequest"]["properties"]["weight"], schemas["LabFruit"]["properties"]["weight"]


@pytest.mark.parametrize("weight", [500, "500", " 500 ", "500 lbs", "7 LB"])
def test_a_fruit_weight_may_be_a_number_or_a_numeric_string(client: Client, weight: object) -> None:
    data = {"name": "Apple", "weight": weight, "description": "Red.", "image_name": "001.jpeg"}
    response = client.post("/fruits/", data, content_type="application/json")
    assert response.status_code == 201
    taken, answered = fruit_weight_schemas()
    jsonschema.validate(weight, taken)  # the schema says so too
    jsonschema.validate(response.json()["weight"], answered)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(str(response.json()["weight"]), answered)  # always a number back
    assert response.json() == {
        "id": response.json()["id"],
        "name": "Apple",
        "weight": int(str(weight).split()[0]),
        "description": "Red.",
        "image_name": "001.jpeg",
    }


@pytest.mark.parametrize("weight", ["heavy", "", 0, -5, "1.5", None])
def test_a_bad_fruit_weight_gets_400(client: Client, weight: object) -> None:
    data = {"name": "Apple", "weight": weight, "description": "Red.", "image_name": "001.jpeg"}
    response = client.post("/fruits/", data, content_type="application/json")
    assert response.status_code == 400
    assert "weight" in response.json()
    assert Product.objects.count() == 0
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(weight, fruit_weight_schemas()[0])


@pytest.mark.parametrize(("weight", "expected"), [*WEIGHTS, (TOO_HEAVY, None)])
def test_a_fruit_weight_is_read_as_a_supplier_description_reads_it(
    client: Client, weight: str, expected: int | None
) -> None:
    data = {"name": "Apple", "weight": weight, "description": "Red.", "image_name": "001.jpeg"}
    response = client.post("/fruits/", data, content_type="application/json")
    if expected is None:
        assert response.status_code == 400, response.content
        assert "weight" in response.json()
        assert not Product.objects.exists()
    else:
        assert response.status_code == 201, response.content
        assert Product.objects.get().weight == expected


@pytest.mark.parametrize("request_schema", ["LabFruitRequest", "ProductRequest", "PatchedProductRequest"])
def test_the_schema_takes_the_weights_the_server_takes(client: Client, request_schema: str) -> None:
    """Checked in the schema's own dialect (ECMA-262, where \\d and \\s differ
    from Python's): a client validating a body against it sends every weight
    the server reads, and only those."""
    schemas = client.get("/api/schema/?format=json").json()["components"]["schemas"]
    weight = schemas[request_schema]["properties"]["weight"]
    validator = jsonschema_rs.validator_for(weight)
    taken = {value: validator.is_valid(value) for value, _ in WEIGHTS}
    assert taken == {value: expected is not None for value, expected in WEIGHTS}
    assert validator.is_valid(formats.WEIGHT_MAX)
    assert not validator.is_valid(formats.WEIGHT_MAX + 1)
    assert f"{formats.WEIGHT_MAX:,}" in weight["description"]


def test_posting_the_same_fruit_twice_updates_rather_than_duplicates(client: Client) -> None:
    data = {"name": "Apple", "weight": "500", "description": "Red.", "image_name": "001.jpeg"}
    first = client.post("/fruits", data).json()
    second = client.post("/fruits", {**data, "weight": "550"}).json()
    assert first["id"] == second["id"]
    assert Product.objects.get().weight == 550


def test_get_fruits_lists_products(client: Client) -> None:
    fruit = {"name": "Kiwi", "weight": 250, "description": "Fuzzy.", "image_name": "003.jpeg"}
    created = client.post("/fruits/", fruit, content_type="application/json").json()
    assert client.get("/fruits").json() == [{"id": created["id"], **fruit}]


@pytest.fixture
def list_limit(monkeypatch: pytest.MonkeyPatch) -> int:
    """The course's lists cut short at 3 instead of 1,000, to stay quick."""
    monkeypatch.setattr("catalog.lab.LIST_LIMIT", 3)
    return 3


def test_a_feedback_list_past_the_limit_has_the_newest_and_says_where_the_rest_are(
    client: Client, list_limit: int
) -> None:
    for day in range(1, 6):
        client.post("/feedback/", {**REVIEW, "date": f"2024-01-0{day}"}, content_type="application/json")
    response = client.get("/feedback/")
    assert [r["date"] for r in response.json()] == ["2024-01-05", "2024-01-04", "2024-01-03"]
    assert response["X-Total-Count"] == "5"
    url, rel = response["Link"].split("; ")
    assert rel == 'rel="alternate"'
    assert url == "<http://testserver/api/v1/feedback/cursor/?status=published>"
    walked = client.get(url.strip("<>")).json()["results"]
    assert [r["date"] for r in walked] == [f"2024-01-0{day}" for day in range(5, 0, -1)]


def test_the_list_a_cut_feedback_list_points_at_holds_what_it_counts_for_a_moderator_too(
    client: Client, token_client: Any, list_limit: int
) -> None:
    for day in range(1, 6):
        client.post("/feedback/", {**REVIEW, "date": f"2024-01-0{day}"}, content_type="application/json")
    hidden = Feedback.objects.create(title="Spam", date=dt.date(2024, 1, 9), status=Feedback.Status.HIDDEN)
    # A token that may moderate reviews sees hidden ones in the API's lists.
    response = token_client.get("/feedback/")
    assert hidden.pk not in {r["id"] for r in response.json()}
    walked = token_client.get(response["Link"].split(";")[0].strip("<>")).json()["results"]
    assert len(walked) == int(response["X-Total-Count"]) == 5
    assert hidden.pk not in {r["id"] for r in walked}


def test_a_fruit_list_past_the_limit_has_the_newest_in_the_order_they_were_added(
    client: Client, list_limit: int
) -> None:
    posted = [
        client.post("/fruits/", {**FRUIT, "name": f"Fruit {n}", "image_name": f"{n:03}.jpeg"}).json()["id"]
        for n in range(5)
    ]
    response = client.get("/fruits/")
    assert [f["id"] for f in response.json()] == posted[2:]
    assert response["X-Total-Count"] == "5"
    assert response["Link"] == '<http://testserver/api/v1/products/?on_display=true>; rel="alternate"'
    assert client.get("/api/v1/products/?on_display=true").json()["count"] == 5


def test_the_list_a_cut_fruit_list_points_at_holds_what_it_counts_and_no_demo_product(
    client: Client, list_limit: int
) -> None:
    demo = Product.objects.create(name="Demo pear", weight=1, image_name="pear.jpeg", is_demo=True)
    for n in range(5):
        client.post("/fruits/", {**FRUIT, "name": f"Fruit {n}", "image_name": f"{n:03}.jpeg"})
    response = client.get("/fruits/")
    url = response["Link"].split(";")[0].strip("<>")
    walked = client.get(url).json()
    assert walked["count"] == int(response["X-Total-Count"]) == 5
    assert demo.pk not in {p["id"] for p in walked["results"]}
    # The API's whole list has the demo product too; the filter's other side, it alone.
    assert client.get("/api/v1/products/").json()["count"] == 6
    assert [p["id"] for p in client.get("/api/v1/products/?on_display=false").json()["results"]] == [demo.pk]


def test_a_list_within_the_limit_has_no_paging_headers(client: Client, list_limit: int) -> None:
    for n in range(3):
        client.post("/fruits/", {**FRUIT, "name": f"Fruit {n}", "image_name": f"{n:03}.jpeg"})
        client.post("/feedback/", {**REVIEW, "name": f"Reviewer {n}"}, content_type="application/json")
    for url in ("/feedback/", "/fruits/"):
        response = client.get(url)
        assert len(response.json()) == 3
        assert not response.has_header("X-Total-Count")
        assert not response.has_header("Link")


def test_an_upload_is_stored_with_the_supplier_preset_and_linked(
    client: Client, django_capture_on_commit_callbacks: Any
) -> None:
    client.post(
        "/fruits/",
        {"name": "Apple", "weight": 500, "image_name": "001.jpeg"},
        content_type="application/json",
    )
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/upload/", {"file": SimpleUploadedFile("001.jpeg", corpus.photo_jpeg(1200, 800))}
        )
    assert response.status_code == 201
    image = Image.objects.get(pk=response.json()["id"])
    assert (image.preset, image.status) == ("supplier", "ready")
    assert list(image.renditions.values_list("format", "width", "height")) == [("jpeg", 600, 400)]
    assert Product.objects.get().image == image


def test_a_description_arriving_after_its_image_links_by_stem(
    client: Client, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/upload", {"file": SimpleUploadedFile("007.tiff", corpus.supplier_tiff((300, 200)))})
    response = client.post("/fruits/", {"name": "Mango", "weight": 300, "image_name": "007.jpeg"})
    product = Product.objects.get(pk=response.json()["id"])
    assert product.image is not None
    assert product.image.original_name == "007.tiff"


@pytest.mark.parametrize("image_first", [True, False], ids=["image-first", "description-first"])
def test_an_upload_named_with_spaces_around_it_links_to_its_product(
    client: Client, django_capture_on_commit_callbacks: Any, image_first: bool
) -> None:
    def upload() -> Any:
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(
                "/upload/", {"file": SimpleUploadedFile(" 006.png ", corpus.photo_jpeg(300, 200))}
            )

    fruit = {"name": "Pear", "weight": 3, "image_name": " 006.png "}
    if image_first:
        uploaded = upload()
        client.post("/fruits/", fruit, content_type="application/json")
    else:
        client.post("/fruits/", fruit, content_type="application/json")
        uploaded = upload()
    assert uploaded.status_code == 201
    assert uploaded.json()["file"] == " 006.png "  # the name as sent
    product = Product.objects.get()
    assert product.image_name == "006.png"
    assert product.image is not None
    assert product.image.pk == uploaded.json()["id"]


def test_an_upload_without_a_file_gets_400(client: Client) -> None:
    response = client.post("/upload/", {})
    assert response.status_code == 400
    assert response.json() == {"file": ["No file was submitted."]}


def test_an_upload_that_is_not_an_image_gets_400(client: Client) -> None:
    response = client.post("/upload/", {"file": SimpleUploadedFile("LICENSE", b"Apache License")})
    assert response.status_code == 400
    assert "file" in response.json()
    assert Image.objects.count() == 0


def test_lab_endpoints_need_no_csrf_token() -> None:
    client = Client(enforce_csrf_checks=True)
    assert client.post("/feedback/", REVIEW).status_code == 201


OUTSIDE = "203.0.113.5"  # an address on the internet, outside every default network
FRUIT = {"name": "Banana", "weight": "500", "description": "Ripe.", "image_name": "010.jpeg"}


def test_from_outside_the_lab_networks_the_catalog_takes_no_anonymous_writes(client: Client) -> None:
    Product.objects.create(name="Banana", weight=5, description="The real text.", image_name="010.jpeg")
    refused = client.post("/fruits/", FRUIT, content_type="application/json", REMOTE_ADDR=OUTSIDE)
    assert refused.status_code == 401  # credentials would do
    assert refused["WWW-Authenticate"] == "Token"
    detail = refused.json()["detail"]
    assert "PORTAL_LAB_WRITE_NETWORKS" in detail
    assert "catalog.change_product" in detail
    assert Product.objects.get().description == "The real text."
    upload = SimpleUploadedFile("010.png", corpus.png(corpus.quadrants(40, 30)))
    assert client.post("/upload/", {"file": upload}, REMOTE_ADDR=OUTSIDE).status_code == 401
    assert not Image.objects.exists()
    # Reads, and reviews (open to anyone, as through the public form), still work.
    assert client.get("/fruits/", REMOTE_ADDR=OUTSIDE).status_code == 200
    assert client.post("/feedback/", REVIEW, REMOTE_ADDR=OUTSIDE).status_code == 201


def test_a_refused_anonymous_write_names_the_setting_but_not_the_networks_it_holds(
    client: Client, settings: Any
) -> None:
    # Where the suppliers' scripts run is the operator's to know, not anyone's on the internet.
    settings.LAB_WRITE_NETWORKS = ["198.51.100.7/32", "10.20.30.0/24"]
    upload = SimpleUploadedFile("010.png", corpus.png(corpus.quadrants(40, 30)))
    for refused in (
        client.post("/fruits/", FRUIT, content_type="application/json", REMOTE_ADDR=OUTSIDE),
        client.post("/upload/", {"file": upload}, REMOTE_ADDR=OUTSIDE),
    ):
        assert refused.status_code == 401
        detail = refused.json()["detail"]
        assert "PORTAL_LAB_WRITE_NETWORKS" in detail
        assert "198.51.100.7" not in detail
        assert "10.20.30.0" not in detail


def test_from_outside_a_token_without_the_permissions_is_told_which_its_user_lacks(client: Client) -> None:
    user = UserFactory(username="reader")
    user.user_permissions.set(Permission.objects.filter(codename="add_product"))
    key = api_key(user)
    refused = client.post(
        "/fruits/",
        FRUIT,
        content_type="application/json",
        REMOTE_ADDR=OUTSIDE,
        HTTP_AUTHORIZATION=f"Token {key}",
    )
    assert refused.status_code == 403  # credentials sent, and taken
    detail = refused.json()["detail"]
    assert not detail.startswith("Without credentials"), detail
    # The one it lacks, not the one it has.
    assert detail.endswith("user 'reader' lacks catalog.change_product."), detail
    assert not Product.objects.exists()


def test_from_outside_a_token_with_the_permissions_may_write(token_client: Any, commit: Any) -> None:
    written = token_client.post("/fruits/", FRUIT, format="json", REMOTE_ADDR=OUTSIDE)
    assert written.status_code == 201, written.content
    upload = SimpleUploadedFile("010.jpeg", corpus.photo_jpeg(300, 200))
    with commit():
        uploaded = token_client.post("/upload/", {"file": upload}, format="multipart", REMOTE_ADDR=OUTSIDE)
    assert uploaded.status_code == 201
    assert Product.objects.get().image == Image.objects.get()


def test_behind_a_proxy_not_counted_as_trusted_the_proxys_address_grants_no_writes(
    client: Client, settings: Any
) -> None:
    """nginx in the private network in front of gunicorn, PORTAL_TRUSTED_PROXY_COUNT
    left at 0: every request comes from the proxy's address, which is in the
    lab networks; the client on the internet behind it must not write."""
    proxy = "10.0.0.2"
    upload = SimpleUploadedFile("010.png", corpus.png(corpus.quadrants(40, 30)))
    through = {"REMOTE_ADDR": proxy, "HTTP_X_FORWARDED_FOR": OUTSIDE}
    for refused in (
        client.post("/fruits/", FRUIT, content_type="application/json", **through),
        client.post("/upload/", {"file": upload}, **through),
    ):
        assert refused.status_code == 401
        detail = refused.json()["detail"]
        assert "PORTAL_TRUSTED_PROXY_COUNT" in detail
    assert not Product.objects.exists()
    assert not Image.objects.exists()
    # Counted as trusted, the proxy names the client: one in the office writes.
    settings.TRUSTED_PROXY_COUNT = 1
    assert client.post("/fruits/", FRUIT, content_type="application/json", **through).status_code == 401
    office = {"REMOTE_ADDR": proxy, "HTTP_X_FORWARDED_FOR": "192.168.1.20"}
    assert client.post("/fruits/", FRUIT, content_type="application/json", **office).status_code == 201
    # A script on the proxy's own network, straight to gunicorn, still writes.
    settings.TRUSTED_PROXY_COUNT = 0
    direct = client.post(
        "/fruits/", {**FRUIT, "image_name": "011.jpeg"}, content_type="application/json", REMOTE_ADDR=proxy
    )
    assert direct.status_code == 201


def test_the_lab_networks_are_a_setting(client: Client, settings: Any) -> None:
    settings.LAB_WRITE_NETWORKS = ["203.0.113.0/24"]
    assert (
        client.post("/fruits/", FRUIT, content_type="application/json", REMOTE_ADDR=OUTSIDE).status_code
        == 201
    )
    loopback = client.post("/fruits/", FRUIT, content_type="application/json")
    assert loopback.status_code == 401  # loopback no more


@pytest.mark.parametrize("number", [2**64, -(2**63) - 1, 10**30])
def test_an_integer_past_64_bits_is_kept_whole(client: Client, number: int) -> None:
    body = json.dumps({**REVIEW, "title": number})
    response = client.post("/feedback/", body, content_type="application/json")
    assert response.status_code == 201, response.content
    assert Feedback.objects.get().title == str(number)


def test_a_review_posted_again_is_answered_with_the_one_held_not_written_twice(client: Client) -> None:
    """A lab script run again over its folder (after one file failed, say)
    posts every review a second time: each is held once."""
    first = client.post("/feedback/", REVIEW, content_type="application/json")
    again = client.post("/feedback", {**REVIEW, "title": " Great service\n"})
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json()
    assert Feedback.objects.count() == 1


def test_a_review_posted_with_other_line_breaks_is_the_review_held(client: Client) -> None:
    client.post("/feedback/", {**REVIEW, "feedback": "Good.\nCame back."}, content_type="application/json")
    again = client.post("/feedback/", {**REVIEW, "feedback": "Good.\r\nCame back.\r\n"})
    assert again.status_code == 201
    assert Feedback.objects.get().pk == again.json()["id"]


def test_a_review_the_import_holds_is_not_posted_again(client: Client, tmp_path: Path) -> None:
    (tmp_path / "001.txt").write_text("Great service\nJohn\n2017-12-21\nVery good.")
    assert services.feedback_import_files([tmp_path / "001.txt"]).created == 1
    response = client.post("/feedback/", REVIEW, content_type="application/json")
    assert response.status_code == 201
    assert Feedback.objects.get().pk == response.json()["id"]


def test_a_review_held_only_as_a_demo_one_is_posted_as_a_real_review(client: Client) -> None:
    """``seed_demo --remove`` deletes the demo reviews: a post answered with
    one would be lost with them."""
    demo = services.feedback_submit(
        title="Great service", name="John", date=dt.date(2017, 12, 21), text="Very good.", is_demo=True
    )
    first = client.post("/feedback/", REVIEW, content_type="application/json")
    again = client.post("/feedback/", REVIEW, content_type="application/json")
    assert (first.status_code, again.status_code) == (201, 201)
    real = Feedback.objects.get(is_demo=False)
    assert first.json()["id"] == again.json()["id"] == real.pk != demo.pk
    assert real.fingerprint == demo.fingerprint


def test_reviews_differing_in_any_field_are_each_held(client: Client) -> None:
    client.post("/feedback/", REVIEW, content_type="application/json")
    for changed in ({"title": "Great"}, {"name": "Jon"}, {"date": "2017-12-22"}, {"feedback": "Good."}):
        assert (
            client.post("/feedback/", {**REVIEW, **changed}, content_type="application/json").status_code
            == 201
        )
    assert Feedback.objects.count() == 5


BOM = "\ufeff"


# What ``requests.post(url, data=...)`` sends for the lines of a review file
# saved as Latin-1 and read as bytes: "Café" is 43 61 66 E9, no UTF-8.
LATIN_1_FORM = "application/x-www-form-urlencoded"


@pytest.mark.parametrize(
    "body",
    [
        b"title=Caf%E9&name=Ann&date=2017-12-21&feedback=Good.",
        b"title=Great&name=Ann&date=2017-12-21&feedback=Tr%E8s+bon.",
    ],
    ids=["title", "feedback"],
)
def test_a_form_value_that_is_not_utf8_is_refused_naming_its_field(client: Client, body: bytes) -> None:
    response = client.post("/feedback/", body, content_type=LATIN_1_FORM)
    assert response.status_code == 400
    field = "title" if b"Caf" in body else "feedback"
    assert response.json() == {field: ["Not UTF-8 text; send the text as UTF-8."]}
    assert not Feedback.objects.exists()


def test_a_form_body_of_bytes_that_are_not_utf8_is_refused(client: Client) -> None:
    response = client.post("/fruits/", "name=Café&weight=5".encode("latin-1"), content_type=LATIN_1_FORM)
    assert response.status_code == 400
    assert "not UTF-8 text" in response.json()["detail"]
    assert not Product.objects.exists()


def test_a_replacement_character_sent_as_utf8_is_kept(client: Client) -> None:
    body = b"title=%EF%BF%BD&name=Ann&date=2017-12-21&feedback=Good."
    response = client.post("/feedback/", body, content_type=LATIN_1_FORM)
    assert response.status_code == 201
    assert response.json()["title"] == "\ufffd"


def test_a_form_in_latin1_that_says_so_is_read(client: Client) -> None:
    body = b"title=Caf%E9&name=Ann&date=2017-12-21&feedback=Good."
    response = client.post("/feedback/", body, content_type=f"{LATIN_1_FORM}; charset=latin-1")
    assert response.status_code == 201
    assert response.json()["title"] == "Café"


@pytest.mark.parametrize(
    ("charset", "reason"),
    [
        # Python has codecs of these names, of bytes to bytes or text to text,
        # or that cannot mark a byte they do not read.
        (
            "base64",
            "The form's charset 'base64' is no text encoding a form is read in; send the form as UTF-8.",
        ),
        (
            "rot13",
            "The form's charset 'rot13' is no text encoding a form is read in; send the form as UTF-8.",
        ),
        ("idna", "The form's charset 'idna' is no text encoding a form is read in; send the form as UTF-8."),
    ],
)
@pytest.mark.parametrize("url", ["/feedback/", "/api/v1/feedback/"])
def test_a_form_in_a_charset_that_reads_no_text_is_a_400_saying_so(
    client: Client, url: str, charset: str, reason: str
) -> None:
    body = b"title=Dr.xn--ab-&name=Ann&date=2017-12-21&feedback=Good"
    # generic(): the test client's post() would encode the body in the charset itself.
    response = client.generic("POST", url, body, content_type=f"{LATIN_1_FORM}; charset={charset}")
    assert response.status_code == 400
    assert response.json() == {"detail": reason}
    assert not Feedback.objects.exists()


@pytest.mark.parametrize("as_json", [True, False], ids=["json", "form"])
def test_the_byte_order_mark_a_windows_file_starts_with_is_no_part_of_a_review(
    client: Client, as_json: bool
) -> None:
    """A review file saved as UTF-8 by Notepad starts with a byte order mark,
    which ``open()`` keeps at the start of its first line, the title: it is
    not stored, as import_feedback reads the same file."""
    body = {**REVIEW, "title": f"{BOM}Great service\n"}
    response = (
        client.post("/feedback/", body, content_type="application/json")
        if as_json
        else client.post("/feedback/", body)
    )
    assert response.status_code == 201
    assert response.json()["title"] == "Great service"
    assert Feedback.objects.get().title == "Great service"


def test_a_review_posted_from_a_file_with_a_byte_order_mark_is_the_one_imported(
    client: Client, tmp_path: Path
) -> None:
    (tmp_path / "001.txt").write_bytes(f"{BOM}Great service\r\nJohn\r\n2017-12-21\r\nVery good.".encode())
    assert services.feedback_import_files([tmp_path / "001.txt"]).created == 1
    response = client.post(
        "/feedback/", {**REVIEW, "title": f"{BOM}Great service"}, content_type="application/json"
    )
    assert response.status_code == 201
    assert Feedback.objects.get().pk == response.json()["id"]


def test_the_byte_order_mark_a_windows_file_starts_with_is_no_part_of_a_fruit(client: Client) -> None:
    body = {**FRUIT, "name": f"{BOM}Apple\n", "image_name": "001.jpeg"}
    response = client.post("/fruits/", body, content_type="application/json")
    assert response.status_code == 201
    assert response.json()["name"] == "Apple"
    assert Product.objects.get().name == "Apple"


def test_a_fruit_name_of_a_byte_order_mark_alone_is_a_blank_name(client: Client) -> None:
    response = client.post("/fruits/", {**FRUIT, "name": BOM}, content_type="application/json")
    assert response.status_code == 400
    assert response.json() == {"name": ["This field may not be blank."]}


def _upload(client: Client, capture: Any, name: str, data: bytes) -> Any:
    with capture(execute=True):
        return client.post("/upload/", {"file": SimpleUploadedFile(name, data)})


def test_a_photo_uploaded_again_is_answered_with_the_image_held_not_stored_twice(
    client: Client, django_capture_on_commit_callbacks: Any
) -> None:
    """The image uploader run again over the same folder adds no image: the
    photo held under the name, with the same bytes, is the answer."""
    client.post("/fruits/", {"name": "Apple", "weight": 500, "image_name": "001.jpeg"})
    photo = corpus.photo_jpeg(600, 400)
    first = _upload(client, django_capture_on_commit_callbacks, "001.jpeg", photo)
    again = _upload(client, django_capture_on_commit_callbacks, "001.jpeg", photo)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == {**first.json(), "status": "ready"}
    assert Image.objects.count() == 1
    assert Product.objects.get().image_id == first.json()["id"]


def test_a_new_photo_under_a_name_held_is_a_new_image_linked_in_its_place(
    client: Client, django_capture_on_commit_callbacks: Any
) -> None:
    client.post("/fruits/", {"name": "Apple", "weight": 500, "image_name": "001.jpeg"})
    old, new = corpus.photo_jpeg(600, 400, seed=1), corpus.photo_jpeg(600, 400, seed=2)
    _upload(client, django_capture_on_commit_callbacks, "001.jpeg", old)
    replaced = _upload(client, django_capture_on_commit_callbacks, "001.jpeg", new).json()["id"]
    # The first photo again: the newest of its name is another, so it is the supplier's latest.
    back = _upload(client, django_capture_on_commit_callbacks, "001.jpeg", old).json()["id"]
    assert len({replaced, back}) == 2
    assert Image.objects.count() == 3
    assert Product.objects.get().image_id == back


def test_the_same_photo_under_another_name_is_an_image_of_its_own(
    client: Client, django_capture_on_commit_callbacks: Any
) -> None:
    photo = corpus.photo_jpeg(600, 400)
    first = _upload(client, django_capture_on_commit_callbacks, "001.jpeg", photo).json()["id"]
    other = _upload(client, django_capture_on_commit_callbacks, "002.jpeg", photo).json()["id"]
    assert first != other
    assert sorted(Image.objects.values_list("original_name", flat=True)) == ["001.jpeg", "002.jpeg"]


@pytest.mark.parametrize("since", ["failed", "processed with another preset"])
def test_a_photo_sent_again_once_its_image_changed_is_a_new_image(
    client: Client, django_capture_on_commit_callbacks: Any, since: str
) -> None:
    client.post("/fruits/", {"name": "Apple", "weight": 500, "image_name": "001.jpeg"})
    photo = corpus.photo_jpeg(600, 400)
    first = _upload(client, django_capture_on_commit_callbacks, "001.jpeg", photo).json()["id"]
    if since == "failed":
        Image.objects.filter(pk=first).update(status=Image.Status.FAILED)
    else:
        Image.objects.filter(pk=first).update(preset="web")
    again = _upload(client, django_capture_on_commit_callbacks, "001.jpeg", photo)
    assert again.status_code == 201
    assert again.json()["id"] != first
    assert Image.objects.count() == 2
    assert Product.objects.get().image_id == again.json()["id"]


BREAKS = "(tabs and the line breaks LF and CR are allowed)"
ON_TWO_LINES = "which breaks it into two lines on screen"


@pytest.mark.parametrize(
    ("field", "value", "refused"),
    [
        ("name", "App\x08le", "the control character U+0008."),
        ("name", "Apple\nPie", "the control character U+000A."),
        ("name", "Pear\u2028Ripe", f"the line separator U+2028, {ON_TWO_LINES}."),
        ("name", "Pear\u2029Ripe", f"the paragraph separator U+2029, {ON_TWO_LINES}."),
        # An upload's name loses them: the product would never link to its photo.
        ("image_name", "a\x1b.jpg", "the control character U+001B."),
        ("image_name", "a\u2028.jpg", f"the line separator U+2028, {ON_TWO_LINES}."),
        (
            "image_name",
            "a\u202egpj.jpg",
            "the direction control U+202E, which changes how it reads on screen.",
        ),
        ("description", "Ripe\x1b[8m, hidden.", f"the control character U+001B {BREAKS}."),
        ("description", "Ripe\x85.", f"the control character U+0085 {BREAKS}."),
        ("description", "Ripe\u2028.", f"the line separator U+2028 {BREAKS}."),
    ],
)
def test_a_fruit_whose_text_holds_a_control_character_is_refused_naming_it(
    client: Client, token_client: Any, field: str, value: str, refused: str
) -> None:
    fruit = {**FRUIT, field: value}
    reason = f"The text cannot contain {refused}"
    for response in (
        client.post("/fruits/", fruit, content_type="application/json"),
        token_client.post("/api/v1/products/", fruit, format="json"),
    ):
        assert response.status_code == 400
        assert response.json() == {field: [reason]}
    assert not Product.objects.exists()


def test_a_fruit_s_description_keeps_its_tabs_and_line_breaks(client: Client) -> None:
    fruit = {**FRUIT, "description": "Ripe:\n\tsweet,\n\tcrisp."}
    response = client.post("/fruits/", fruit, content_type="application/json")
    assert response.status_code == 201, response.json()
    assert Product.objects.get().description == "Ripe:\n\tsweet,\n\tcrisp."


@pytest.mark.parametrize("field", ["name", "description"])
def test_a_fruit_whose_text_holds_a_direction_control_is_refused_naming_it(
    client: Client, token_client: Any, field: str
) -> None:
    # "Apple \u202eegnaro" shows in the catalog and its report as "Apple orange".
    fruit = {**FRUIT, field: "Apple \u202eegnaro"}
    reason = "The text cannot contain the direction control U+202E, which changes how it reads on screen."
    response = client.post("/fruits/", fruit, content_type="application/json")
    assert response.status_code == 400
    assert response.json() == {field: [reason]}
    response = token_client.post("/api/v1/products/", fruit, format="json")
    assert response.status_code == 400
    assert response.json() == {field: [reason]}
    assert not Product.objects.exists()
