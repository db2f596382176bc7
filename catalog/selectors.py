"""Reads for pages and the API, each with its related rows fetched up front so a
page costs a constant number of queries."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from itertools import groupby
from typing import NamedTuple

from django.db.models import Case, Count, Exists, F, OuterRef, Prefetch, Q, QuerySet, Value, When

from catalog.models import Feedback, Person, Product
from core.filters import search_text
from core.validation import composed
from uploads.models import Image, Rendition, file_stem

_RENDITIONS = Rendition.objects.order_by("width", "format")


def people_visible(*, staff: bool = False) -> QuerySet[Person]:
    return _people_visible(staff).all()


# Built once per process and copied for each use (.all()): building a
# queryset's filters and relations costs more than copying it, and each API
# request asks for its queryset twice (the permission check, then the list).
@functools.cache
def _people_visible(staff: bool) -> QuerySet[Person]:
    people = Person.objects.select_related("photo").prefetch_related(
        Prefetch("photo__renditions", queryset=_RENDITIONS)
    )
    return people if staff else people.filter(is_active=True)


def people_search(query: str = "") -> QuerySet[Person]:
    people = people_visible()
    query = search_text(query).strip()
    if query:
        found = (
            Q(name__icontains=query)
            | Q(username__icontains=query)
            | Q(email__icontains=query)
            | Q(department__icontains=query)
            | Q(role__icontains=query)
        )
        if query.casefold() in Person.NO_DEPARTMENT.casefold():
            # The directory shows people without a department under that
            # name: a search for what it shows finds them.
            found |= Q(department="")
        people = people.filter(found)
    # People without a department come after every department, in one group
    # with those of a department given that name (Person.NO_DEPARTMENT). The
    # key last: people of one department and name would otherwise come in
    # any order the database likes, another for each page, and a page of the
    # directory repeat one of them and leave out another.
    return people.alias(
        group=Case(When(_in_no_department(), then=Value(None)), default=F("department"))
    ).order_by(F("group").asc(nulls_last=True), "name", "pk")


def _in_no_department() -> Q:
    return Q(department="") | Q(department=Person.NO_DEPARTMENT)


class Department(NamedTuple):
    name: str
    people: list[Person]
    size: int  # everyone in it the search finds, on this page and the others


def people_by_department(people: Iterable[Person], *, query: str = "") -> list[Department]:
    """A page of the directory (people in ``people_search`` order) grouped by
    department, each with its size across all pages: one query."""
    groups = [(name, list(members)) for name, members in groupby(people, key=lambda p: p.department_shown)]
    if not groups:
        return []
    # By the name each group shows: blank and Person.NO_DEPARTMENT are one.
    departments = {name for name, _ in groups} | {""}
    sizes: dict[str, int] = {}
    for department, size in (
        people_search(query)
        .filter(department__in=departments)
        .order_by()
        .values_list("department")
        .annotate(size=Count("pk"))
    ):
        name = department or Person.NO_DEPARTMENT
        sizes[name] = sizes.get(name, 0) + size
    return [Department(name, members, sizes.get(name, 0)) for name, members in groups]


def products_with_images() -> QuerySet[Product]:
    return _products_with_images().all()


@functools.cache
def _products_with_images() -> QuerySet[Product]:
    return Product.objects.select_related("image").prefetch_related(
        Prefetch("image__renditions", queryset=_RENDITIONS)
    )


def on_display() -> Q:
    """The products the public catalog shows: the real ones, or the demo ones
    while the store has none of its own (in the same query, no separate check).
    Every public page follows this one rule, for the products it lists, the
    pages it opens and the products its reviews link to."""
    return Q(is_demo=False) | Q(~Exists(Product.objects.filter(is_demo=False)))


def image_public() -> Q:
    """The images the public may see (``uploads.selectors.images_visible``):
    those the catalog shows, a product's picture or an active person's
    photo. Not one whose only use is the photo of an inactive person, whom
    the directory no longer shows, nor one tied to nothing: an upload not
    yet linked (a supplier's photo posted before its description, a file
    put in through the admin or the API for later) is no one's to show yet;
    it becomes public as a product or a person takes it. Two lookups by the
    image's key, in the same query."""
    return Q(Exists(Person.objects.filter(photo=OuterRef("pk"), is_active=True))) | Q(
        Exists(Product.objects.filter(image=OuterRef("pk")))
    )


def products_on_display(*, with_images: bool = True) -> QuerySet[Product]:
    """What the public catalog shows and opens (``on_display``): a product
    left out has no public page either."""
    products = products_with_images() if with_images else Product.objects.all()
    return products.filter(on_display())


def product_shown(product: Product) -> bool:
    """Whether the catalog shows ``product``, so that it has a public page:
    from its ``shown`` annotation (``on_display()``) when it has one."""
    shown = getattr(product, "shown", None)
    if shown is None:
        shown = products_on_display(with_images=False).filter(pk=product.pk).exists()
    return bool(shown)


def products_same_as(*, name: str, image_name: str, is_demo: bool = False) -> QuerySet[Product]:
    """The product a write of this name and image file name is about: the one
    with the same file stem, else (without a file name) the same name; demo
    and real products never match each other.

    Several may match: products added apart before their stems were kept in
    one Unicode form (``café`` typed, ``café`` from a Mac) share one since
    (docs/stems.md). The first is then the one with this very file name,
    else the oldest, so a write always lands on the same one."""
    products = Product.objects.filter(is_demo=is_demo)
    image_name = image_name.strip()
    stem = file_stem(image_name)
    if stem:
        return (
            products.filter(image_stem=stem)
            .alias(same_name=Q(image_name=image_name))
            .order_by("-same_name", "pk")
        )
    # Composed, as names are stored.
    return products.filter(name=composed(name.strip()), image_stem="").order_by("pk")


def image_latest_for(image_name: str, *, is_demo: bool = False) -> Image | None:
    """The newest usable image uploaded under this file name's stem
    (``001.jpeg`` finds ``001.tiff``); demo and real images never mix."""
    stem = file_stem(image_name)
    if not stem:
        return None
    return (
        Image.objects.filter(name_stem=stem, is_demo=is_demo)
        .exclude(status=Image.Status.FAILED)
        .order_by("-created_at", "-pk")
        .first()
    )


def feedback_visible(*, staff: bool = False) -> QuerySet[Feedback]:
    return Feedback.objects.all() if staff else _feedback_published().all()


@functools.cache
def _feedback_published() -> QuerySet[Feedback]:
    return Feedback.objects.filter(status=Feedback.Status.PUBLISHED)


def feedback_published() -> QuerySet[Feedback]:
    """Published reviews, newest first, each with ``product_shown``: whether
    its product is one the catalog shows, which a page then links to (the
    review of a demo product the catalog hides names no product). Asked by
    the product's key, a lookup for each row a page shows: a condition on
    the joined product would keep the join in the count of every review."""
    shown = Exists(Product.objects.filter(on_display(), pk=OuterRef("product_id")))
    return feedback_visible().select_related("product").annotate(product_shown=shown).order_by("-date", "-id")


def feedback_position(review: Feedback, *, of_product: bool = False) -> int:
    """How many published reviews come before this one in the list's order
    (newest date first, then newest id): in the whole list, or among the
    reviews of its product."""
    ahead = Q(date__gt=review.date) | Q(date=review.date, id__gt=review.pk)
    if of_product:
        ahead &= Q(product_id=review.product_id)
    return feedback_visible().filter(ahead).count()
