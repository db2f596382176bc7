"""Public pages: the people directory, the catalog, the reviews."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse

from catalog import selectors, services
from catalog.api import FeedbackThrottle
from catalog.forms import FeedbackForm
from catalog.models import Feedback, Product, normal_username
from core.errors import methods
from core.filters import search_text

logger = logging.getLogger(__name__)

REVIEWS_PER_PAGE = 10
# A product's page lists its newest reviews, up to this many.
PRODUCT_REVIEWS = 50
PRODUCTS_PER_PAGE = 24
PEOPLE_PER_PAGE = 48


@methods("GET")
def people_directory(request: HttpRequest) -> HttpResponse:
    # Composed and trimmed as the search reads it (the box shows what was
    # searched for): spaces alone are no search.
    query = search_text(request.GET.get("q", "")).strip()[:100]
    page = Paginator(selectors.people_search(query), PEOPLE_PER_PAGE).get_page(request.GET.get("page"))
    groups = selectors.people_by_department(page.object_list, query=query)
    return render(
        request,
        "catalog/people_directory.html",
        {"page": page, "groups": groups, "query": query, "count": page.paginator.count},
    )


@methods("GET")
def person_detail(request: HttpRequest, username: str) -> HttpResponse:
    """The person's page. Its address in another Unicode form of the
    username than the stored, composed one (``normal_username``: "José"
    typed with a combining accent) redirects, permanently, to the person's
    own address: one page, one address. A username kept in another form
    (two that read the same, left apart when usernames were composed) is
    found as it is."""
    people = selectors.people_visible()
    composed = normal_username(username)
    if composed != username and not people.filter(username=username).exists():
        return redirect("catalog:person-detail", username=composed, permanent=True)
    person = get_object_or_404(people, username=username)
    return render(request, "catalog/person_detail.html", {"person": person})


@methods("GET")
def product_list(request: HttpRequest) -> HttpResponse:
    page = Paginator(selectors.products_on_display(), PRODUCTS_PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "catalog/product_list.html", {"page": page})


@methods("GET")
def product_detail(request: HttpRequest, pk: int) -> HttpResponse:
    product = get_object_or_404(selectors.products_on_display(), pk=pk)
    reviews = selectors.feedback_published().filter(product=product)
    return render(
        request,
        "catalog/product_detail.html",
        {
            "product": product,
            "reviews": reviews[:PRODUCT_REVIEWS],
            "review_count": reviews.count(),
            "highlight": _highlight(request),
        },
    )


@methods("GET")
def review_list(request: HttpRequest) -> HttpResponse:
    """All published reviews, or with ``?product=ID`` those of one product
    (its page shows only the newest); an unknown product is a 404."""
    reviews = selectors.feedback_published()
    product = None
    if request.GET.get("product"):
        product = get_object_or_404(
            selectors.products_on_display(with_images=False), pk=_id(request.GET["product"]) or 0
        )
        reviews = reviews.filter(product=product)
    page = Paginator(reviews, REVIEWS_PER_PAGE).get_page(request.GET.get("page"))
    return render(
        request,
        "catalog/review_list.html",
        {"page": page, "product": product, "form": FeedbackForm(), "highlight": _highlight(request)},
    )


def _id(text: str) -> int | None:
    """A row id given in an address, read as the form's field reads it, or
    None for anything else ("²" is a digit to str.isdigit(), not to int())."""
    try:
        number = int(text)
    except ValueError:
        return None
    return number if 0 < number < 2**63 else None


def _highlight(request: HttpRequest) -> int | None:
    """The review a page marks as the visitor's own (``?highlight=ID``)."""
    return _id(request.GET.get("highlight", ""))


def _review_url(review: Feedback) -> str:
    """Where a page shows this review, marked: its product's page when that
    lists it, else the list of the product's reviews, or of all reviews. Each
    keeps its order by date, so an old date puts a new review further down,
    or on a later page."""
    params: dict[str, int] = {}
    if review.product_id is not None:
        position = selectors.feedback_position(review, of_product=True)
        if position < PRODUCT_REVIEWS:
            query = urlencode({"highlight": review.pk})
            return f"{reverse('catalog:product-detail', kwargs={'pk': review.product_id})}?{query}#review-{review.pk}"
        params["product"] = review.product_id
    else:
        position = selectors.feedback_position(review)
    page = position // REVIEWS_PER_PAGE + 1
    if page > 1:
        params["page"] = page
    query = urlencode({**params, "highlight": review.pk})
    return f"{reverse('catalog:review-list')}?{query}#review-{review.pk}"


def _review_form_context(form: FeedbackForm) -> dict[str, object]:
    """The form, and the product it reviews when it names one the catalog shows."""
    product_id = _id(str(form["product"].value() or ""))
    products = selectors.products_on_display(with_images=False)
    product = products.filter(pk=product_id).first() if product_id is not None else None
    return {"form": form, "product": product}


def _review_product_gone(request: HttpRequest) -> HttpResponse:
    """The product went while the visitor wrote: the form again with what
    they typed, without the product, so sending it again posts a review of
    the store."""
    without_product = request.POST.copy()
    without_product["product"] = ""
    form = FeedbackForm(without_product)
    form.is_valid()  # the other fields' errors, if any, shown as well
    return render(request, "catalog/review_form.html", {"form": form, "product_gone": True}, status=400)


def review_form_expired(request: HttpRequest) -> HttpResponse:
    """A review sent without its security token (a page left open until its
    cookie expired): the form again, as typed and with a fresh token, so that
    sending it once more posts it; HTTP 403."""
    context = {**_review_form_context(FeedbackForm(request.POST)), "expired": True}
    return render(request, "catalog/review_form.html", context, status=403)


def _review_held(request: HttpRequest, product: Product | None) -> HttpResponse:
    """The answer to a review that waits for a moderator: back to its product's page."""
    messages.info(request, "Thank you! Your review will appear once a moderator has read it.")
    return redirect(product.get_absolute_url() if product else "catalog:review-list")


@methods("GET", "POST")
def review_submit(request: HttpRequest) -> HttpResponse:
    """Post/redirect/get: a valid review redirects to the list; an invalid one
    is shown again with its errors and HTTP 400; too many posts get 429,
    unless one sends again a review the client posted lately."""
    if request.method != "POST":
        # "Review this product" on a product's page links here with ?product=ID.
        form = FeedbackForm(initial={"product": request.GET.get("product", "")})
        context = _review_form_context(form)
        if context["product"] is None:  # no product, or one that is gone: a review of the store
            context["form"] = FeedbackForm()
        return render(request, "catalog/review_form.html", context)
    form = FeedbackForm(request.POST)
    throttle = FeedbackThrottle()
    if not throttle.allow_request(request, None):  # type: ignore[arg-type]
        # A second click on "Send" of a review this client posted: where the
        # first click put them, though it comes over the limit. Nothing new.
        sent = _review_sent_before(request, form, throttle)
        if sent is not None:
            return _review_taken(request, sent)
        wait = int(throttle.wait() or 60)
        response = render(
            request,
            "catalog/review_form.html",
            {**_review_form_context(form), "throttled": wait, "limit": throttle.limit_text()},
            status=429,
        )
        response["Retry-After"] = str(wait)
        return response
    if not form.is_valid():
        if "product" in form.errors:
            return _review_product_gone(request)
        return render(request, "catalog/review_form.html", _review_form_context(form), status=400)
    data = form.cleaned_data
    if form.is_bot:
        # Answered as a review held for moderation is: the review never shows,
        # as one a moderator turned down, and nothing tells the bot why.
        logger.info("review dropped: honeypot field filled")
        return _review_held(request, data.get("product"))
    review_data = _review_data(form)
    # Noted before it is posted: a second click that arrives meanwhile, over
    # the limit, waits for this post and lands on its review.
    throttle.note_sent(services.feedback_form_key(**review_data), seconds=services.FORM_RESENT_SECONDS)
    try:
        # Sent again by a second click: the review the first one posted.
        review, _ = services.feedback_submit_from_form(**review_data, sender=_review_sender(request))
    except ValidationError as exc:
        if "product" in getattr(exc, "error_dict", {}):  # deleted since the form checked it
            return _review_product_gone(request)
        raise
    return _review_taken(request, review)


def _review_data(form: FeedbackForm) -> dict[str, Any]:
    """A valid form's review, as the services take it."""
    data = form.cleaned_data
    return {
        "title": data["title"],
        "name": data["name"],
        "date": data["date"],
        "text": data["text"],
        "rating": data.get("rating"),
        "product": data.get("product"),
    }


def _review_taken(request: HttpRequest, review: Feedback) -> HttpResponse:
    """The answer to a review posted: where it shows, or its product's page
    while it waits for a moderator."""
    if review.status == Feedback.Status.PENDING:
        return _review_held(request, review.product)
    messages.success(request, "Thank you! Your review is published.")
    return redirect(_review_url(review))


def _review_sent_before(
    request: HttpRequest, form: FeedbackForm, throttle: FeedbackThrottle
) -> Feedback | None:
    """The review a throttled post sends again, when this client posted it
    lately and it stands: the form is read (as the 429's page reads it
    anyway) and the database asked only for a review the client sent."""
    if not form.is_valid() or form.is_bot:
        return None
    review_data = _review_data(form)
    if not throttle.has_sent(services.feedback_form_key(**review_data)):
        return None
    return services.feedback_sent_from_form(**review_data, sender=_review_sender(request))


def _review_sender(request: HttpRequest) -> str:
    """The browser a review comes from: its security cookie's secret, which
    both clicks of a double click carry and another visitor's browser does
    not. Set by the CSRF middleware, which refuses a post without it."""
    return request.META.get("CSRF_COOKIE") or ""
