"""The doors other than originals: proxies and lockouts, metrics, body
limits before parsing, CSRF on session writes, and plain answers when a
dependency is away."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.files.storage import storages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import OperationalError
from django.db.backends.utils import CursorWrapper
from django.test import Client, RequestFactory
from rest_framework.test import APIClient

from catalog.lab import LabThrottle
from catalog.models import Feedback, Product
from core.net import client_ip
from portal import health
from tests.factories import ProductFactory, UserFactory
from tests.uploads import corpus
from uploads import services
from uploads.models import Image

pytestmark = pytest.mark.django_db

PROXY = "10.0.0.1"
ROOT = Path(__file__).resolve().parent.parent.parent


@pytest.fixture
def boss(settings: Any) -> Any:
    settings.ADMIN_LOGIN_MAX_FAILURES = 3
    return get_user_model().objects.create_superuser("boss", "boss@example.com", "right-password-123")


def _login(client: Client, password: str, *, via: str | None = None, username: str = "boss") -> Any:
    extra = {"REMOTE_ADDR": PROXY, "HTTP_X_FORWARDED_FOR": via} if via else {}
    return client.post("/admin/login/", {"username": username, "password": password}, **extra)


# --- The documented proxy -----------------------------------------------------------

BROWSER = "198.51.100.7"
# What nginx puts for its variables when a browser at BROWSER, which sends no
# forwarding header of its own, asks for https://portal.example.com/.
NGINX_VALUES = {"$host": "portal.example.com", "$scheme": "https", "$proxy_add_x_forwarded_for": BROWSER}


def documented_proxy_headers() -> dict[str, str]:
    """The headers docs/deploy.md's nginx sets on the way to gunicorn, as WSGI sees them."""
    text = (ROOT / "docs" / "deploy.md").read_text()
    lines = re.findall(r"^\s*proxy_set_header\s+(\S+)\s+(\S+);", text, re.MULTILINE)
    return {"HTTP_" + name.upper().replace("-", "_"): NGINX_VALUES.get(value, value) for name, value in lines}


def test_pages_answer_through_the_documented_proxy_and_know_the_browsers_address(settings: Any) -> None:
    # DJANGO_HTTPS=true, DJANGO_ALLOWED_HOSTS=portal.example.com, PORTAL_TRUSTED_PROXY_COUNT=1.
    settings.ALLOWED_HOSTS = ["portal.example.com"]
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.TRUSTED_PROXY_COUNT = 1
    headers = {"REMOTE_ADDR": PROXY, **documented_proxy_headers()}
    response = Client().get("/", **headers)
    assert response.status_code == 200, response.get("Location")
    assert client_ip(RequestFactory().get("/", **headers)) == BROWSER


# --- Lockouts and throttles behind a proxy ------------------------------------------


def test_behind_a_proxy_one_attackers_failures_lock_out_only_the_attacker(settings: Any, boss: Any) -> None:
    settings.TRUSTED_PROXY_COUNT = 1
    attacker, admin = Client(), Client()
    for n in range(3):
        # The attacker forges the left part of the header; the proxy appends
        # the address it really saw.
        assert _login(attacker, "guess", via=f"203.0.113.{n}, 198.51.100.7").status_code == 200
    locked = _login(attacker, "right-password-123", via="203.0.113.20, 198.51.100.7")
    assert locked.status_code == 429
    assert 0 < int(locked["Retry-After"]) <= settings.ADMIN_LOGIN_LOCKOUT_SECONDS
    assert "Try again in 15 minutes" in locked.content.decode()
    # The administrator comes through the same proxy from another address.
    assert _login(admin, "right-password-123", via="203.0.113.20").status_code == 302


def test_the_lockout_is_per_account_so_a_spray_does_not_lock_others_out(settings: Any, boss: Any) -> None:
    client = Client()
    for _ in range(3):
        _login(client, "guess", username="someone-else")
    assert _login(client, "right-password-123").status_code == 302


@pytest.mark.parametrize("spelling", ["ｂｏｓｓ", "BOSS", " boss "], ids=["fullwidth", "upper", "spaced"])
def test_another_spelling_of_the_username_neither_escapes_nor_resets_the_lockout(
    boss: Any, spelling: str
) -> None:
    client = Client()
    for _ in range(3):
        assert _login(client, "guess", username=spelling).status_code == 200
    # The login form reads the fullwidth spelling as "boss": every spelling is one account.
    assert _login(client, "right-password-123", username=spelling).status_code == 429
    assert _login(client, "right-password-123").status_code == 429


FAIL_ELSEWHERE = """
import django
django.setup()
from django.test import RequestFactory
from portal import login_throttle
request = RequestFactory().post("/admin/login/", REMOTE_ADDR="127.0.0.1")
for _ in range(3):  # attempts of that process's, counted before their passwords are checked
    for count in login_throttle.attempt_counts(request, "boss"):
        count.take(request)
"""


def test_failures_counted_by_another_process_of_the_machine_lock_the_account(
    boss: Any, settings: Any
) -> None:
    """``make serve`` runs several workers; with no shared cache configured,
    each one's memory would count only its own failures."""
    assert settings.CACHES["default"]["BACKEND"].endswith("LocMemCache")  # the embedded set-up
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        # The var/ of this test's shared cache (var/cache/shared).
        "PORTAL_VAR_DIR": str(Path(settings.CACHES["shared"]["LOCATION"]).parent.parent),
        "PORTAL_ADMIN_LOGIN_MAX_FAILURES": "3",
    }
    env.pop("CACHE_URL", None)
    subprocess.run([sys.executable, "-c", FAIL_ELSEWHERE], cwd=ROOT, env=env, check=True, timeout=120)
    response = Client().post("/admin/login/", {"username": "boss", "password": "right-password-123"})
    assert response.status_code == 429


def test_a_forged_forwarded_for_does_not_escape_the_lockout_without_trusted_proxies(boss: Any) -> None:
    client = Client()
    for n in range(3):
        client.post(
            "/admin/login/",
            {"username": "boss", "password": "guess"},
            HTTP_X_FORWARDED_FOR=f"192.0.2.{n}",
        )
    response = client.post(
        "/admin/login/",
        {"username": "boss", "password": "right-password-123"},
        HTTP_X_FORWARDED_FOR="192.0.2.99",
    )
    assert response.status_code == 429


def test_a_forged_forwarded_for_does_not_escape_the_lab_throttle(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(LabThrottle, "THROTTLE_RATES", {**LabThrottle.THROTTLE_RATES, "lab": "3/min"})
    client = APIClient()
    codes = [
        client.post(
            "/feedback/",
            {"title": "t", "name": "n", "date": "2020-01-01", "feedback": "x"},
            format="json",
            HTTP_X_FORWARDED_FOR=f"192.0.2.{n}",
        ).status_code
        for n in range(5)
    ]
    assert codes == [201, 201, 201, 429, 429]


def test_an_ipv6_client_does_not_escape_the_lab_throttle_through_its_other_addresses(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A provider hands one line a /64: its 2**64 addresses are one client's."""
    monkeypatch.setattr(LabThrottle, "THROTTLE_RATES", {**LabThrottle.THROTTLE_RATES, "lab": "3/min"})
    client = APIClient()
    review = {"title": "t", "name": "n", "date": "2020-01-01", "feedback": "x"}
    codes = [
        client.post("/feedback/", review, format="json", REMOTE_ADDR=f"2001:db8:1:2::{n + 1:x}").status_code
        for n in range(5)
    ]
    assert codes == [201, 201, 201, 429, 429]
    other_line = client.post("/feedback/", review, format="json", REMOTE_ADDR="2001:db8:1:3::1")
    assert other_line.status_code == 201


# --- Metrics --------------------------------------------------------------------------


def test_metrics_answer_only_to_the_configured_networks_or_the_token(settings: Any) -> None:
    client = Client()
    assert client.get("/metrics").status_code == 200  # the test client is 127.0.0.1
    outside = client.get("/metrics", REMOTE_ADDR="203.0.113.5")
    assert outside.status_code == 403
    assert b"django_http" not in outside.content
    forged = client.get("/metrics", REMOTE_ADDR="203.0.113.5", HTTP_X_FORWARDED_FOR="127.0.0.1")
    assert forged.status_code == 403
    settings.METRICS_TOKEN = "scrape-secret"
    assert (
        client.get("/metrics", REMOTE_ADDR="203.0.113.5", HTTP_AUTHORIZATION="Bearer nope").status_code == 403
    )
    scraped = client.get("/metrics", REMOTE_ADDR="203.0.113.5", HTTP_AUTHORIZATION="Bearer scrape-secret")
    assert scraped.status_code == 200
    assert b"django_http" in scraped.content
    settings.METRICS_ALLOWED_NETWORKS = ["203.0.113.0/24"]
    assert client.get("/metrics", REMOTE_ADDR="203.0.113.5").status_code == 200


def test_behind_a_proxy_not_counted_as_trusted_loopback_grants_no_metrics(settings: Any) -> None:
    """nginx on the same host as gunicorn, PORTAL_TRUSTED_PROXY_COUNT left at
    0: every request comes from 127.0.0.1. A client on the internet behind
    the proxy must not read the metrics; the scrape's token still does."""
    client = Client()
    through = {"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": "203.0.113.5"}
    refused = client.get("/metrics", **through)
    assert refused.status_code == 403
    assert b"django_http" not in refused.content
    assert b"PORTAL_TRUSTED_PROXY_COUNT" in refused.content
    settings.METRICS_TOKEN = "scrape-secret"
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-secret", **through).status_code == 200
    # Counted as trusted, the proxy names the client: one inside is served.
    settings.TRUSTED_PROXY_COUNT = 1
    assert client.get("/metrics", **through).status_code == 403
    assert (
        client.get("/metrics", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="127.0.0.1").status_code == 200
    )


@pytest.mark.parametrize("count", [1, 2])
@pytest.mark.parametrize("entry", ["unknown", "_hidden", "203.0.113.5:4711", "[2001:db8::5]:4711", ""])
def test_a_trusted_proxys_entry_that_is_no_address_grants_nothing_by_the_proxys_address(
    client: Client, settings: Any, count: int, entry: str
) -> None:
    """nginx on the same host as gunicorn, counted as trusted: the client is
    the entry it wrote. One that is no address (a proxy writing "unknown",
    an obfuscated name, or the address with its port) does not make the
    client the proxy, on loopback, with the metrics and the course's
    writes granted to it."""
    settings.TRUSTED_PROXY_COUNT = count
    # With two, the inner proxy wrote the outer one's address after it.
    hops = [entry, "10.0.0.3"] if count == 2 else [entry]
    # "" stands for a header of no entry at all.
    through = {"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": ", ".join(hops) if entry else ","}

    metrics = client.get("/metrics", **through)
    fruit = client.post("/fruits/", {"name": "Quince"}, content_type="application/json", **through)

    assert metrics.status_code == 403
    assert b"django_http" not in metrics.content
    assert fruit.status_code == 401, fruit.content


def test_a_trusted_proxys_entry_with_its_port_is_the_clients_address(settings: Any) -> None:
    settings.TRUSTED_PROXY_COUNT = 1
    factory = RequestFactory()
    for entry, address in [("203.0.113.5:4711", "203.0.113.5"), ("[2001:db8::5]:4711", "2001:db8::5")]:
        request = factory.get("/", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR=entry)
        assert client_ip(request) == address
    inside = client_ip(factory.get("/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="127.0.0.1:4711"))
    assert inside == "127.0.0.1"


def test_an_ipv4_address_written_as_ipv6_is_in_the_ipv4_networks(client: Client, settings: Any) -> None:
    """A server or proxy listening on both IPv6 and IPv4 on one socket
    (gunicorn bound to [::], HAProxy's v4v6) gives an IPv4 client as
    ::ffff:127.0.0.1: the scrape from the machine itself is the loopback."""
    assert client.get("/metrics", REMOTE_ADDR="::ffff:127.0.0.1").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="::ffff:203.0.113.5").status_code == 403
    settings.TRUSTED_PROXY_COUNT = 1
    office = {"REMOTE_ADDR": "10.0.0.2", "HTTP_X_FORWARDED_FOR": "::ffff:192.168.1.20"}
    written = client.post("/fruits/", {"name": "Quince"}, content_type="application/json", **office)
    assert written.status_code != 401, written.content


def test_no_shared_cache_keeps_the_metrics_or_their_refusal(settings: Any) -> None:
    """Whether /metrics answers depends on who asks (their network, their
    token): a proxy cache that kept the answer to a scrape from inside would
    hand it to anyone, and one that kept a refusal would starve the scrape."""
    settings.METRICS_TOKEN = "scrape-secret"
    client = Client()
    answers = [
        client.get("/metrics"),
        client.get("/metrics", REMOTE_ADDR="203.0.113.5", HTTP_AUTHORIZATION="Bearer scrape-secret"),
        client.get("/metrics", REMOTE_ADDR="203.0.113.5"),
    ]
    assert [a.status_code for a in answers] == [200, 200, 403]
    for answer in answers:
        directives = {d.strip() for d in answer["Cache-Control"].split(",")}
        assert {"private", "no-store"} <= directives, answer["Cache-Control"]


@pytest.mark.parametrize(
    ("path", "setting", "only_with_the_token"),
    [("/metrics", "METRICS_TOKEN", b"django_http"), ("/health/", "HEALTH_TOKEN", b'"detail"')],
)
def test_a_bearer_token_of_any_characters_is_checked_never_a_server_error(
    settings: Any, path: str, setting: str, only_with_the_token: bytes
) -> None:
    """A header's bytes arrive as Latin-1 text: a token with an accent is
    refused as any wrong one, and a secret with one matches itself sent as
    UTF-8."""
    client = Client(raise_request_exception=False)
    setattr(settings, setting, "scrape-secret")
    guessed = client.get(path, REMOTE_ADDR="203.0.113.5", HTTP_AUTHORIZATION="Bearer \u00e9t\u00e9")
    assert guessed.status_code != 500
    assert only_with_the_token not in guessed.content
    setattr(settings, setting, "s\u00e9same")
    wire = "Bearer s\u00e9same".encode().decode("latin-1")
    right = client.get(path, REMOTE_ADDR="203.0.113.5", HTTP_AUTHORIZATION=wire)
    assert only_with_the_token in right.content


# --- Bodies bounded before they are read ------------------------------------------------


class ExplodingStream(io.BytesIO):
    """A body that must not be read."""

    def read(self, *args: Any, **kwargs: Any) -> bytes:
        raise AssertionError("the body was read")

    readline = read


def _post_raw(path: str, size: int, content_type: str = "application/json", **extra: Any) -> Any:
    client = Client()
    environ = {"CONTENT_LENGTH": str(size), "CONTENT_TYPE": content_type, "wsgi.input": ExplodingStream()}
    return client.generic("POST", path, b"", content_type, **{**environ, **extra})


@pytest.mark.parametrize(
    "path",
    [
        "/feedback/",
        "/fruits",
        "/api/v1/feedback/",
        "/reviews/new/",
        "/admin/login/",
        "/api/v1/images/1/reprocess/",
    ],
)
def test_a_body_over_the_limit_is_refused_with_413_before_it_is_read(path: str) -> None:
    response = _post_raw(path, 10 * 1024 * 1024)
    assert response.status_code == 413
    assert "1,048,576 bytes (1 MB)" in response.content.decode()
    assert Feedback.objects.count() == 0


@pytest.mark.parametrize("path", ["/feedback/", "/api/v1/feedback/", "/reviews/new/"])
def test_a_content_length_that_is_not_a_number_is_a_400_before_anything_reads_it(path: str) -> None:
    response = _post_raw(path, 0, CONTENT_LENGTH="abc")
    assert response.status_code == 400
    assert "The Content-Length header is not a number." in response.content.decode()


@pytest.mark.parametrize("path", ["/feedback/", "/api/v1/feedback/", "/api/v1/images/"])
def test_a_chunked_body_without_a_length_is_a_411_not_an_empty_record(path: str) -> None:
    # Django reads as much body as Content-Length says: none, here.
    response = _post_raw(path, 0, CONTENT_LENGTH="", HTTP_TRANSFER_ENCODING="chunked")
    assert response.status_code == 411
    assert "Content-Length" in json.loads(response.content)["detail"]
    assert Feedback.objects.count() == 0


def test_the_413_is_json_for_scripts_and_a_page_for_browsers() -> None:
    script = _post_raw("/feedback/", 2 * 1024 * 1024)
    assert json.loads(script.content)["detail"].startswith("The request body is 2,097,152 bytes")
    browser = _post_raw("/reviews/new/", 2 * 1024 * 1024, HTTP_ACCEPT="text/html")
    assert b"<html" in browser.content


def test_the_413_reaches_the_client_through_the_development_server(live_server: Any) -> None:
    # runserver (wsgiref) refuses hop-by-hop headers such as Connection from
    # the application: setting one there turned every 413 into a 500.
    body = b"x" * (2 * 1024 * 1024)
    refused = requests.post(
        f"{live_server.url}/feedback/", data=body, headers={"Content-Type": "application/json"}, timeout=30
    )
    assert refused.status_code == 413
    assert "1,048,576 bytes (1 MB)" in refused.text


def test_upload_endpoints_keep_their_own_limit_from_the_header(settings: Any) -> None:
    settings.IMAGE_MAX_BYTES = 3 * 1024 * 1024
    for path in ("/api/v1/images/", "/upload/"):
        response = _post_raw(path, 5 * 1024 * 1024, "multipart/form-data; boundary=x")
        assert response.status_code == 413, path
    # Between the general limit and the upload limit: read, and judged as an image.
    photo = SimpleUploadedFile("a.jpg", corpus.photo_jpeg(1600, 1200))
    ok = APIClient().post("/upload/", {"file": photo}, format="multipart")
    assert ok.status_code == 201


def test_a_file_over_the_limit_is_cut_off_while_it_streams(settings: Any, staff: APIClient) -> None:
    settings.IMAGE_MAX_BYTES = 200_000
    big = corpus.photo_jpeg(1600, 1200)
    assert len(big) > 200_000
    small = corpus.jpeg()
    files = [SimpleUploadedFile("small.jpg", small), SimpleUploadedFile("big.jpg", big)]
    # The admin takes many files in one body, so the header alone cannot tell.
    response = staff.post(
        "/admin/uploads/image/upload/", {"files": files, "preset": "web"}, format="multipart"
    )
    assert response.status_code == 413
    assert "big.jpg" in response.content.decode()
    assert Image.objects.count() == 0


def test_the_admin_upload_with_no_file_says_so(staff: APIClient) -> None:
    response = staff.post("/admin/uploads/image/upload/", {"preset": "web"}, format="multipart")
    assert response.status_code == 400
    assert "This field is required." in response.content.decode()
    assert Image.objects.count() == 0


# --- CSRF -----------------------------------------------------------------------------------


def test_session_writes_to_the_api_need_the_csrf_token(staff_user: Any) -> None:
    browser = APIClient(enforce_csrf_checks=True)
    browser.force_login(staff_user)
    body = {"title": "t", "name": "n", "date": "2020-01-01", "text": "x"}
    refused = browser.post("/api/v1/feedback/", body, format="json")
    assert refused.status_code == 403
    assert "CSRF" in refused.json()["detail"]
    browser.cookies["csrftoken"] = "a" * 32
    allowed = browser.post("/api/v1/feedback/", body, format="json", HTTP_X_CSRFTOKEN="a" * 32)
    assert allowed.status_code == 201


def test_a_session_kept_after_the_staff_status_is_removed_writes_nothing(staff_user: Any) -> None:
    """A session is an admin sign-in, for staff only: taking the staff
    status closes the admin to a browser still signed in, and the API's
    writes with it (a token is what a caller who is not staff writes with)."""
    browser = APIClient()
    browser.force_login(staff_user)
    staff_user.is_staff = False
    staff_user.save(update_fields=["is_staff"])
    body = {"name": "Apple", "weight": 3, "description": "Red.", "image_name": "apple.jpg"}

    refused = browser.post("/api/v1/products/", body, format="json")

    assert refused.status_code == 401
    # Told why, not that it sent no credentials: its cookie went with the post.
    detail = refused.json()["detail"]
    assert "staff" in detail
    assert "Authorization: Token" in detail
    assert not Product.objects.exists()
    assert browser.get("/admin/").status_code == 302  # to the sign-in page


@pytest.mark.parametrize("method", ["patch", "delete"])
def test_a_session_of_a_user_who_is_not_staff_is_told_why_its_change_is_refused(method: str) -> None:
    user = UserFactory(username="former")
    user.user_permissions.set(Permission.objects.filter(codename__in=["change_product", "delete_product"]))
    product = ProductFactory()
    browser = APIClient()
    browser.force_login(user)

    refused = getattr(browser, method)(f"/api/v1/products/{product.pk}/", {"weight": 9}, format="json")

    assert refused.status_code == 401
    assert refused.json()["detail"].startswith("The session of 'former' writes nothing here:")
    assert Product.objects.get(pk=product.pk).weight == product.weight


def test_a_caller_with_no_session_nor_token_is_told_no_credentials_were_sent(visitor: APIClient) -> None:
    refused = visitor.post("/api/v1/products/", {"name": "Apple", "weight": 3}, format="json")

    assert refused.status_code == 401
    assert refused.json()["detail"] == "Authentication credentials were not provided."


# --- No internals in answers --------------------------------------------------------------


def _storage_away(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise ConnectionRefusedError("connect to s3.internal:8333 refused")

    for alias in ("default", "originals"):
        for name in ("_save", "_open", "exists"):
            monkeypatch.setattr(storages[alias], name, refuse)


def test_an_unavailable_storage_gives_a_plain_503_everywhere(
    monkeypatch: pytest.MonkeyPatch, staff: APIClient, token_client: APIClient, commit: Any
) -> None:
    with commit():
        image = services.image_upload(file=corpus.jpeg(), original_name="a.jpg")
    _storage_away(monkeypatch)
    # Bytes not stored yet: the same bytes would be found already in place.
    upload = {"file": SimpleUploadedFile("b.jpg", corpus.photo_jpeg(80, 60, seed=5))}
    answers = [
        token_client.post("/api/v1/images/", upload, format="multipart"),
        APIClient().post(
            "/upload/",
            {"file": SimpleUploadedFile("c.jpg", corpus.photo_jpeg(80, 60, seed=6))},
            format="multipart",
        ),
        token_client.get(f"/api/v1/images/{image.pk}/original/"),
        staff.post(
            "/admin/uploads/image/upload/",
            {"files": [SimpleUploadedFile("d.jpg", corpus.photo_jpeg(80, 60, seed=7))], "preset": "web"},
            format="multipart",
        ),
    ]
    for response in answers:
        text = b"".join(response.streaming_content) if response.streaming else response.content
        assert response.status_code == 503, (response.request["PATH_INFO"], text[:300])
        assert b"s3.internal" not in text
        assert b"ConnectionRefused" not in text
        assert b"8333" not in text
        assert b"Traceback" not in text
    assert Image.objects.count() == 1


def test_an_unavailable_database_gives_a_plain_503(
    monkeypatch: pytest.MonkeyPatch, visitor: APIClient
) -> None:
    _database_away(monkeypatch)
    for url, accept in (
        ("/reviews/", "text/html"),
        ("/api/v1/feedback/", "application/json"),
        ("/fruits/", "*/*"),
        ("/metrics", "*/*"),
    ):
        response = visitor.get(url, HTTP_ACCEPT=accept)
        assert response.status_code == 503, url
        assert b"db.internal" not in response.content
        assert b"connect" not in response.content
        assert response["Retry-After"]


@pytest.mark.parametrize("url", ["/", "/people/", "/reviews/"])
def test_an_unavailable_database_gives_a_signed_in_visitor_the_503_page_too(
    monkeypatch: pytest.MonkeyPatch, staff: APIClient, url: str
) -> None:
    # Who they are is in their session, in the database that is away.
    _database_away(monkeypatch)
    staff.raise_request_exception = False
    response = staff.get(url, HTTP_ACCEPT="text/html")
    assert response.status_code == 503
    html = response.content.decode()
    assert "The database is unavailable" in html
    assert response["Retry-After"]
    assert "db.internal" not in html


def test_a_signed_in_visitor_gets_the_404_page_while_the_database_is_away(
    monkeypatch: pytest.MonkeyPatch, staff: APIClient
) -> None:
    _database_away(monkeypatch)
    staff.raise_request_exception = False
    response = staff.get("/nothing-here/", HTTP_ACCEPT="text/html")
    assert response.status_code == 404
    assert "There is nothing at this address." in response.content.decode()


def _database_away(monkeypatch: pytest.MonkeyPatch) -> None:
    def away(*args: Any, **kwargs: Any) -> Any:
        raise OperationalError('could not connect to server: Connection refused\n\tIs "db.internal" running?')

    monkeypatch.setattr(CursorWrapper, "execute", away)


# --- Probes under load ----------------------------------------------------------------------


def test_a_storm_of_probes_costs_one_check_per_period(
    live_server: Any, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.HEALTH_READY_CACHE_SECONDS = 60
    health.readiness.clear()
    runs: list[int] = []
    checks = health.READY_CHECKS

    def counted() -> health.Check:
        runs.append(1)
        return checks[0]()

    monkeypatch.setattr(health, "READY_CHECKS", (counted, checks[1]))

    def probe(_: int) -> tuple[int, dict[str, Any]]:
        with urllib.request.urlopen(f"{live_server.url}/health/ready", timeout=30) as response:  # noqa: S310 - loopback
            return response.status, json.loads(response.read())

    with ThreadPoolExecutor(50) as pool:
        answers = list(pool.map(probe, range(200)))
    assert {status for status, _ in answers} == {200}
    assert all(body == {"status": "ok", "checks": {"database": "ok", "storage": "ok"}} for _, body in answers)
    assert len(runs) == 1
