"""The public pages checked by axe-core against WCAG 2.1 A and AA, and by
keyboard and zoom where a rule engine cannot see: on a phone and a desktop,
with the demo content and with an empty site, and the review form shown
again with its errors.

axe-core comes inside the pip package and is run in the page: the checks ask
nothing of the network, and the tests make sure of it."""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission, User
from django.core.management import call_command
from django.test import RequestFactory
from playwright.sync_api import Browser, Page, ViewportSize, expect

from catalog.models import Person, Product
from tests.browser.conftest import Browsing
from tests.factories import FeedbackFactory, PersonFactory, ProductFactory, api_key
from uploads.models import Image

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

VIEWPORTS: dict[str, ViewportSize] = {
    "phone": {"width": 390, "height": 844},
    "desktop": {"width": 1280, "height": 900},
}
# The success criteria of WCAG 2.1 levels A and AA; axe's best practices and
# experimental rules are left out.
WCAG_21_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
FAILING_IMPACTS = {"serious", "critical"}
AXE = Axe()
# The media rules of the page's style sheets, their imports included, that
# apply to one orientation alone (WCAG 1.3.4, axe's css-orientation-lock).
ORIENTATION_LOCKS = """() => {
    const locks = [];
    const walk = rules => {
        for (const rule of rules) {
            if (rule instanceof CSSImportRule && rule.styleSheet) walk(rule.styleSheet.cssRules);
            else if (rule instanceof CSSMediaRule) {
                if (/orientation/i.test(rule.conditionText)) locks.push(rule.cssText.slice(0, 120));
                walk(rule.cssRules);
            }
        }
    };
    for (const sheet of document.styleSheets) walk(sheet.cssRules);
    return locks;
}"""


@pytest.fixture
def demo_site(django_capture_on_commit_callbacks: Any) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        call_command("seed_demo", stdout=io.StringIO())
    assert Person.objects.exists()
    assert Product.objects.filter(image__isnull=False).exists()
    # What the demo has none of: a person without a photo, a product without
    # a picture, a photo still being processed, a review in a right-to-left
    # script. The product is one of the demo's: a real one would hide them.
    PersonFactory.create(
        name="Grace Hopper", username="grace", department="Engineering", role="Compiler Lead"
    )
    ProductFactory.create(name="Bartlett Pears", weight=300, is_demo=True)
    photo = Person.objects.filter(photo__isnull=False).order_by("-pk").values_list("photo", flat=True).first()
    Image.objects.filter(pk=photo).update(status=Image.Status.PENDING)
    FeedbackFactory.create(title="תפוחים טובים", name="נועה", text="פריכים ומתוקים.", rating=4)


def _public_pages(*, demo: bool) -> dict[str, str]:
    pages = {
        "home": "/",
        "people": "/people/",
        "people-search": "/people/?q=engineer",
        "people-no-result": "/people/?q=nobody-by-this-name",
        "catalog": "/catalog/",
        "reviews": "/reviews/",
        "review-form": "/reviews/new/",
    }
    if demo:
        person = Person.objects.filter(is_active=True, photo__isnull=False).order_by("pk").first()
        product = Product.objects.filter(image__isnull=False).order_by("pk").first()
        assert person is not None
        assert product is not None
        pages |= {
            "person": f"/people/{person.username}/",
            "product": product.get_absolute_url(),
            "product-review-form": f"/reviews/new/?product={product.pk}",
            "reviews-page-2": "/reviews/?page=2",
            "person-without-photo": "/people/grace/",
            "product-without-picture": Product.objects.get(name="Bartlett Pears").get_absolute_url(),
        }
    return pages


def _violations(browsing: Browsing, *, skip: tuple[str, ...] = (), imports: bool = False) -> list[str]:
    """Runs axe on the page as it is; returns the serious and critical
    violations, one line per element, and checks that axe fetched nothing.

    ``skip`` turns off rules for this page alone (each caller says why).
    ``imports`` is for a page whose style sheets ``@import`` others (Django
    admin's forms.css imports widgets.css): axe would fetch each import again,
    resolved against the page's address rather than the sheet's, and put it
    into the page as a style element, which the page's policy refuses. Its
    CSS is not preloaded then, and the one rule reading it,
    css-orientation-lock, is checked here on the sheets the page has."""
    page = browsing.page
    requests_before = len(browsing.requests)
    options: dict[str, Any] = {
        "runOnly": {"type": "tag", "values": WCAG_21_AA},
        "resultTypes": ["violations"],
    }
    if skip:
        options["rules"] = {rule: {"enabled": False} for rule in skip}
    if imports:
        options["preload"] = False
    results = AXE.run(page, options=options)
    assert browsing.requests[requests_before:] == [], (
        f"axe made requests: {browsing.requests[requests_before:]}"
    )
    found = (
        [f"{page.url} css-orientation-lock: {rule}" for rule in page.evaluate(ORIENTATION_LOCKS)]
        if imports
        else []
    )
    for violation in results.response["violations"]:
        if violation["impact"] not in FAILING_IMPACTS:
            continue
        for node in violation["nodes"]:
            found.append(
                f"{page.url} [{page.viewport_size}] {violation['id']} ({violation['impact']}): "
                f"{node['failureSummary'].splitlines()[-1].strip()} :: {node['html'][:160]}"
            )
    return found


def _audit(browsing: Browsing, pages: dict[str, str]) -> list[str]:
    page = browsing.page
    found: list[str] = []
    for viewport_name, viewport in VIEWPORTS.items():
        page.set_viewport_size(viewport)
        for name, path in pages.items():
            browsing.visit(path, f"{viewport_name}-{name}")
            found += _violations(browsing)
        # The review form as it comes back with its errors (its fields found
        # by name: a missing label is for axe to report).
        browsing.visit("/reviews/new/", f"{viewport_name}-review-form-again")
        page.locator("[name=name]").fill("Jamie Rivera")
        page.locator("[name=rating]").fill("9")
        page.get_by_role("button", name="Send review").click()
        expect(page.locator(".field.has-error").first).to_be_visible()
        browsing.shot(f"{viewport_name}-review-form-errors")
        found += _violations(browsing)
        # Corrected and sent: the list with its thank-you and the review marked.
        page.locator("[name=title]").fill(f"Sent from a {viewport_name}")
        page.locator("[name=rating]").fill("4")
        page.locator("[name=text]").fill("Arrived ripe.")
        page.get_by_role("button", name="Send review").click()
        expect(page.locator("article.review-highlight")).to_be_visible()
        browsing.shot(f"{viewport_name}-review-sent")
        found += _violations(browsing)
        # A page that is not there.
        response = page.goto(browsing.base_url + "/catalog/999999/")
        assert response is not None
        assert response.status == 404
        browsing.shot(f"{viewport_name}-not-found")
        found += _violations(browsing)
    # Nothing but the portal itself: axe and the pages load nothing from elsewhere.
    outside = [url for url in browsing.requests if not url.startswith((browsing.base_url, "data:"))]
    assert not outside, f"requests outside the portal: {outside}"
    return found


def test_the_public_pages_with_the_demo_content_pass_axe(browsing: Browsing, demo_site: None) -> None:
    found = _audit(browsing, _public_pages(demo=True))
    assert not found, "accessibility violations:\n" + "\n".join(found)


def test_the_public_pages_of_an_empty_site_pass_axe(browsing: Browsing) -> None:
    found = _audit(browsing, _public_pages(demo=False))
    assert not found, "accessibility violations:\n" + "\n".join(found)


# --- What axe cannot see -------------------------------------------------------

TABBABLE = (
    "a[href], button:not([disabled]), input:not([type=hidden]):not([disabled]), select:not([disabled]), "
    "textarea:not([disabled]), [tabindex]:not([tabindex='-1'])"
)
# Each control the keyboard can reach, in the order of the page, as a short
# description; hidden ones and those taken out of the tab order left out.
TAB_STOPS_JS = f"""() => [...document.querySelectorAll({TABBABLE!r})]
    .filter(e => e.tabIndex >= 0 && e.checkVisibility({{visibilityProperty: true}}) && !e.closest('[aria-hidden=true], [inert]'))
    .map(e => e.outerHTML.slice(0, 90))"""
FOCUSED_JS = """() => {
    const e = document.activeElement;
    if (!e || e === document.body) return null;
    const box = e.getBoundingClientRect();
    const x = Math.min(Math.max(box.left + box.width / 2, 0), innerWidth - 1);
    const y = Math.min(Math.max(box.top + Math.min(box.height / 2, 10), 0), innerHeight - 1);
    const top = document.elementFromPoint(x, y);
    return {
        html: e.outerHTML.slice(0, 90),
        inView: box.bottom > 0 && box.top < innerHeight && box.right > 0 && box.left < innerWidth,
        onTop: !!top && (e === top || e.contains(top) || top.contains(e)),
    };
}"""


def _walk_by_keyboard(browsing: Browsing) -> list[str]:
    """Tabs through the page from its top; returns what went wrong: a control
    missed or reached out of the page's order, or focus on something out of
    sight or covered by another element."""
    page = browsing.page
    expected: list[str] = page.evaluate(TAB_STOPS_JS)
    page.evaluate("document.activeElement?.blur(); window.scrollTo(0, 0)")
    reached: list[str] = []
    problems = []
    # A date field takes three presses (month, day, year): count it once.
    for _ in range(3 * len(expected) + 3):
        page.keyboard.press("Tab")
        focused = page.evaluate(FOCUSED_JS)
        if focused is None or (reached and focused["html"] == reached[0]):
            break  # past the last control: out of the page
        if not (focused["inView"] and focused["onTop"]):
            problems.append(f"{page.url}: focus on {focused['html']} is out of sight or covered")
        if not reached or focused["html"] != reached[-1]:
            reached.append(focused["html"])
    if reached != expected:
        problems.append(f"{page.url}: the keyboard reached\n  {reached}\nin place of\n  {expected}")
    return problems


def _lost_content(page: Page) -> list[str]:
    """Sideways scrolling or text cut off by its box."""
    return page.evaluate(
        """() => {
        const lost = [];
        const root = document.scrollingElement;
        if (root.scrollWidth > root.clientWidth + 1) lost.push(`page ${root.scrollWidth} px wide in ${root.clientWidth}`);
        for (const e of document.body.querySelectorAll('*')) {
            const style = getComputedStyle(e);
            if (!e.checkVisibility() || e.closest('.skip, .hp')) continue;
            const clips = ['hidden', 'clip'].includes(style.overflowX) || ['hidden', 'clip'].includes(style.overflowY);
            if (clips && e.textContent.trim() && !e.matches('picture, img, .picture-placeholder')
                && (e.scrollWidth > e.clientWidth + 1 || e.scrollHeight > e.clientHeight + 1)) {
                lost.push(`cut off: ${e.outerHTML.slice(0, 90)}`);
            }
        }
        return lost;
    }"""
    )


def test_every_public_page_by_keyboard_and_at_twice_the_zoom(
    browsing: Browsing, browser: Browser, live_server: Any, demo_site: None
) -> None:
    pages = _public_pages(demo=True)
    page = browsing.page
    problems: list[str] = []
    for viewport_name, viewport in VIEWPORTS.items():
        page.set_viewport_size(viewport)
        for name, path in pages.items():
            browsing.visit(path, f"{viewport_name}-{name}")
            problems += _walk_by_keyboard(browsing)
    # 200 % zoom of a 1280 px window: 640 CSS pixels at two device pixels each.
    zoomed = browser.new_context(viewport={"width": 640, "height": 450}, device_scale_factor=2)
    try:
        zoomed_page = zoomed.new_page()
        for name, path in pages.items():
            zoomed_page.goto(live_server.url + path)
            zoomed_page.screenshot(
                path=browsing.shots / f"{browsing.test_name}-zoom-{name}.png", full_page=True
            )
            problems += [f"{path} at 200 %: {lost}" for lost in _lost_content(zoomed_page)]
    finally:
        zoomed.close()
    assert not problems, "\n".join(problems)


@pytest.fixture
def processing_photo(ready_image: Callable[..., Image]) -> Person:
    """A person whose photo is still being processed: its placeholder shimmers."""
    photo = ready_image("ada.jpg", color=(40, 90, 160))
    Image.objects.filter(pk=photo.pk).update(status=Image.Status.PENDING)
    return PersonFactory.create(name="Ada Lovelace", username="ada", department="Engineering", photo=photo)


def test_nothing_moves_for_a_visitor_who_asks_for_less_motion(
    browsing: Browsing, processing_photo: Person
) -> None:
    page = browsing.page
    running = "() => document.getAnimations().filter(a => a.playState === 'running').length"
    browsing.visit("/people/", "motion")
    assert page.evaluate(running) > 0, "nothing animates: the check below would prove nothing"
    page.emulate_media(reduced_motion="reduce")
    for path in ("/", "/people/", "/people/ada/"):
        browsing.visit(path, "reduced-motion")
        assert page.evaluate(running) == 0, f"{path} animates for a visitor who asked for less motion"


def test_the_rating_stars_stand_out_from_their_background(browsing: Browsing) -> None:
    """A rating is a picture of stars (role img): WCAG 1.4.11 asks 3:1 of it
    against what is behind it, which axe leaves for a person to judge."""
    FeedbackFactory.create(title="Crunchy", rating=4)
    browsing.visit("/", "ratings-home")
    browsing.visit("/reviews/", "ratings")
    ratios = browsing.page.evaluate(
        """() => {
        const rgb = c => c.match(/[\\d.]+/g).map(Number);
        const lum = ([r, g, b]) => [r, g, b].map(v => v / 255)
            .map(v => v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4)
            .reduce((sum, v, i) => sum + v * [0.2126, 0.7152, 0.0722][i], 0);
        return [...document.querySelectorAll('.rating')].map(star => {
            let back = star;
            while (back && rgb(getComputedStyle(back).backgroundColor)[3] === 0) back = back.parentElement;
            const [a, b] = [lum(rgb(getComputedStyle(star).color)), lum(rgb(getComputedStyle(back || document.body).backgroundColor))];
            return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
        });
    }"""
    )
    assert ratios, "no ratings on the page"
    assert min(ratios) >= 3, f"stars at a contrast of {min(ratios):.2f}:1"


# --- The admin and the API docs ------------------------------------------------

ADMIN_PASSWORD = "a long admin passphrase"
# Django's "Choose permissions" widget (SelectFilter2.js, filter_horizontal)
# draws its search box's help icon as a span with an aria-label and no role,
# which axe rightly refuses; the icon is made by Django's script after the
# page loads, with nothing a template or style sheet could change. The
# search box it sits beside has its own label, so nothing is lost to a
# screen reader. Only on the pages with that widget.
SELECT_FILTER = ("aria-prohibited-attr",)


@pytest.fixture
def admin_content(ready_image: Callable[..., Image]) -> dict[str, Any]:
    """Two rows of each kind, pictures with their renditions, a token, a group."""

    photo = ready_image("ada.jpg", alt="Ada at her desk")
    person = PersonFactory.create(name="Ada Lovelace", username="ada", department="Engineering", photo=photo)
    PersonFactory.create(name="Grace Hopper", username="grace", department="Research", role="Lead")
    product = ProductFactory.create(
        name="Honeycrisp Apples", image=ready_image("001.jpeg", color=(190, 30, 40), alt="Apples")
    )
    ProductFactory.create(name="Bartlett Pears", weight=300)
    FeedbackFactory.create(title="Crunchy", product=product, rating=4)
    FeedbackFactory.create(title="Too sweet", rating=2)
    boss = get_user_model().objects.create_superuser("boss", "boss@example.com", ADMIN_PASSWORD)
    api_key(boss)
    editors = Group.objects.create(name="Editors")
    editors.permissions.set(Permission.objects.filter(codename__endswith="_product"))
    return {"person": person, "product": product, "photo": photo, "boss": boss}


def _admin_pages(boss: Any) -> dict[str, tuple[str, tuple[str, ...]]]:
    """Each page of the admin: its address and the rules it skips."""

    request = RequestFactory().get("/admin/")
    request.user = boss
    pages: dict[str, tuple[str, tuple[str, ...]]] = {"index": ("/admin/", ())}
    for model, model_admin in admin.site._registry.items():
        opts = model._meta
        base = f"/admin/{opts.app_label}/{opts.model_name}/"
        skip = SELECT_FILTER if model in (User, Group) else ()
        pages[f"{opts.model_name}-list"] = (base, ())
        if model_admin.get_search_fields(request):
            pages[f"{opts.model_name}-search"] = (base + "?q=a", ())
        if model_admin.has_add_permission(request):
            pages[f"{opts.model_name}-add"] = (base + "add/", skip if model is Group else ())
        row = model._default_manager.order_by("pk").first()
        assert row is not None, f"no {opts.verbose_name} to show"
        pages[f"{opts.model_name}-change"] = (f"{base}{row.pk}/change/", skip)
        pages[f"{opts.model_name}-history"] = (f"{base}{row.pk}/history/", ())
        pages[f"{opts.model_name}-delete"] = (f"{base}{row.pk}/delete/", ())
    pages |= {
        "person-filtered": ("/admin/catalog/person/?department=Engineering&is_active__exact=1&q=ada", ()),
        "feedback-filtered": ("/admin/catalog/feedback/?rating=4&status__exact=published", ()),
        "image-filtered": ("/admin/uploads/image/?format__exact=jpeg&q=ada", ()),
        "nothing-found": ("/admin/catalog/product/?q=nothing-by-this-name", ()),
        "person-import": ("/admin/catalog/person/import/", ()),
        "person-export": ("/admin/catalog/person/export/", ()),
        "image-upload": ("/admin/uploads/image/upload/", ()),
        "password-change": ("/admin/password_change/", ()),
    }
    return pages


def test_the_admin_pages_pass_axe(browsing: Browsing, admin_content: dict[str, Any]) -> None:
    page = browsing.page
    found: list[str] = []
    browsing.visit("/admin/login/", "admin-login")
    found += _violations(browsing, imports=True)
    page.get_by_label("Username").fill("boss")
    page.get_by_label("Password").fill("not the passphrase")
    page.get_by_role("button", name="Log in").click()
    expect(page.locator(".errornote")).to_be_visible()
    browsing.shot("admin-login-refused")
    found += _violations(browsing, imports=True)
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/admin/$"))

    for name, (path, skip) in _admin_pages(admin_content["boss"]).items():
        browsing.visit(path, f"admin-{name}")
        found += _violations(browsing, skip=skip, imports=True)

    # The focal point editor, drawn by its script, after a click has moved it.
    browsing.visit(f"/admin/uploads/image/{admin_content['photo'].pk}/change/", "admin-focal-editor")
    picture = page.locator("[data-focal-editor] .focal-editor-image")
    box = picture.bounding_box()
    assert box is not None
    picture.click(position={"x": box["width"] * 0.2, "y": box["height"] * 0.3})
    expect(page.locator(".focal-editor-state")).to_have_text("Set by staff.")
    browsing.shot("admin-focal-editor-moved")
    found += _violations(browsing, imports=True)

    # A form sent back with its errors: a product with no name, a user with
    # a date that is none.
    browsing.visit("/admin/catalog/product/add/", "admin-product-add-again")
    page.locator("input[name=_save]").click()
    expect(page.locator(".errornote")).to_be_visible()
    browsing.shot("admin-product-add-errors")
    found += _violations(browsing, imports=True)
    browsing.visit(f"/admin/auth/user/{admin_content['boss'].pk}/change/", "admin-user-change-again")
    page.locator("[name=date_joined_0]").fill("not a date")
    page.locator("input[name=_save]").click()
    expect(page.locator(".errornote")).to_be_visible()
    browsing.shot("admin-user-change-errors")
    found += _violations(browsing, skip=SELECT_FILTER, imports=True)

    # The import's preview of a file, and a file it refuses.
    for name, body in {
        "preview": b"name,username,department\nAlan Turing,alan,Research\n",
        "refused": b"\xff\xfe",
    }.items():
        browsing.visit("/admin/catalog/person/import/", f"admin-import-{name}")
        page.locator("input[type=file]").set_input_files(
            {"name": "people.csv", "mimeType": "text/csv", "buffer": body}
        )
        page.locator("select[name=format]").select_option(label="csv")
        page.locator("input[type=submit]").first.click()
        page.wait_for_load_state("load")
        browsing.shot(f"admin-import-{name}-sent")
        found += _violations(browsing, imports=True)
    assert not found, "accessibility violations:\n" + "\n".join(found)


# Swagger UI draws each operation's summary as a button holding other
# controls (the copy-to-clipboard and lock buttons), which a screen reader
# cannot reach one by one; the markup is made by its script, with nothing a
# template or style sheet could change. Only on the API docs.
SWAGGER_SUMMARY = ("nested-interactive",)
# An operation's parameters that are a choice are drop-downs with no label
# (the parameter's name is text beside them), made by the same script.
SWAGGER_OPERATION = (*SWAGGER_SUMMARY, "select-name")


def test_the_api_docs_pass_axe(browsing: Browsing) -> None:
    page = browsing.page
    browsing.visit("/api/docs/", "api-docs")
    # Swagger UI draws itself with script after the load.
    expect(page.locator(".opblock").first).to_be_visible()
    browsing.shot("api-docs-drawn")
    found = _violations(browsing, skip=SWAGGER_SUMMARY)
    page.locator(".opblock-summary").first.click()
    expect(page.locator(".opblock-body").first).to_be_visible()
    browsing.shot("api-docs-operation")
    found += _violations(browsing, skip=SWAGGER_OPERATION)
    assert not found, "accessibility violations:\n" + "\n".join(found)
