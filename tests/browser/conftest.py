"""Playwright fixtures: one headless Chromium for the run, a fresh context and
page per test, screenshots of every step and of a failure, and console errors
and Content-Security-Policy violations turned into test failures."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Playwright, ViewportSize, sync_playwright
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Request as PlaywrightRequest

from tests.factories import jpeg_bytes
from uploads.models import Image
from uploads.services import image_upload


@pytest.fixture(scope="package", autouse=True)
def _allow_orm_beside_playwright() -> Iterator[None]:
    """Playwright's sync API runs an event loop in this thread; Django would
    then refuse the tests' ORM calls ("SynchronousOnlyOperation"). Set for the
    browser tests only, from before their database set-up to after its
    teardown."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        yield


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
# Runs in every document before the page's own scripts (Playwright's init
# scripts are outside the page's policy) and hands each violation of it,
# enforced or report-only, to the test.
CSP_LISTENER = """
document.addEventListener("securitypolicyviolation", (e) => {
  window.portalCspViolation(
    `${document.location.href}: ${e.effectiveDirective} (${e.disposition}) refused ` +
    `${e.blockedURI || "inline"} at ${e.sourceFile}:${e.lineNumber} sample ${JSON.stringify(e.sample)}`
  );
}, true);
"""
DESKTOP: ViewportSize = {"width": 1280, "height": 900}
TIMEOUT_MS = 15_000


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Keep each phase's report on the item, so fixtures can see a failure."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


# Package scope: the driver's event loop must stop once the browser tests are
# done, or Django would refuse the ORM calls of the tests that follow.
@pytest.fixture(scope="package")
def playwright_driver() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="package")
def browser(playwright_driver: Playwright) -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium is not installed at {CHROMIUM} (make system-deps installs it)")
    # launch() starts Chromium on a new, empty profile in a temporary folder,
    # deleted again by close(): nothing is kept from one run to the next.
    browser = playwright_driver.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@dataclass
class Browsing:
    """A page with what the test needs around it: the server's address, the
    folder for screenshots, and what the page logged or requested."""

    page: Page
    base_url: str
    shots: Path
    test_name: str
    console_errors: list[str] = field(default_factory=list)
    csp_violations: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    documents: set[str] = field(default_factory=set)
    step: int = 0

    def visit(self, path: str, step: str) -> None:
        """Open a page of the live server and save its screenshot."""
        response = self.page.goto(self.base_url + path)
        assert response is not None, f"no response for {path}"
        assert response.ok, f"{path} answered HTTP {response.status}"
        self.shot(step)

    def shot(self, step: str) -> Path:
        """Save a full-page screenshot as <test>-<nn>-<step>.png."""
        self.step += 1
        self.page.wait_for_load_state("load")
        path = self.shots / f"{self.test_name}-{self.step:02d}-{_slug(step)}.png"
        self.page.screenshot(path=path, full_page=True)
        self.assert_no_console_errors()
        return path

    def assert_no_console_errors(self) -> None:
        self.assert_no_csp_violations()
        assert not self.console_errors, "the page logged errors:\n" + "\n".join(self.console_errors)

    def assert_no_csp_violations(self) -> None:
        # A round trip first: a violation the page just reported reaches the
        # test before the answer to this does.
        if not self.page.is_closed():
            self.page.evaluate("() => 0")
        assert not self.csp_violations, "Content-Security-Policy violations:\n" + "\n".join(
            self.csp_violations
        )

    def assert_images_loaded(self, selector: str = "img", *, at_least: int = 1) -> int:
        """Scroll each matching image into view (they load lazily) and wait
        until the browser has decoded it; returns how many there were."""
        images = self.page.locator(selector)
        count = images.count()
        assert count >= at_least, f"expected at least {at_least} images for {selector!r}, found {count}"
        for index in range(count):
            image = images.nth(index)
            image.scroll_into_view_if_needed()
            handle = image.element_handle()
            try:
                self.page.wait_for_function(
                    "img => img.complete && img.naturalWidth > 0", arg=handle, timeout=TIMEOUT_MS
                )
            except PlaywrightError as exc:
                source = image.evaluate("img => img.currentSrc || img.src")
                raise AssertionError(f"image {source} did not load ({selector!r} #{index})") from exc
            source = image.evaluate("img => img.currentSrc")
            assert source.startswith(self.base_url + "/media/"), f"image came from {source}"
        self.page.evaluate("window.scrollTo(0, 0)")
        return count


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-")


@pytest.fixture
def browsing(
    browser: Browser, live_server: Any, artifacts: Path, request: pytest.FixtureRequest
) -> Iterator[Browsing]:
    """A new browser context (no cookies) and page on the live server.

    Console errors and uncaught exceptions fail the test; a failing test
    leaves a screenshot of where it stopped."""
    shots = artifacts / "browser"
    shots.mkdir(parents=True, exist_ok=True)
    test_name = _slug(request.node.name)
    for old in [*shots.glob(f"{test_name}-[0-9][0-9]-*.png"), shots / f"{test_name}-failure.png"]:
        old.unlink(missing_ok=True)
    context = browser.new_context(viewport=DESKTOP, base_url=live_server.url)
    context.set_default_timeout(TIMEOUT_MS)
    violations: list[str] = []

    def on_violation(text: str) -> None:
        # A function of its own: Playwright cannot wrap a built-in method.
        violations.append(text)

    context.expose_function("portalCspViolation", on_violation)
    context.add_init_script(CSP_LISTENER)
    page = context.new_page()
    state = Browsing(
        page=page, base_url=live_server.url, shots=shots, test_name=test_name, csp_violations=violations
    )

    def on_console(message: ConsoleMessage) -> None:
        # A page answered with an error status on purpose (a form shown again
        # with HTTP 400) makes Chromium log it; the tests check that status.
        if message.location.get("url") in state.documents and message.text.startswith(
            "Failed to load resource"
        ):
            return
        if message.type == "error":
            state.console_errors.append(f"{page.url}: console error: {message.text} {message.location}")

    def on_page_error(error: PlaywrightError) -> None:
        state.console_errors.append(f"{page.url}: uncaught {error.name}: {error.message}")

    def on_request(req: PlaywrightRequest) -> None:
        state.requests.append(req.url)
        if req.is_navigation_request():
            state.documents.add(req.url)

    page.on("console", on_console)
    page.on("pageerror", on_page_error)
    page.on("request", on_request)
    yield state

    call = getattr(request.node, "report_call", None)
    if call is not None and call.failed:
        with contextlib.suppress(PlaywrightError):
            page.screenshot(path=shots / f"{test_name}-failure.png", full_page=True)
    context.close()
    if call is not None and call.passed:
        state.assert_no_console_errors()


@pytest.fixture
def page(browsing: Browsing) -> Page:
    return browsing.page


@pytest.fixture
def ready_image(transactional_db: None) -> Callable[..., Image]:
    """Uploads a JPEG made in memory; with no broker the processing runs right
    after the row commits, so the image comes back ready with its renditions."""

    def make(name: str, *, color: tuple[int, int, int] = (200, 60, 40), alt: str = "") -> Image:
        image = image_upload(file=jpeg_bytes((900, 600), color), original_name=name, alt=alt)
        image.refresh_from_db()
        assert image.status == Image.Status.READY, f"{name} is {image.status}: {image.error}"
        assert image.renditions.exists()
        return image

    return make
