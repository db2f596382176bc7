"""Every kind of page the portal serves works under its Content-Security-Policy:
the browser reports no violation (a ``securitypolicyviolation`` event, which
the ``browsing`` fixture collects) on the public pages, the API's pages and
docs, and the admin's lists, forms, actions, imports, exports, uploads and
focal point editor."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.test import RequestFactory
from playwright.sync_api import FilePayload, expect

from catalog.models import Product
from tests.browser.conftest import Browsing
from tests.factories import FeedbackFactory, PersonFactory, ProductFactory, api_key
from uploads.models import Image

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "a long admin passphrase"


@pytest.fixture
def content(ready_image: Callable[..., Image]) -> dict[str, Any]:
    """A row of each kind, with pictures where the pages show them."""
    person = PersonFactory.create(
        name="Ada Lovelace", username="ada", department="Engineering", photo=ready_image("ada.jpg")
    )
    product = ProductFactory.create(
        name="Honeycrisp Apples", image=ready_image("001.jpeg", color=(190, 30, 40), alt="Apples")
    )
    FeedbackFactory.create(title="Crunchy", product=product, rating=4)
    boss = get_user_model().objects.create_superuser("boss", "boss@example.com", PASSWORD)
    api_key(boss)
    return {"person": person, "product": product, "boss": boss}


def _check(browsing: Browsing, path: str, step: str, *, status: int = 200) -> None:
    """Open a page, let its scripts finish, and fail on any violation."""
    response = browsing.page.goto(browsing.base_url + path)
    assert response is not None, f"no response for {path}"
    assert response.status == status, f"{path} answered HTTP {response.status}"
    browsing.page.wait_for_load_state("networkidle")
    browsing.shot(step)  # fails on violations and console errors


def test_public_pages_and_the_api_pages_break_no_rule_of_the_policy(
    browsing: Browsing, content: dict[str, Any]
) -> None:
    product: Product = content["product"]
    pages = {
        "home": "/",
        "people": "/people/",
        "people-search": "/people/?q=engineer",
        "person": "/people/ada/",
        "catalog": "/catalog/",
        "product": f"/catalog/{product.pk}/",
        "reviews": "/reviews/",
        "review-form": "/reviews/new/",
        "api-root": "/api/v1/",
        "api-list": "/api/v1/products/",
        "api-detail": f"/api/v1/products/{product.pk}/",
    }
    for step, path in pages.items():
        _check(browsing, path, step)
        if browsing.page.locator("main img").count():
            browsing.assert_images_loaded("main img")
    _check(browsing, "/nowhere/", "not-found", status=404)

    # A review refused (no rating) shows the form again, with its errors.
    _check(browsing, "/reviews/new/", "review-form-again")
    browsing.page.get_by_role("button", name="Send review").click()
    expect(browsing.page.get_by_role("alert").first).to_be_visible()
    browsing.assert_no_csp_violations()

    # Swagger UI draws itself with script after the load: wait for it.
    _check(browsing, "/api/docs/", "api-docs")
    expect(browsing.page.locator(".opblock").first).to_be_visible()
    browsing.page.locator(".opblock-summary").first.click()
    expect(browsing.page.locator(".opblock-body").first).to_be_visible()
    browsing.shot("api-docs-operation")


def test_every_admin_page_breaks_no_rule_of_the_policy(browsing: Browsing, content: dict[str, Any]) -> None:
    page = browsing.page
    _check(browsing, "/admin/login/", "login")
    page.get_by_label("Username").fill("boss")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/admin/$"))
    browsing.assert_no_csp_violations()

    # Each registered model: its list, add form, a row's change form, history
    # and delete confirmation.
    boss_request = RequestFactory().get("/admin/")
    boss_request.user = content["boss"]
    for model, model_admin in admin.site._registry.items():
        opts = model._meta
        base = f"/admin/{opts.app_label}/{opts.model_name}/"
        _check(browsing, base, f"{opts.model_name}-list")
        if model_admin.has_add_permission(boss_request):
            _check(browsing, base + "add/", f"{opts.model_name}-add")
        row = model._default_manager.first()
        if row is not None:
            for view in ("change/", "history/", "delete/"):
                _check(browsing, f"{base}{row.pk}/{view}", f"{opts.model_name}-{view.strip('/')}")

    # The image's focal point editor: a click moves the point and the crop.
    image = Image.objects.filter(products__isnull=False).first() or Image.objects.first()
    assert image is not None
    _check(browsing, f"/admin/uploads/image/{image.pk}/change/", "focal-editor")
    picture = page.locator("[data-focal-editor] .focal-editor-image")
    box = picture.bounding_box()
    assert box is not None
    picture.click(position={"x": box["width"] * 0.2, "y": box["height"] * 0.3})
    expect(page.locator(".focal-editor-state")).to_have_text("Set by staff.")
    browsing.assert_no_csp_violations()

    # Actions: the delete confirmation of selected rows, and one that acts.
    _check(browsing, "/admin/catalog/product/", "product-list-for-action")
    page.locator("#action-toggle").check()
    page.locator("select[name=action]").select_option("delete_selected")
    page.locator("button[name=index]").first.click()
    expect(page.locator("#content h1")).to_have_text("Delete multiple objects")
    browsing.shot("delete-selected")
    _check(browsing, "/admin/catalog/feedback/", "feedback-list-for-action")
    page.locator("#action-toggle").check()
    page.locator("select[name=action]").select_option("hide")
    page.locator("button[name=index]").first.click()
    expect(page.locator(".messagelist")).to_be_visible()
    browsing.shot("action-done")

    # Import: the form, then the preview of a file.
    _check(browsing, "/admin/catalog/person/import/", "import")
    people_csv: FilePayload = {
        "name": "people.csv",
        "mimeType": "text/csv",
        "buffer": b"name,username,department\nGrace Hopper,grace,Engineering\n",
    }
    page.locator("input[type=file]").set_input_files(people_csv)
    page.locator("select[name=format]").select_option(label="csv")
    page.locator("input[type=submit]").first.click()
    expect(page.locator(".import-summary")).to_be_visible()
    browsing.shot("import-preview")

    # Export, with its "Select all" box (an inline handler, allowed by its hash).
    _check(browsing, "/admin/catalog/person/export/", "export")
    page.locator("input.select-toggle").uncheck()
    expect(
        page.locator(".selectable-field-export-row input[type=checkbox]:visible").first
    ).not_to_be_checked()
    browsing.assert_no_csp_violations()

    # The reviews' "Export selected" action leads to the same page.
    _check(browsing, "/admin/catalog/feedback/", "feedback-list-for-export")
    page.locator("#action-toggle").check()
    page.locator("select[name=action]").select_option("export_admin_action")
    page.locator("button[name=index]").first.click()
    expect(page).to_have_url(re.compile(r"/admin/catalog/feedback/export/"))
    page.locator("input.select-toggle").uncheck()
    browsing.shot("feedback-export-selected")

    _check(browsing, "/admin/uploads/image/upload/", "image-upload")
    _check(browsing, "/admin/password_change/", "password-change")
