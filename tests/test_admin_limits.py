"""The admin's lists refuse, naming the limit, what the database would
refuse to answer (and the site would call an outage)."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib import admin
from django.db import models
from django.test import Client
from django.urls import reverse

from catalog.models import Feedback
from core.admin_limits import (
    DateHierarchyMixin,
    IndexOrderedChangeList,
    IndexOrderedMixin,
    OpenEndedDrillDownChangeList,
)
from tests.factories import PersonFactory, ProductFactory

pytestmark = pytest.mark.django_db


def searchable_lists() -> list[str]:
    admin.autodiscover()
    return sorted(
        reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        for model, model_admin in admin.site._registry.items()
        if model_admin.search_fields
    )


def test_every_list_with_a_search_is_held_to_the_limit() -> None:
    assert {
        "/admin/auth/group/",
        "/admin/auth/user/",
        "/admin/authtoken/tokenproxy/",
        "/admin/catalog/feedback/",
        "/admin/catalog/person/",
        "/admin/catalog/product/",
        "/admin/uploads/image/",
    } <= set(searchable_lists())


@pytest.mark.parametrize("changelist", searchable_lists())
def test_a_search_of_too_many_words_is_a_400_naming_the_limit(admin_client: Client, changelist: str) -> None:
    # A thousand words is a query SQLite refuses ("Expression tree is too large").
    response = admin_client.get(changelist, {"q": "a " * 1000})

    assert response.status_code == 400
    assert "At most 20 words may be searched for; 1000 were given." in response.content.decode()
    assert admin_client.get(changelist, {"q": "a " * 21}).status_code == 400
    assert admin_client.get(changelist, {"q": " ".join(["a"] * 20)}).status_code == 200


def test_a_phrase_in_quotes_counts_as_one_word_as_the_search_reads_it(admin_client: Client) -> None:
    phrase = '"' + " ".join(["word"] * 40) + '"'
    response = admin_client.get("/admin/catalog/feedback/", {"q": f"{phrase} other"})
    assert response.status_code == 200


def test_the_search_box_states_the_limit(admin_client: Client, settings: Any) -> None:
    page = admin_client.get("/admin/catalog/product/").content.decode()
    assert "at most 20 words" in page


def test_the_admin_search_typed_decomposed_finds_the_name_stored_composed(admin_client: Client) -> None:
    PersonFactory(username="jos\u00e9", name="Jos\u00e9 Mart\u00ednez")
    PersonFactory(username="jose", name="Jose Other")

    page = admin_client.get("/admin/catalog/person/", {"q": "Jose\u0301"}).content.decode()
    assert "Jos\u00e9 Mart\u00ednez" in page
    assert "Jose Other" not in page
    # The search of a link's choice (autocomplete) reads it as the list does.
    search = {"app_label": "catalog", "model_name": "feedback", "field_name": "product"}
    ProductFactory(name="Cr\u00e8me")
    ProductFactory(name="Creme")
    found = admin_client.get("/admin/autocomplete/", {**search, "term": "Cre\u0300me"}).json()
    assert [choice["text"] for choice in found["results"]] == ["Cr\u00e8me"]


def lists_with_a_date_hierarchy() -> list[tuple[str, str]]:
    admin.autodiscover()
    return sorted(
        (
            reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist"),
            model_admin.date_hierarchy,
        )
        for model, model_admin in admin.site._registry.items()
        if model_admin.date_hierarchy
    )


HUGE = "9" * 30

DRILL_DOWNS_PAST_ANY_DATE = pytest.mark.parametrize(
    "drill_down",
    [
        {"year": HUGE},
        {"year": "2024", "month": HUGE},
        {"year": "2024", "month": "1", "day": HUGE},
        {"year": "10000"},
        {"year": "9999", "month": "13"},
        {"year": "9999", "month": "12", "day": "32"},
    ],
    ids=["year", "month", "day", "year-after-the-last", "month-after-the-last", "day-after-the-last"],
)


@pytest.mark.parametrize(("changelist", "field"), lists_with_a_date_hierarchy())
@DRILL_DOWNS_PAST_ANY_DATE
def test_a_drill_down_past_any_date_is_refused_as_any_bad_filter(
    admin_client: Client, changelist: str, field: str, drill_down: dict[str, str]
) -> None:
    params = {f"{field}__{part}": value for part, value in drill_down.items()}

    response = admin_client.get(changelist, params)
    # What the admin answers for a filter it cannot apply (?date__year=10000 too).
    assert (response.status_code, response["Location"]) == (302, f"{changelist}?e=1")
    assert admin_client.get(changelist, {f"{field}__year": "10000"})["Location"] == f"{changelist}?e=1"


@DRILL_DOWNS_PAST_ANY_DATE
def test_the_export_of_a_drill_down_past_any_date_is_refused_as_any_bad_filter(
    admin_client: Client, drill_down: dict[str, str]
) -> None:
    # The export page takes the list's filters from its address, as the list does.
    params = {f"date__{part}": value for part, value in drill_down.items()}

    response = admin_client.get("/admin/catalog/feedback/export/", params)

    assert response.status_code == 400
    assert "address do not fit the list" in response.content.decode()


@pytest.mark.parametrize(
    ("app_label", "model_name", "field_name"),
    [("catalog", "feedback", "product"), ("catalog", "person", "photo"), ("authtoken", "tokenproxy", "user")],
)
def test_a_search_for_a_choice_of_too_many_words_is_a_400_naming_the_limit(
    admin_client: Client, app_label: str, model_name: str, field_name: str
) -> None:
    """The search of a link's choice (autocomplete) reads as the list's search does."""
    search = {"app_label": app_label, "model_name": model_name, "field_name": field_name}
    words = " ".join(["a"] * 20)

    assert admin_client.get("/admin/autocomplete/", {**search, "term": words}).status_code == 200
    response = admin_client.get("/admin/autocomplete/", {**search, "term": " ".join(["a"] * 2000)})
    assert response.status_code == 400
    assert "At most 20 words may be searched for; 2000 were given." in response.content.decode()


@pytest.mark.parametrize("swapped", [False, True], ids=["as listed", "swapped"])
def test_the_mixins_bringing_a_changelist_combine_in_either_order(rf: Any, swapped: bool) -> None:
    mixins = (IndexOrderedMixin, DateHierarchyMixin) if swapped else (DateHierarchyMixin, IndexOrderedMixin)
    model_admin_class = type("ReviewsAdmin", (*mixins, admin.ModelAdmin), {"date_hierarchy": "date"})
    model_admin = model_admin_class(Feedback, admin.site)

    changelist = model_admin.get_changelist(rf.get("/"))

    # Neither drops the other: the list orders by its index and reaches the calendar's end.
    assert issubclass(changelist, IndexOrderedChangeList)
    assert issubclass(changelist, OpenEndedDrillDownChangeList)
    assert model_admin.get_changelist(rf.get("/")) is changelist


def registered_lists(*, numbered: bool = False) -> list[str]:
    """The admin's lists (``numbered``: of a model whose key is a number)."""
    admin.autodiscover()
    return sorted(
        reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        for model in admin.site._registry
        if not numbered or isinstance(model._meta.pk, models.IntegerField)
    )


# Filters written into a list's address that Django takes when it builds the
# query, but that fail once the statement is made or sent: a 500.
@pytest.mark.parametrize("changelist", registered_lists(numbered=True))
@pytest.mark.parametrize(
    "lookup",
    # A number past any column's (SQLite's driver cannot send it).
    [{"pk__in": f"1,{10**20}"}, {"pk__in": f"-{10**20}"}],
    ids=["past-any-number", "below-any-number"],
)
def test_a_filter_by_a_number_past_any_column_s_is_refused_as_any_bad_filter(
    admin_client: Client, changelist: str, lookup: dict[str, str]
) -> None:
    response = admin_client.get(changelist, lookup)

    assert (response.status_code, response["Location"]) == (302, f"{changelist}?e=1")


# The tokens' list takes no filter by its key (its pk) at all (test_token_admin).
@pytest.mark.parametrize("changelist", [c for c in registered_lists() if "/tokenproxy/" not in c])
def test_a_filter_by_a_range_of_one_value_is_refused_as_any_bad_filter(
    admin_client: Client, changelist: str
) -> None:
    response = admin_client.get(changelist, {"pk__range": "1"})

    assert (response.status_code, response["Location"]) == (302, f"{changelist}?e=1")


@pytest.mark.parametrize(
    ("changelist", "lookup"),
    [
        # The photo, image or user of that number (the relation's lookup has no check of its own).
        ("/admin/catalog/person/", {"photo": str(10**20)}),
        ("/admin/catalog/product/", {"image": str(10**20)}),
        ("/admin/uploads/image/", {"uploaded_by": str(10**20)}),
        # A year no date has.
        ("/admin/catalog/person/", {"created_at__year": "99999"}),
        ("/admin/catalog/product/", {"updated_at__year": str(10**20)}),
        ("/admin/uploads/image/", {"created_at__year__gt": str(10**20)}),
        ("/admin/catalog/feedback/", {"date__iso_year": str(10**20)}),
        ("/admin/auth/user/", {"date_joined__year": "99999"}),
    ],
)
def test_a_filter_by_a_value_no_column_holds_is_refused_as_any_bad_filter(
    admin_client: Client, changelist: str, lookup: dict[str, str]
) -> None:
    response = admin_client.get(changelist, lookup)

    assert (response.status_code, response["Location"]) == (302, f"{changelist}?e=1")


@pytest.mark.parametrize("changelist", registered_lists())
@pytest.mark.parametrize("lookup", ["regex", "iregex"])
def test_a_filter_by_a_pattern_is_refused(admin_client: Client, changelist: str, lookup: str) -> None:
    """Each database reads patterns its own way, and fails on one it cannot
    read; no link of the admin filters by one."""
    for pattern in ("(", "^a"):
        response = admin_client.get(changelist, {f"pk__{lookup}": pattern})

        assert response.status_code == 400, pattern


@pytest.mark.parametrize(
    ("changelist", "lookup"),
    [
        ("/admin/catalog/feedback/", "pk__regex"),
        ("/admin/catalog/feedback/", "product__name"),
        ("/admin/authtoken/tokenproxy/", "key__startswith"),
    ],
)
def test_a_filter_the_list_does_not_take_is_refused_naming_it(
    admin_client: Client, changelist: str, lookup: str
) -> None:
    """The 400 said only that the request could not be understood."""
    response = admin_client.get(changelist, {lookup: "a"})

    assert response.status_code == 400
    assert f"This list cannot be filtered by {lookup}" in response.content.decode()


@pytest.mark.parametrize("parameter", ["filter", "_to_field"])
def test_a_refused_name_is_quoted_cut_short(admin_client: Client, parameter: str) -> None:
    """A page quotes a hundred characters of a name sent a thousand long."""
    name = "product__name__" + "n" * 1000
    query = {name: "a"} if parameter == "filter" else {"_to_field": name}

    response = admin_client.get("/admin/catalog/feedback/", query)

    assert response.status_code == 400
    page = response.content.decode()
    assert f"{name[:100]}…" in page
    assert name[:101] not in page


def test_the_export_of_a_filter_no_database_can_run_is_refused_as_any_bad_filter(
    admin_client: Client,
) -> None:
    response = admin_client.get("/admin/catalog/feedback/export/", {"product": str(10**20)})

    assert response.status_code == 400
    assert "address do not fit the list" in response.content.decode()
