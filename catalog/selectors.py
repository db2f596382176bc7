"""Reads for pages and the API, each with its related rows fetched up front so a
page costs a constant number of queries."""

from __future__ import annotations

from itertools import groupby

from django.db.models import Prefetch, Q, QuerySet

from catalog.models import Feedback, Person, Product
from uploads.models import Rendition

_RENDITIONS = Rendition.objects.order_by("width", "format")


def people_visible(*, staff: bool = False) -> QuerySet[Person]:
    people = Person.objects.select_related("photo").prefetch_related(
        Prefetch("photo__renditions", queryset=_RENDITIONS)
    )
    return people if staff else people.filter(is_active=True)


def people_search(query: str = "") -> QuerySet[Person]:
    people = people_visible()
    query = query.strip()
    if query:
        people = people.filter(
            Q(name__icontains=query)
            | Q(username__icontains=query)
            | Q(email__icontains=query)
            | Q(department__icontains=query)
            | Q(role__icontains=query)
        )
    return people.order_by("department", "name")


def people_by_department(query: str = "") -> list[tuple[str, list[Person]]]:
    people = people_search(query)
    return [
        (department or "Other", list(members))
        for department, members in groupby(people, key=lambda p: p.department)
    ]


def products_with_images() -> QuerySet[Product]:
    return Product.objects.select_related("image").prefetch_related(
        Prefetch("image__renditions", queryset=_RENDITIONS)
    )


def feedback_visible(*, staff: bool = False) -> QuerySet[Feedback]:
    reviews = Feedback.objects.all()
    return reviews if staff else reviews.filter(status=Feedback.Status.PUBLISHED)


def feedback_published() -> QuerySet[Feedback]:
    return feedback_visible().select_related("product").order_by("-date", "-id")
