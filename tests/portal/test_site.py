from __future__ import annotations

import io
import mimetypes
import os
import re
import socket
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command, load_command_class
from django.test import Client

from catalog.models import Feedback, Person, Product
from portal import urls as portal_urls
from portal import views
from tests.factories import FeedbackFactory, ImageFactory, ProductFactory, UserFactory, logged_in
from uploads.models import Image, Rendition
from uploads.storage import IMMUTABLE

ROOT = Path(__file__).resolve().parent.parent.parent

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("url", "extra", "status"),
    [
        ("/", {}, 200),
        ("/nowhere/", {}, 404),
        ("/people/?q=%00", {}, 400),  # answered by a middleware, before the view
        ("/", {"HTTP_HOST": "evil.example"}, 400),  # a host not allowed
        ("/reviews/new/", {"CONTENT_LENGTH": "abc"}, 400),
    ],
)
def test_pages_carry_security_headers(client: Client, url: str, extra: dict[str, str], status: int) -> None:
    response = client.get(url, **extra)
    assert response.status_code == status
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"
    assert "default-src 'self'" in response["Content-Security-Policy"]
    assert "script-src 'self';" in response["Content-Security-Policy"]


def img_sources(response: Any) -> list[str]:
    policy = dict(part.strip().split(" ", 1) for part in response["Content-Security-Policy"].split(";"))
    return policy["img-src"].split()


def test_images_served_by_the_portal_itself_need_no_other_source(client: Client) -> None:
    assert img_sources(client.get("/")) == ["'self'", "data:"]


@pytest.mark.parametrize(
    ("options", "origin"),
    [
        ({}, "http://127.0.0.1:14080"),
        ({"custom_domain": "media.example.com"}, "https://media.example.com"),
    ],
    ids=["bucket-endpoint", "cdn-domain"],
)
def test_the_policy_lets_pages_show_images_from_the_bucket_they_point_at(
    client: Client, settings: Any, monkeypatch: pytest.MonkeyPatch, options: dict[str, Any], origin: str
) -> None:
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "uploads.storage.MediaS3Storage",
            "OPTIONS": {
                "bucket_name": "portal-media",
                "endpoint_url": "http://127.0.0.1:14080",
                "access_key": "key",
                "secret_key": "secret",
                "region_name": "us-east-1",
                "querystring_auth": False,
                "addressing_style": "path",
                **options,
            },
        },
    }

    def no_network(self: socket.socket, address: Any) -> None:
        raise AssertionError(f"the policy asked {address} something")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    response = client.get("/")
    # Where an <img> of a page, and a redirect of /img/ to a rendition, lead.
    rendition_url = Rendition(storage_key="renditions/ab/abcdef.webp").url
    assert rendition_url.startswith(f"{origin}/")
    assert img_sources(response) == ["'self'", "data:", origin]


def test_the_policy_lets_pages_show_images_from_an_absolute_media_url(client: Client, settings: Any) -> None:
    settings.MEDIA_URL = "https://cdn.example.com/media/"
    assert img_sources(client.get("/"))[-1] == "https://cdn.example.com"


PAGES = ["/", "/people/", "/catalog/", "/reviews/"]


@pytest.mark.parametrize("method", ["put", "delete", "patch", "trace"])
@pytest.mark.parametrize("url", [*PAGES, "/reviews/new/"])
def test_a_page_answers_a_method_it_does_not_take_with_405_naming_those_it_does(
    client: Client, url: str, method: str
) -> None:
    response = getattr(client, method)(url)
    assert response.status_code == 405
    allowed = "GET, HEAD, POST, OPTIONS" if url == "/reviews/new/" else "GET, HEAD, OPTIONS"
    assert response["Allow"] == allowed
    assert f"This page answers {allowed}, not {method.upper()}." in response.content.decode()
    assert "<html" in response.content.decode()  # the site's error page


@pytest.mark.parametrize("method", ["post", "put", "delete"])
@pytest.mark.parametrize("url", PAGES)
def test_a_write_to_a_page_that_takes_none_is_a_405_even_without_a_csrf_cookie(url: str, method: str) -> None:
    browser = Client(enforce_csrf_checks=True)  # no cookie, no token: as a script sends it
    response = getattr(browser, method)(url)
    assert response.status_code == 405
    assert response["Allow"] == "GET, HEAD, OPTIONS"
    # A page that takes writes still checks the form first.
    assert browser.post("/reviews/new/", {"title": "Hi"}).status_code == 403


# Addresses served without signing in that are not pages of the catalog: the
# probes, the metrics, the media files, the renditions made on demand.
READ_ONLY = [
    "/health/",
    "/health/live",
    "/health/ready",
    "/metrics",
    "/media/renditions/ab/abcdef.webp",
    "/img/sig/1/fill-480x320/webp/",
    "/img/incomplete",
]


@pytest.mark.parametrize("method", ["post", "put", "delete", "patch"])
@pytest.mark.parametrize("url", READ_ONLY)
def test_a_write_to_an_address_that_takes_none_is_a_405_naming_the_methods_it_takes(
    url: str, method: str
) -> None:
    script = Client(enforce_csrf_checks=True)  # no cookie, no token: as a script sends it
    response = getattr(script, method)(url)
    assert response.status_code == 405
    assert response["Allow"] == "GET, HEAD, OPTIONS"
    assert f"answers GET, HEAD, OPTIONS, not {method.upper()}" in response.content.decode()


@pytest.mark.parametrize("url", READ_ONLY)
def test_options_on_an_address_that_takes_no_writes_lists_its_methods_alone(client: Client, url: str) -> None:
    response = client.options(url)
    assert response.status_code == 200
    assert response["Allow"] == "GET, HEAD, OPTIONS"
    assert response.content == b""


@pytest.mark.parametrize("method", ["put", "delete", "patch"])
def test_a_method_the_form_does_not_take_is_a_405_even_without_a_csrf_cookie(method: str) -> None:
    browser = Client(enforce_csrf_checks=True)  # no cookie, no token: as a script sends it
    response = getattr(browser, method)("/reviews/new/")
    assert response.status_code == 405
    assert response["Allow"] == "GET, HEAD, POST, OPTIONS"
    assert f"not {method.upper()}" in response.content.decode()


def test_a_link_to_the_admin_s_sign_out_is_a_405_saying_how_to_sign_out() -> None:
    """Signing out is a form's POST (a link would let any page sign staff
    out): a bookmark of it got an empty page."""
    browser = logged_in(UserFactory(username="boss", is_staff=True, is_superuser=True))
    response = browser.get("/admin/logout/")
    assert response.status_code == 405
    assert response["Allow"] == "POST, OPTIONS"
    assert "This page answers POST, OPTIONS, not GET." in response.content.decode()
    assert "<html" in response.content.decode()
    assert browser.get("/admin/").status_code == 200  # still signed in
    assert browser.post("/admin/logout/").status_code == 200
    assert browser.get("/admin/").status_code == 302


@pytest.mark.parametrize("method", ["put", "delete", "patch"])
def test_a_method_the_admin_s_sign_in_does_not_take_is_a_405(method: str) -> None:
    """A PUT was read as a sign-in with nothing filled in: a 200 saying the
    fields are required."""
    response = getattr(Client(), method)("/admin/login/")
    assert response.status_code == 405
    assert response["Allow"] == "GET, HEAD, POST, OPTIONS"
    assert f"not {method.upper()}" in response.content.decode()


def test_a_review_sent_without_its_csrf_cookie_is_shown_again_as_typed_to_send_once_more() -> None:
    browser = Client(enforce_csrf_checks=True)  # a page left open until its cookie expired
    review = {"title": "Hi", "name": "Ann", "text": "A long review I took an hour to write.", "website": ""}
    response = browser.post("/reviews/new/", review)
    assert response.status_code == 403
    html = response.content.decode()
    assert "could not be checked" in html
    assert "A long review I took an hour to write." in html
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    assert token is not None
    assert Feedback.objects.count() == 0
    assert browser.post("/reviews/new/", {**review, "csrfmiddlewaretoken": token[1]}).status_code == 302
    assert Feedback.objects.get().text == "A long review I took an hour to write."


def test_the_form_sent_with_its_token_is_taken_and_without_it_refused() -> None:
    browser = Client(enforce_csrf_checks=True)
    form = browser.get("/reviews/new/")
    review = {"title": "Hi", "name": "Ann", "text": "Fine.", "website": ""}
    assert browser.post("/reviews/new/", review).status_code == 403
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.content.decode())
    assert token is not None
    assert browser.post("/reviews/new/", {**review, "csrfmiddlewaretoken": token[1]}).status_code == 302
    assert Feedback.objects.count() == 1


@pytest.mark.parametrize("url", PAGES)
def test_options_on_a_page_lists_its_methods_without_the_page(client: Client, url: str) -> None:
    response = client.options(url)
    assert response.status_code == 200
    assert response["Allow"] == "GET, HEAD, OPTIONS"
    assert response.content == b""
    assert client.head(url).status_code == 200


def test_a_form_sent_without_its_csrf_cookie_gets_the_sites_page_saying_what_to_do() -> None:
    response = Client(enforce_csrf_checks=True).post("/admin/login/", {"username": "a", "password": "b"})
    assert response.status_code == 403
    html = response.content.decode()
    assert "reload the page and send it again" in html
    assert "DEBUG" not in html


@pytest.mark.parametrize("url", ["/feedbackx", "/fruitsalad/", "/uploads-old/"])
def test_a_browser_gets_the_error_page_at_addresses_that_only_start_like_the_course_endpoints(
    client: Client, url: str
) -> None:
    response = client.get(url, HTTP_ACCEPT="text/html")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


def test_signing_in_with_a_refused_next_lands_on_the_admin(client: Client) -> None:
    get_user_model().objects.create_superuser("boss", "boss@example.com", "right-password-123")
    response = client.post(
        "/admin/login/",
        {"username": "boss", "password": "right-password-123", "next": "https://evil.example/"},
    )
    assert response.status_code == 302
    assert response["Location"] == "/admin/"


def test_admin_login_is_throttled_after_repeated_failures(client: Client, settings: Any) -> None:
    settings.ADMIN_LOGIN_MAX_FAILURES = 3
    get_user_model().objects.create_superuser("boss", "boss@example.com", "right-password-123")
    for _ in range(3):
        response = client.post("/admin/login/", {"username": "boss", "password": "wrong"})
        assert response.status_code == 200
    response = client.post("/admin/login/", {"username": "boss", "password": "right-password-123"})
    assert response.status_code == 429
    assert "the limit is 3" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_admin_login_works_below_the_limit(client: Client) -> None:
    get_user_model().objects.create_superuser("boss", "boss@example.com", "right-password-123")
    client.post("/admin/login/", {"username": "boss", "password": "wrong"})
    response = client.post(
        "/admin/login/?next=/admin/", {"username": "boss", "password": "right-password-123"}
    )
    assert response.status_code == 302
    assert client.session["_auth_user_id"]


def test_ensure_admin_takes_credentials_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORTAL_ADMIN_USERNAME", "chief")
    monkeypatch.setenv("PORTAL_ADMIN_PASSWORD", "a-long-secret-42")
    out = io.StringIO()
    call_command("ensure_admin", stdout=out)
    user = get_user_model().objects.get(username="chief")
    assert user.is_superuser
    assert user.check_password("a-long-secret-42")
    assert "'chief'" in out.getvalue()


@pytest.mark.parametrize("port", ["99999", "0", "-1", "http"])
def test_ensure_admin_refuses_a_port_no_server_listens_on(
    port: str, capsys: pytest.CaptureFixture[str]
) -> None:
    command = load_command_class("portal", "ensure_admin")
    command._called_from_command_line = True  # as manage.py runs it: argparse's exit
    parser = command.create_parser("manage.py", "ensure_admin")
    with pytest.raises(SystemExit) as refused:
        parser.parse_args(["--port", port])
    assert refused.value.code == 2
    assert f"argument --port: must be a port from 1 to 65535; it is '{port}'" in capsys.readouterr().err
    assert parser.parse_args(["--port", "65535"]).port == 65535


def _assert_ensure_admin_refuses(variable: str, reason: str) -> None:
    """ensure_admin stops with exit 1 naming the variable and the rule, and prints nothing."""
    out = io.StringIO()
    with pytest.raises(CommandError) as refused:
        call_command("ensure_admin", stdout=out)
    assert refused.value.returncode == 1
    assert str(refused.value).startswith(f"{variable} is refused, nothing was changed: ")
    assert reason in str(refused.value)
    assert out.getvalue() == ""


@pytest.mark.parametrize(
    ("username", "password", "reason"),
    [
        ("boss", "x", "This password is too short. It must contain at least 8 characters."),
        ("boss", "password", "This password is too common."),
        ("chiefofstaff", "chiefofstaff1", "The password is too similar to the username."),
    ],
)
def test_ensure_admin_refuses_a_chosen_password_the_validators_refuse(
    monkeypatch: pytest.MonkeyPatch, username: str, password: str, reason: str
) -> None:
    monkeypatch.setenv("PORTAL_ADMIN_USERNAME", username)
    monkeypatch.setenv("PORTAL_ADMIN_PASSWORD", password)
    _assert_ensure_admin_refuses("PORTAL_ADMIN_PASSWORD", reason)
    assert not get_user_model().objects.filter(username=username).exists()


def test_ensure_admin_leaves_an_existing_admin_alone_when_the_chosen_password_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    get_user_model().objects.create_superuser("boss", "boss@example.com", "right-password-123")
    monkeypatch.setenv("PORTAL_ADMIN_USERNAME", "boss")
    monkeypatch.setenv("PORTAL_ADMIN_PASSWORD", "x")
    with pytest.raises(CommandError, match="too short"):
        call_command("ensure_admin", stdout=io.StringIO())
    assert get_user_model().objects.get(username="boss").check_password("right-password-123")


@pytest.fixture
def default_admin(settings: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No credentials in the environment, a var folder of the test's own."""
    settings.VAR_DIR = tmp_path
    monkeypatch.delenv("PORTAL_ADMIN_USERNAME", raising=False)
    monkeypatch.delenv("PORTAL_ADMIN_PASSWORD", raising=False)
    return tmp_path / "admin_password"


def ensure_admin() -> str:
    out = io.StringIO()
    call_command("ensure_admin", stdout=out)
    return out.getvalue()


def test_ensure_admin_prints_a_kept_password_that_works_each_time(default_admin: Path) -> None:
    first, second = ensure_admin(), ensure_admin()
    password = default_admin.read_text().strip()
    assert f"created: http://127.0.0.1:8000/admin/  user 'admin'  password {password!r}" in first
    assert f"exists: http://127.0.0.1:8000/admin/  user 'admin'  password {password!r}" in second
    assert get_user_model().objects.get(username="admin").check_password(password)
    validate_password(password, get_user_model().objects.get(username="admin"))  # raises if refused


def test_ensure_admin_never_prints_a_password_it_did_not_set(default_admin: Path) -> None:
    get_user_model().objects.create_superuser("admin", "a@example.com", "chosen-by-hand-77")
    text = ensure_admin()
    assert "its password was set elsewhere and is not shown" in text
    assert "password '" not in text
    assert get_user_model().objects.get(username="admin").check_password("chosen-by-hand-77")
    assert not default_admin.exists()


def test_ensure_admin_keeps_the_password_it_generates_private_from_the_first_byte(
    default_admin: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Written with the umask's mode, then made private, the file was
    readable by every local user until the chmod, and for good when the run
    stopped between (here: a chmod that never comes)."""
    default_admin.write_text("")  # left empty by an earlier run: a password is generated into it
    default_admin.chmod(0o644)
    monkeypatch.setattr(Path, "chmod", lambda self, mode, **kwargs: None)
    umask = os.umask(0o022)
    try:
        text = ensure_admin()
    finally:
        os.umask(umask)
    assert stat.S_IMODE(default_admin.stat().st_mode) == 0o600
    assert f"password {default_admin.read_text()!r}" in text


def test_ensure_admin_that_cannot_keep_its_password_says_so_in_one_line_and_makes_no_account(
    settings: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PORTAL_ADMIN_USERNAME", raising=False)
    monkeypatch.delenv("PORTAL_ADMIN_PASSWORD", raising=False)
    settings.VAR_DIR = tmp_path / "var"
    settings.VAR_DIR.write_text("a file where the folder goes")
    with pytest.raises(CommandError) as refused:
        ensure_admin()
    assert refused.value.returncode == 1
    assert str(refused.value).startswith(
        f"Cannot keep the admin's password in {settings.VAR_DIR / 'admin_password'}: "
    )
    assert str(refused.value).endswith(
        "; nothing was changed. Set PORTAL_ADMIN_PASSWORD, or PORTAL_VAR_DIR to a folder it can write to."
    )
    assert not get_user_model().objects.filter(username="admin").exists()


@pytest.mark.parametrize(
    ("leave", "reason"),
    [
        (lambda path: path.mkdir(), "Is a directory"),
        (lambda path: path.write_bytes(b"\xff\xfe secret"), "not UTF-8 text"),
    ],
    ids=["folder", "not-text"],
)
def test_ensure_admin_that_cannot_read_the_kept_password_says_so_in_one_line_and_makes_no_account(
    default_admin: Path, leave: Any, reason: str
) -> None:
    """A folder or another user's file where the password is kept (one
    written by a run as root) ended in a traceback."""
    leave(default_admin)
    with pytest.raises(CommandError) as refused:
        ensure_admin()
    assert refused.value.returncode == 1
    assert str(refused.value) == (
        f"Cannot read the admin's password kept in {default_admin}: {reason}; nothing was changed. "
        "Remove it (a password is generated again), or set PORTAL_ADMIN_PASSWORD."
    )
    assert not get_user_model().objects.filter(username="admin").exists()


def test_ensure_admin_makes_an_existing_plain_user_an_admin(default_admin: Path) -> None:
    get_user_model().objects.create_user("admin", "a@example.com", "plain-user-pass-99")
    text = ensure_admin()
    user = get_user_model().objects.get(username="admin")
    assert (user.is_staff, user.is_superuser) == (True, True)
    assert "Admin account updated" in text
    assert user.check_password("plain-user-pass-99")  # theirs still


def test_seed_demo_loads_people_products_with_processed_images_and_reviews(
    django_capture_on_commit_callbacks: Any,
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        call_command("seed_demo", stdout=io.StringIO())
    assert Person.objects.filter(photo__isnull=False).count() >= 3
    assert Product.objects.filter(image__status=Image.Status.READY).count() >= 3
    assert Feedback.objects.filter(status=Feedback.Status.PUBLISHED).count() >= 3
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    assert "already loaded" in out.getvalue()
    assert Person.objects.count() == 6


def production_env(var_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a production host, as docs/deploy.md sets it; the
    HSTS switches only as ``extra`` gives them."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        "DJANGO_DEBUG": "false",
        "DJANGO_HTTPS": "true",
        "DJANGO_SECRET_KEY": "x9!" * 20 + "production-grade-secret-key-value",
        "DJANGO_ALLOWED_HOSTS": "portal.example.com",
        "PORTAL_VAR_DIR": str(var_dir),
    }
    for name in ("DJANGO_HSTS_SECONDS", "DJANGO_HSTS_INCLUDE_SUBDOMAINS", "DJANGO_HSTS_PRELOAD"):
        env.pop(name, None)
    return {**env, **extra}


def test_check_deploy_is_clean_with_production_settings(tmp_path: Path) -> None:
    env = production_env(tmp_path)
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


HSTS_PROBE = """
import django
django.setup()
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
response = Client().get("/no-such-page/", secure=True, HTTP_HOST="portal.example.com")
print(response["Strict-Transport-Security"])
"""


@pytest.mark.parametrize(
    ("switches", "header"),
    [
        ({}, "max-age=31536000"),
        (
            {"DJANGO_HSTS_INCLUDE_SUBDOMAINS": "true", "DJANGO_HSTS_PRELOAD": "true"},
            "max-age=31536000; includeSubDomains; preload",
        ),
        ({"DJANGO_HSTS_SECONDS": "600"}, "max-age=600"),
    ],
)
def test_hsts_reaches_subdomains_and_the_preload_list_only_when_asked(
    tmp_path: Path, switches: dict[str, str], header: str
) -> None:
    env = production_env(tmp_path, **switches)
    result = subprocess.run(
        [sys.executable, "-c", HSTS_PROBE], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == header


def test_production_settings_refuse_to_start_without_a_secret_key(tmp_path: Path) -> None:
    env = {**os.environ, "DJANGO_HTTPS": "true", "PORTAL_VAR_DIR": str(tmp_path)}
    env.pop("DJANGO_SECRET_KEY", None)
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY must be set" in result.stderr


@pytest.mark.parametrize(
    ("url", "accept", "detail"),
    [
        ("/api/v1/people/", "application/json", True),
        ("/reviews/", "text/html", False),
    ],
    ids=["api", "page"],
)
def test_an_address_of_too_many_parameters_is_a_400_naming_the_limit(
    client: Client, url: str, accept: str, detail: bool
) -> None:
    many = "&".join(f"department=d{n}" for n in range(1001))

    response = client.get(f"{url}?{many}", HTTP_ACCEPT=accept)

    assert response.status_code == 400
    message = "At most 1,000 parameters may be sent in an address or a form, each repeat counted."
    if detail:
        assert response.json() == {"detail": message}
    else:
        assert message in response.content.decode()
    assert client.get(f"{url}?{many.rsplit('&', 1)[0]}", HTTP_ACCEPT=accept).status_code == 200


def test_a_form_of_too_many_fields_is_a_400_naming_the_limit(client: Client) -> None:
    fields = {"title": "T", "name": "N", "date": "2024-01-02", "feedback": "x"}
    fields |= {f"extra{n}": "" for n in range(1000)}

    response = client.post("/feedback/", fields)

    assert response.status_code == 400
    assert "At most 1,000 parameters" in response.json()["detail"]


def test_an_upload_of_too_many_files_is_a_400_naming_the_limit(staff: Any) -> None:
    files = [SimpleUploadedFile(f"{n}.jpg", b"x") for n in range(101)]

    response = staff.post("/api/v1/images/", {"file": files}, format="multipart")

    assert response.status_code == 400
    assert response.json() == {"detail": "At most 100 files may be sent at once."}
    assert not Image.objects.exists()


@pytest.mark.parametrize(
    "path",
    ["renditions/" + "x" * 300 + ".webp", "renditions/" + "/".join(["y" * 200] * 25) + ".webp"],
    ids=["name", "path"],
)
def test_a_media_address_too_long_for_any_file_is_not_found(client: Client, settings: Any, path: str) -> None:
    # The folder is there: the name itself is what the file system refuses.
    (Path(settings.MEDIA_ROOT) / "renditions").mkdir(parents=True, exist_ok=True)

    # Longer than the file system takes: no such file, not a file store that is down (503).
    assert client.get(f"/media/{path}").status_code == 404


def test_media_files_carry_their_formats_content_type_on_a_machine_that_lists_no_types(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fresh machine (a slim container) has no /etc/mime.types, and Python's
    own list knows no WebP: its renditions went out as application/octet-stream."""
    image = ImageFactory(size=(700, 500), preset="web")
    monkeypatch.setattr(mimetypes, "guess_type", mimetypes.MimeTypes(filenames=()).guess_type)
    renditions = list(image.renditions.all())
    assert {r.format for r in renditions} >= {"webp", "jpeg"}
    for rendition in renditions:
        response = client.get(rendition.url)
        assert response.status_code == 200
        assert response["Content-Type"] == rendition.content_type, rendition.url
        assert response["Cache-Control"] == IMMUTABLE


def test_a_rendition_revalidated_is_still_cached_for_a_year(client: Client, settings: Any) -> None:
    """A 304 carries the Cache-Control its 200 would (RFC 9110, 15.4.5): a
    cache that asks again after a restart or an eviction is told anew that
    the rendition never changes."""
    folder = Path(settings.MEDIA_ROOT) / "renditions" / "ab"
    folder.mkdir(parents=True)
    (folder / "abcdef.webp").write_bytes(b"RIFF")
    url = "/media/renditions/ab/abcdef.webp"
    first = client.get(url)
    assert first.status_code == 200
    assert first["Cache-Control"] == IMMUTABLE

    again = client.get(url, HTTP_IF_MODIFIED_SINCE=first["Last-Modified"])
    assert again.status_code == 304
    assert again["Cache-Control"] == IMMUTABLE


@pytest.mark.parametrize("name", ["abcdef.webp", "notes.txt"], ids=["rendition", "a file of no image format"])
def test_a_media_file_s_304_carries_no_content_type(client: Client, settings: Any, name: str) -> None:
    """A 304 has no body, so no type (Django takes it off): one set on it
    anew failed with a 500 for a file whose extension names no format of
    the store's, left under renditions/ by hand."""
    folder = Path(settings.MEDIA_ROOT) / "renditions" / "ab"
    folder.mkdir(parents=True)
    (folder / name).write_bytes(b"RIFF")
    url = f"/media/renditions/ab/{name}"
    first = client.get(url)
    assert first.status_code == 200

    again = client.get(url, HTTP_IF_MODIFIED_SINCE=first["Last-Modified"])
    assert again.status_code == 304
    assert again["Cache-Control"] == IMMUTABLE
    assert "Content-Type" not in again


@pytest.mark.parametrize("page", ["change", "delete", "history"])
@pytest.mark.parametrize("model", ["catalog/feedback", "auth/user"])
def test_an_admin_page_asked_for_an_empty_field_to_name_its_choice_by_is_a_bad_request(
    admin_client: Client, admin_user: Any, model: str, page: str
) -> None:
    pk = admin_user.pk if model == "auth/user" else FeedbackFactory().pk
    address = f"/admin/{model}/{pk}/{page}/"
    assert admin_client.get(address, {"_to_field": "id", "_popup": "1"}).status_code == 200

    # As for a field it may not name (?_to_field=password), not a 500.
    assert admin_client.get(address, {"_to_field": "", "_popup": "1"}).status_code == 400
    assert admin_client.post(address, {"_to_field": "", "_popup": "1"}).status_code == 400
    assert admin_client.get(f"/admin/{model}/add/", {"_to_field": ""}).status_code == 400


@pytest.mark.parametrize(
    "page", ["", "add/", "{pk}/change/", "{pk}/delete/"], ids=["list", "add", "change", "delete"]
)
@pytest.mark.parametrize(
    ("model", "relation"),
    [
        ("auth/user", "auth_token"),
        ("auth/user", "logentry"),
        ("catalog/product", "reviews"),
        # A field of its own that no link points at, refused by Django, is named too.
        ("auth/user", "password"),
    ],
)
def test_an_admin_page_asked_to_name_its_choice_by_a_relation_from_another_model_is_a_bad_request(
    admin_client: Client, admin_user: Any, model: str, relation: str, page: str
) -> None:
    """A related model's link to this one is no field of this one a pop-up
    can name its choice by: Django looked for the primary key flag it has
    not (a 500). The refusal names the field."""
    pk = admin_user.pk if model == "auth/user" else ProductFactory().pk
    address = f"/admin/{model}/{page.format(pk=pk)}"

    response = admin_client.get(address, {"_to_field": relation, "_popup": "1"})

    assert response.status_code == 400
    assert f"_to_field={relation}" in response.content.decode()


def test_ensure_admin_takes_an_empty_username_as_unset(
    default_admin: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As an empty PORTAL_ADMIN_PASSWORD is: a line `PORTAL_ADMIN_USERNAME=` left in a .env file.
    monkeypatch.setenv("PORTAL_ADMIN_USERNAME", "")
    assert "user 'admin'" in ensure_admin()
    assert get_user_model().objects.get(username="admin").is_superuser


def test_ensure_admin_finds_the_account_of_a_username_written_in_another_unicode_form(
    default_admin: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The account stores its name in NFKC, as the login form reads it:
    looked up as written, the second run created it again, a traceback."""
    monkeypatch.setenv("PORTAL_ADMIN_USERNAME", "\uff43\uff48\uff49\uff45\uff46")  # "chief", full-width
    first, second = ensure_admin(), ensure_admin()
    assert "created: http://127.0.0.1:8000/admin/  user 'chief'  password" in first
    assert "exists: http://127.0.0.1:8000/admin/  user 'chief'  password" in second
    assert list(get_user_model().objects.values_list("username", flat=True)) == ["chief"]


@pytest.mark.parametrize(
    ("username", "reason"),
    [
        ("chief of staff", "Enter a valid username."),
        ("c" * 151, "Ensure this value has at most 150 characters (it has 151)."),
    ],
)
def test_ensure_admin_refuses_a_username_the_account_cannot_have(
    default_admin: Path, monkeypatch: pytest.MonkeyPatch, username: str, reason: str
) -> None:
    monkeypatch.setenv("PORTAL_ADMIN_USERNAME", username)
    monkeypatch.setenv("PORTAL_ADMIN_PASSWORD", "a-long-secret-42")
    _assert_ensure_admin_refuses("PORTAL_ADMIN_USERNAME", reason)
    assert not get_user_model().objects.exists()


@pytest.mark.parametrize(
    ("media_url", "address"),
    [
        ("https://cdn.example.com/assets/", "/assets/renditions/ab/abcdef.webp"),
        ("/media+v2/", "/media+v2/renditions/ab/abcdef.webp"),
        ("/media.v2/", "/media.v2/renditions/ab/abcdef.webp"),
    ],
    ids=["absolute, behind a CDN", "a plus sign", "a dot"],
)
def test_media_are_served_at_the_path_of_the_media_url(
    client: Client, settings: Any, media_url: str, address: str
) -> None:
    """A CDN in front of the portal fetches media from the path of an absolute
    MEDIA_URL; a path's own characters are matched as written."""
    folder = Path(settings.MEDIA_ROOT) / "renditions" / "ab"
    folder.mkdir(parents=True)
    (folder / "abcdef.webp").write_bytes(b"RIFF")
    settings.ROOT_URLCONF = (views.media_route(media_url), *portal_urls.urlpatterns)
    response = client.get(address)
    assert response.status_code == 200
    assert response["Content-Type"] == "image/webp"
    if media_url == "/media.v2/":  # a dot, not any character
        assert client.get(address.replace(".v2", "xv2")).status_code == 404
