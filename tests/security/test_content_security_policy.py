"""The Content-Security-Policy of each kind of answer: strict on pages (no
inline script, nothing from elsewhere but the media's origin), the same on
the admin and the API docs, one inline handler's hash on the admin's export
page, nothing at all for JSON; report-only, extra image sources and a report
URI from the environment."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured
from django.test import Client

from tests.factories import PersonFactory, ProductFactory

pytestmark = pytest.mark.django_db

PAGE_DIRECTIVES = {
    "default-src": "'self'",
    "img-src": "'self' data:",
    "style-src": "'self'",
    "style-src-attr": "'unsafe-inline'",
    "script-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'self'",
    "frame-ancestors": "'none'",
    "form-action": "'self'",
}
EXPORT_TOGGLE_HASH = "'sha256-wid4zL8fR53ZYy1ljOepzR77Dn6vWUUxuNnnWWBP3I8='"


def directives(header: str) -> dict[str, str]:
    parts = [part.strip().split(" ", 1) for part in header.split(";")]
    assert all(len(part) == 2 for part in parts), header
    return {part[0]: part[1] for part in parts}


@pytest.fixture
def staff() -> Client:
    client = Client()
    client.force_login(get_user_model().objects.create_superuser("boss", "boss@example.com", "pw"))
    return client


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/people/",
        "/people/ada/",
        "/catalog/",
        "/catalog/{product}/",
        "/reviews/",
        "/reviews/new/",
        "/nowhere/",
        "/api/docs/",
        "/api/v1/products/?format=api",
    ],
)
def test_public_pages_and_the_api_docs_have_the_strict_policy(client: Client, path: str) -> None:
    PersonFactory.create(username="ada")
    product = ProductFactory.create()
    response = client.get(path.format(product=product.pk))

    assert response["Content-Type"].startswith("text/html")
    assert directives(response["Content-Security-Policy"]) == PAGE_DIRECTIVES
    assert "Content-Security-Policy-Report-Only" not in response


@pytest.mark.parametrize(
    "path",
    [
        "/admin/",
        "/admin/catalog/person/",
        "/admin/catalog/person/add/",
        "/admin/catalog/person/import/",
        "/admin/uploads/image/upload/",
        "/admin/login/",
    ],
)
def test_admin_pages_have_the_strict_policy(staff: Client, path: str) -> None:
    response = staff.get(path)

    assert response.status_code in (200, 302)
    assert directives(response["Content-Security-Policy"]) == PAGE_DIRECTIVES


@pytest.mark.parametrize("path", ["/admin/catalog/person/export/", "/admin/catalog/feedback/export/"])
def test_the_export_page_allows_its_select_all_handler_by_hash_alone(staff: Client, path: str) -> None:
    response = staff.get(path)

    assert response.status_code == 200
    policy = directives(response["Content-Security-Policy"])
    assert policy["script-src"] == f"'self' 'unsafe-hashes' {EXPORT_TOGGLE_HASH}"
    assert {k: v for k, v in policy.items() if k != "script-src"} == {
        k: v for k, v in PAGE_DIRECTIVES.items() if k != "script-src"
    }
    # The hash is that handler's: the page still has it, byte for byte.
    assert 'onchange="onSelectToggleChange(event)"' in response.content.decode()


def test_the_api_docs_start_up_script_is_a_file_of_the_site(client: Client) -> None:
    html = client.get("/api/docs/").content.decode()

    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), "an inline script"
    assert "<style" not in html


@pytest.mark.parametrize(
    "path", ["/api/v1/products/", "/api/v1/", "/api/schema/?format=json", "/nowhere.json"]
)
def test_json_answers_allow_nothing(client: Client, path: str) -> None:
    response = client.get(path, HTTP_ACCEPT="application/json")

    if path != "/nowhere.json":
        assert response.status_code == 200
    assert response["Content-Type"].split(";")[0] in ("application/json", "application/vnd.oai.openapi+json")
    assert response["Content-Security-Policy"] == "default-src 'none'; frame-ancestors 'none'"


def test_report_only_mode_reports_the_same_policy_without_enforcing_it(client: Client, settings: Any) -> None:
    settings.CSP_REPORT_ONLY = True

    page = client.get("/")
    api = client.get("/api/v1/products/", HTTP_ACCEPT="application/json")

    assert "Content-Security-Policy" not in page
    assert directives(page["Content-Security-Policy-Report-Only"]) == PAGE_DIRECTIVES
    assert api["Content-Security-Policy-Report-Only"] == "default-src 'none'; frame-ancestors 'none'"


def test_a_report_uri_is_named_in_every_policy(client: Client, settings: Any) -> None:
    settings.CSP_REPORT_URI = "https://csp.example.com/report"

    page = client.get("/")
    api = client.get("/api/v1/products/", HTTP_ACCEPT="application/json")

    assert directives(page["Content-Security-Policy"])["report-uri"] == "https://csp.example.com/report"
    assert api["Content-Security-Policy"].endswith("; report-uri https://csp.example.com/report")


def test_configured_image_sources_join_the_media_origin(client: Client, settings: Any) -> None:
    settings.MEDIA_URL = "https://cdn.example.com/media/"
    settings.CSP_IMG_SOURCES = ["https://images.example.net", "*.static.example.org"]

    policy = directives(client.get("/")["Content-Security-Policy"])

    assert policy["img-src"] == (
        "'self' data: https://cdn.example.com https://images.example.net *.static.example.org"
    )
    assert policy["script-src"] == "'self'"


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("CSP_IMG_SOURCES", ["*"]),
        ("CSP_IMG_SOURCES", ["https:"]),
        ("CSP_IMG_SOURCES", ["cdn.example.com; script-src *"]),
        ("CSP_IMG_SOURCES", ["'unsafe-inline'"]),
        ("CSP_REPORT_URI", "https://csp.example.com/r; script-src *"),
        ("CSP_REPORT_URI", "javascript:alert(1)"),
        # A line break left at the end (a value read from a file) would end the header.
        ("CSP_IMG_SOURCES", ["https://cdn.example.com\n"]),
        ("CSP_REPORT_URI", "/csp-report\n"),
    ],
)
def test_a_setting_that_would_widen_or_break_the_policy_stops_the_start(
    client: Client, settings: Any, setting: str, value: Any
) -> None:
    setattr(settings, setting, value)

    with pytest.raises(ImproperlyConfigured, match=setting.replace("CSP_", "PORTAL_CSP_")):
        client.get("/")
