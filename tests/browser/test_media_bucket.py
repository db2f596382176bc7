"""Pictures from a real bucket (SeaweedFS's S3) on the public pages and in the
admin, under the site's Content-Security-Policy as it stands with media in S3
configured the way the README says (AWS_STORAGE_BUCKET_NAME, the endpoint,
path-style addresses) and nothing else: the policy names the bucket's origin
by itself, the browser shows every rendition and reports no violation."""

from __future__ import annotations

import io
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from playwright.sync_api import expect
from pytest_django.live_server_helper import LiveServer

from tests.browser.conftest import TIMEOUT_MS, Browsing
from tests.factories import PersonFactory, ProductFactory
from tests.servers import S3Server
from uploads.models import Image

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.django_db(transaction=True)]

PASSWORD = "a long admin passphrase"


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    with S3Server() as server:
        yield server


# After the media set in a temporary folder for every test (pytest-django asks
# for live_server before the other fixtures).
@pytest.fixture
def live_server(s3: S3Server, settings: Any, _media_in_tmp: None) -> Iterator[LiveServer]:
    """The portal with its media in a bucket of its own and originals in a
    private one, as production sets them up, started after the settings so
    that its policy is made from them (as a server's is at start-up)."""
    media = s3.create_bucket(f"media-{time.monotonic_ns()}")
    private = s3.create_bucket(f"{media}-private")
    settings.STORAGES = {
        **settings.STORAGES,
        "default": s3.storage_backend(media),
        "originals": s3.storage_backend(private, querystring_auth=True, custom_domain=None),
    }
    assert not settings.CSP_IMG_SOURCES, "the bucket must be allowed without PORTAL_CSP_IMG_SOURCES"
    call_command("media_bucket_policy", "--apply", stdout=io.StringIO())
    server = LiveServer("localhost")
    yield server
    server.stop()


def _renditions_shown(browsing: Browsing, selector: str, bucket_url: str) -> int:
    """Scroll each picture into view (they load lazily), wait until the
    browser has decoded it, and check it came from the bucket."""
    page = browsing.page
    images = page.locator(selector)
    count = images.count()
    assert count >= 1, f"no pictures for {selector!r} on {page.url}"
    for index in range(count):
        image = images.nth(index)
        image.scroll_into_view_if_needed()
        page.wait_for_function(
            "img => img.complete && img.naturalWidth > 0", arg=image.element_handle(), timeout=TIMEOUT_MS
        )
        source = image.evaluate("img => img.currentSrc")
        assert source.startswith(bucket_url), f"{page.url}: picture #{index} came from {source}"
    browsing.assert_no_csp_violations()
    return count


def test_pictures_from_the_bucket_show_under_the_policy(
    browsing: Browsing, s3: S3Server, ready_image: Callable[..., Image]
) -> None:
    photo = ready_image("ada.jpg", alt="Ada at her desk")
    picture = ready_image("apples.jpg", color=(190, 30, 40), alt="Apples")
    urls = [r.url for r in photo.renditions.all()]
    assert urls, "no renditions"
    assert all(url.startswith(s3.endpoint_url) for url in urls), urls
    PersonFactory.create(name="Ada Lovelace", username="ada", department="Engineering", photo=photo)
    product = ProductFactory.create(name="Honeycrisp Apples", image=picture)
    get_user_model().objects.create_superuser("boss", "boss@example.com", PASSWORD)
    page = browsing.page
    policy = page.request.get(browsing.base_url + "/").headers["content-security-policy"]
    assert re.search(rf"img-src [^;]*{re.escape(s3.endpoint_url)}", policy), policy

    for path in ("/", "/people/", "/people/ada/", "/catalog/", product.get_absolute_url()):
        browsing.visit(path, f"public-{path.strip('/').replace('/', '-') or 'home'}")
        _renditions_shown(browsing, "main img", s3.endpoint_url)

    browsing.visit("/admin/login/", "admin-login")
    page.get_by_label("Username").fill("boss")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/admin/$"))
    for path in ("/admin/catalog/person/", "/admin/catalog/product/", "/admin/uploads/image/"):
        browsing.visit(path, f"admin-{path.strip('/').replace('/', '-')}")
        _renditions_shown(browsing, "#result_list a > img", s3.endpoint_url)
    # The focal point editor draws the picture itself.
    browsing.visit(f"/admin/uploads/image/{photo.pk}/change/", "admin-focal-editor")
    _renditions_shown(browsing, "[data-focal-editor] img", s3.endpoint_url)
