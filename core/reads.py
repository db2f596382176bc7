"""Fast reads for the API: list and retrieve answered from ``values()`` rows,
with conditional GET (an ETag over the rows, ``304`` before any JSON is made),
and writes conditional on that ETag (``If-Match``, else ``412``)."""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import time
from collections.abc import Callable, Sequence
from typing import Any, ClassVar
from urllib.parse import quote

import orjson
from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.files.storage import storages
from django.db import transaction
from django.db.models import Model, QuerySet
from django.http import Http404
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.utils.http import RFC3986_SUBDELIMS, parse_etags
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import exceptions, pagination, status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from core.api import COUNT_HEADER, COUNT_TTL_SECONDS, LARGE_COUNT, Pagination, PreconditionFailed
from core.schema import ErrorDocumentingAutoSchema, ErrorSerializer

# Part of every ETag: bumped when a representation changes for the same rows.
REPRESENTATION_VERSION = "1"


# --- Rows to JSON -------------------------------------------------------------


def datetime_formatter() -> Callable[[dt.datetime | None], dt.datetime | str | None]:
    """What DRF's ``DateTimeField`` writes (ISO 8601 in the current time zone,
    ``Z`` for UTC), for rows read with ``values()``. In UTC, the zone rows are
    read in, a datetime is left as it is: the renderer (``core.renderers``)
    writes it exactly so, for a fraction of the cost."""
    zone = timezone.get_current_timezone()
    if getattr(zone, "key", None) == "UTC" or zone is dt.UTC:
        return _in_utc

    def text(value: dt.datetime | None) -> str | None:
        if value is None:
            return None
        iso = value.astimezone(zone).isoformat()
        return iso[:-6] + "Z" if iso.endswith("+00:00") else iso

    return text


def _in_utc(value: dt.datetime | None) -> dt.datetime | None:
    if value is None or value.utcoffset() == _NO_OFFSET:
        return value
    return value.astimezone(dt.UTC)


_NO_OFFSET = dt.timedelta(0)


def date_text(value: dt.date | None) -> str | None:
    return None if value is None else value.isoformat()


# Stand-ins for a value while the URL around it is resolved; unlikely elsewhere in a path.
_SLOTS: dict[type, Any] = {str: "portalurlslot", int: 7_130_492_685_193}


def url_maker(viewname: str, kwarg: str, kind: type = str) -> Callable[[Any], str]:
    """``value -> reverse(viewname, kwargs={kwarg: value})`` for a page of rows:
    resolved once, then each URL is the path around the quoted value, as
    ``reverse`` quotes it. Values ``reverse`` might refuse go through it."""
    slot = _SLOTS[kind]
    template = reverse(viewname, kwargs={kwarg: slot})
    head, _, tail = template.partition(str(slot))
    safe = RFC3986_SUBDELIMS + "/~:@"

    def url(value: Any) -> str:
        text = str(value)
        if not text or "/" in text:
            return reverse(viewname, kwargs={kwarg: value})
        return head + quote(text, safe=safe) + tail

    return url


# --- Conditional GET ----------------------------------------------------------


@functools.lru_cache(maxsize=2)
def _tag_key(secret: str) -> bytes:
    return hashlib.blake2b(secret.encode(), digest_size=32, person=b"portal.etag").digest()


def digest_of(*parts: Any, size: int = 16) -> str:
    """A hash (hex) of what a representation is made of, for its tag.

    The rows hold columns a caller may not see (an image's sha256, its
    error), so the hash is keyed with the site's secret: otherwise anyone
    could rebuild a tag offline from the public fields and a guess at a
    hidden one, and learn whether the guess was right. Every server of a
    fleet shares the secret, so they all give the same tag."""
    raw = orjson.dumps(parts, default=str, option=orjson.OPT_NON_STR_KEYS)
    return hashlib.blake2b(raw, digest_size=size, key=_tag_key(settings.SECRET_KEY)).hexdigest()


def etag_matches(request: Request, tag: str) -> bool:
    """``If-None-Match`` names this tag (weak comparison, as for any GET), or ``*``."""
    header = request.headers.get("If-None-Match")
    if not header:
        return False
    tags = parse_etags(header)
    plain = tag.removeprefix("W/")
    return any(t == "*" or t.removeprefix("W/") == plain for t in tags)


_IF_NONE_MATCH = OpenApiParameter(
    "If-None-Match",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    description="The `ETag` of an earlier answer: `304 Not Modified`, with no body, if it still holds.",
)
_ETAG = OpenApiParameter(
    "ETag",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    response=["200", "304"],
    description="Tag of this answer, for `If-None-Match`; it differs between callers who see different "
    "rows or fields.",
)
_IF_MATCH = OpenApiParameter(
    "If-Match",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    description="The `ETag` of the object as read (`GET`): the change is made only if the object is still "
    "so, else `412 Precondition Failed` and nothing is written. `*`: any.",
)
_IF_MATCH_FORM = (
    'If-Match is "*" or a list of ETags, each in double quotes as an ETag header gives it '
    '(e.g. "1a2b"); nothing was written.'
)
_BAD_IF_MATCH = OpenApiResponse(
    ErrorSerializer,
    description="`If-Match` is neither `*` nor a list of quoted `ETag`s; nothing was written.",
)
_PRECONDITION_FAILED = OpenApiResponse(
    ErrorSerializer,
    description="`If-Match` names no `ETag` the object has now: it changed since it was read; nothing "
    "was written.",
)
_WRITTEN_ETAG = OpenApiParameter(
    "ETag",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    response=["200", "201", "202"],
    description="The `ETag` a `GET` of the object answered would give this caller now: send it in the "
    "`If-Match` of the next change, with no `GET` between. Absent where the caller may not read the "
    "object (a review held for moderation).",
)
_COUNT_CACHED_FOR = OpenApiParameter(
    COUNT_HEADER,
    OpenApiTypes.INT,
    OpenApiParameter.HEADER,
    response=["200", "304"],
    description=f"How many seconds ago `count` was made: 0 when counted for this answer; lists of "
    f"{LARGE_COUNT:,} rows or more reuse their count for up to {COUNT_TTL_SECONDS} s.",
)


class ConditionalReadSchema(ErrorDocumentingAutoSchema):
    """The schema of a RowReadMixin view: conditional GET on list and retrieve,
    and how old a list's count may be."""

    def _conditional(self) -> bool:
        return self.method == "GET" and getattr(self.view, "action", None) in {"list", "retrieve", "cursor"}

    def _conditional_write(self) -> bool:
        return self.method in {"PUT", "PATCH", "DELETE"} and getattr(self.view, "action", None) in {
            "update",
            "partial_update",
            "destroy",
        }

    def get_paginated_name(self, serializer_name: str) -> str:
        # A cursor page has no count: a component of its own, not the numbered page's.
        if isinstance(self._get_paginator(), pagination.CursorPagination):
            return f"CursorPaginated{serializer_name}List"
        return super().get_paginated_name(serializer_name)

    def get_override_parameters(self) -> list[Any]:
        parameters = list(super().get_override_parameters())
        if self._conditional():
            parameters += [_IF_NONE_MATCH, _ETAG]
            if self._is_list_view() and isinstance(self._get_paginator(), Pagination):
                parameters.append(_COUNT_CACHED_FOR)
        if self._conditional_write():
            parameters.append(_IF_MATCH)
        if self.method in {"POST", "PUT", "PATCH"}:  # each answers the object it wrote
            parameters.append(_WRITTEN_ETAG)
        return parameters

    def _get_response_bodies(self, direction: Any = "response") -> dict[str, Any]:
        responses = super()._get_response_bodies(direction)
        if self._conditional():
            not_modified = OpenApiResponse(
                description="The `ETag` sent in `If-None-Match` still holds; no body."
            )
            responses["304"] = self._get_response_for_code(not_modified, "304", direction=direction)
        if self._conditional_write():
            responses["412"] = self._get_response_for_code(_PRECONDITION_FAILED, "412", direction=direction)
            if "400" not in responses:  # a deletion, which takes no body
                responses["400"] = self._get_response_for_code(_BAD_IF_MATCH, "400", direction=direction)
        return dict(sorted(responses.items()))


def _media_base() -> tuple[Any, int | None]:
    """Where the media store's URLs point now, and the window of time their
    signatures were made in (None where they are not signed).
    Representations show rendition URLs made from it, so the same rows read
    from a store moved elsewhere (a CDN's domain, a bucket instead of local
    files) are another answer, not a 304 that keeps the old URLs.

    A bucket whose URLs are signed (``AWS_QUERYSTRING_AUTH``) signs each one
    anew, with the time it was made: the URL without its query names the
    store, and the signature no longer changes the tag on every read. It
    still has to change before the URLs a client keeps expire: answers say
    ``no-cache`` (no ``max-age``: each use of a kept answer asks first), and
    the tag holds the half of the links' lifetime the answer was made in, so
    a 304 only ever confirms URLs with at least half their lifetime left;
    after that the client gets the body again, freshly signed."""
    storage = storages["default"]
    url = storage.url(_MEDIA_PROBE)
    expire = getattr(storage, "querystring_expire", None)
    if not getattr(storage, "querystring_auth", False) or "?" not in url or not isinstance(expire, int):
        return url, None
    window = max(1, expire // 2)
    return (url.partition("?")[0], expire), int(time.time() // window)


# A tag is "<rows>.<answer>" or "<rows>.<answer>-<window>": the hash of the
# rows, the hash of what else made the answer (its address, its media type,
# the media store, the caller's variant), and the window its URLs were
# signed in (signed media URLs alone).
_ANSWER_MARK = "."
_WINDOW_MARK = "-"


def _as_read(tag: str) -> str:
    """What of a tag says the rows are as read: its hash of the rows, not
    what else made that answer, which a change does not ask about: the row
    read at ``/people/1.json``, with ``Accept: application/json; indent=2``
    or in the browsable API is the row a change of ``/people/1/`` finds."""
    return tag.partition(_ANSWER_MARK)[0] + '"' if _ANSWER_MARK in tag else tag


_MEDIA_PROBE = "probe"


def lock_row(model: type[Model], pk: Any) -> None:
    """Lock the row for the rest of the transaction (``SELECT … FOR UPDATE``)."""
    list(model._default_manager.select_for_update().filter(pk=pk).values_list("pk"))


class RowReadMixin(viewsets.GenericViewSet[Any]):
    """``list`` and ``retrieve`` answered from ``values()`` rows instead of model
    instances run through DRF serializers, with an ETag over those rows.

    The serializer classes stay what the schema documents and what writes use;
    ``represent_rows`` must build exactly what they would (the tests compare
    the two on every endpoint). A client that sends back the ETag it got
    (``If-None-Match``) gets ``304 Not Modified`` with no body, decided before
    any row is turned into JSON.

    A change or a deletion that sends that ETag back in ``If-Match`` is made
    only if the row still has it, checked with the row locked, else ``412``:
    two clients that read the same row and both change it cannot overwrite
    each other unseen. ``update`` checks by ``core.api.ConcurrentWritesMixin``
    (or, where a service writes, by a precondition it calls with the row
    locked); ``destroy`` checks here.
    """

    schema = ConditionalReadSchema()
    # values() of the listed model: what represent_rows needs.
    read_fields: ClassVar[Sequence[str]] = ()

    # --- To fill in -----------------------------------------------------------

    def read_related(self, rows: list[dict[str, Any]]) -> Any:
        """Rows of other tables the page shows (e.g. renditions): one query, or none."""
        return None

    def represent_rows(self, rows: list[dict[str, Any]], related: Any) -> list[dict[str, Any]]:
        raise NotImplementedError

    def read_variant(self) -> Sequence[Any]:
        """What else changes the body for the same rows (e.g. the caller's
        permissions). Also part of a list's count key: it must hold whatever,
        besides the query parameters, ``get_queryset`` depends on."""
        return ()

    # --- Reads ----------------------------------------------------------------

    def filter_queryset(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        """The filters, search and order of the list, on the list alone: an
        address names its row, and ``/people/1/?is_active=yes`` is that
        person, not a 400 (nor a 404 for ``?search=`` of other words). DRF
        filters in ``get_object`` too, for backends that hide rows from a
        caller; here what a caller may not see is left out by
        ``get_queryset``, which every action reads."""
        if self.detail:
            return queryset
        return super().filter_queryset(queryset)

    def _values(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        return queryset.select_related(None).prefetch_related(None).values(*self.read_fields)

    def _count_key(self, paginator: Pagination) -> str:
        """What determines the rows counted: this view, what the caller may see
        (``read_variant``) and the parameters other than the page and its
        order. Cheaper to make than the count query's SQL."""
        ignored = {paginator.page_query_param, paginator.page_size_query_param, "ordering"}
        # The renderer's switch, where it is one (on images it is a filter).
        negotiator_settings = getattr(self.get_content_negotiator(), "settings", None)
        switch = getattr(negotiator_settings, "URL_FORMAT_OVERRIDE", None)
        if switch:
            ignored.add(switch)
        # By name, each with its values in the order given: a filter given
        # twice reads the last one, so ``rating=1&rating=5`` and
        # ``rating=5&rating=1`` count different rows.
        params = sorted(
            (name, tuple(values)) for name, values in self.request.query_params.lists() if name not in ignored
        )
        view = type(self)
        return repr((view.__module__, view.__qualname__, tuple(self.read_variant()), params))

    def _tag(self, rows: Any, related: Any, *extra: Any, path: str | None = None) -> str:
        """``path``: the address of the row read, where it is not the request's
        (the answer of a write, see ``note_written``)."""
        request = self.request
        # A list's query picks its rows and its links; a row's address
        # answers the row whatever its query (filter_queryset), so the query
        # is no part of its tag: else a change sent with the tag of the row
        # read with a cache buster on its address would be refused as stale.
        if path is None and self.detail:
            path = request.path
        uri = request.build_absolute_uri(path)
        base, window = _media_base()
        # Apart: a change (If-Match) asks whether the row is as read, not
        # at which address, in which format or how long ago its URLs were
        # signed (see _as_read); a 304 (If-None-Match) asks all of it.
        read = digest_of(REPRESENTATION_VERSION, extra, rows, related)
        answer = digest_of(
            uri, getattr(request, "accepted_media_type", ""), base, list(self.read_variant()), size=8
        )
        tag = f"{read}{_ANSWER_MARK}{answer}"
        return f'"{tag}"' if window is None else f'"{tag}{_WINDOW_MARK}{window}"'

    def _conditional(self, tag: str, build: Callable[[], Response]) -> Response:
        if etag_matches(self.request, tag):
            response = Response(status=status.HTTP_304_NOT_MODIFIED)
        else:
            response = build()
        response["ETag"] = tag
        # Revalidate every time (cheap: a 304); answers differ per caller.
        # No max-age: signed rendition URLs are kept only while the tag
        # holds, which ends before they expire (see _media_base).
        response["Cache-Control"] = "private, no-cache"
        patch_vary_headers(response, ("Authorization", "Cookie"))
        return response

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        queryset = self.filter_queryset(self.get_queryset())
        paginator = self.paginator
        if paginator is None:
            rows = list(self._values(queryset))
            related = self.read_related(rows)
            return self._conditional(
                self._tag(rows, related), lambda: Response(self.represent_rows(rows, related))
            )
        if isinstance(paginator, Pagination):
            # Counted as it is, each page read as rows (core.api.RowsPaginator).
            paginator.row_fields = self.read_fields
            paginator.count_key = self._count_key(paginator)
            page = paginator.paginate_queryset(
                queryset.select_related(None).prefetch_related(None), request, view=self
            )
        else:
            page = paginator.paginate_queryset(self._values(queryset), request, view=self)
        rows = list(page) if page is not None else []
        related = self.read_related(rows)
        # What the page says besides its rows: a numbered page's count, or a
        # cursor page's links, which its rows alone do not decide (a row
        # added after the last one gives the same rows a ``next``).
        count = getattr(getattr(paginator, "page", None), "paginator", None)
        if count is not None:
            envelope: Any = count.count
        elif page is not None and isinstance(paginator, pagination.CursorPagination):
            envelope = (paginator.get_next_link(), paginator.get_previous_link())
        else:
            envelope = None
        tag = self._tag(rows, related, envelope)

        def build() -> Response:
            return paginator.get_paginated_response(self.represent_rows(rows, related))

        response = self._conditional(tag, build)
        if isinstance(paginator, Pagination) and COUNT_HEADER not in response:
            response[COUNT_HEADER] = str(paginator.count_cached_for)
        return response

    def _current_tag(self, pk: Any) -> str | None:
        """The ETag ``retrieve`` would answer this caller for the row now."""
        queryset = self.filter_queryset(self.get_queryset())
        rows = list(self._values(queryset.filter(pk=pk))[:2])
        if len(rows) != 1:
            return None
        return self._tag(rows, self.read_related(rows))

    # --- Conditional writes -----------------------------------------------------

    def check_if_match(self, pk: Any) -> None:
        """``412`` unless ``If-Match`` is absent, ``*``, or names the row's
        current ETag (a strong comparison: a weak tag never matches). Call it
        with the row locked, in the transaction that writes it."""
        header = self.request.headers.get("If-Match")
        if header is None:
            return
        tags = parse_etags(header)
        if "*" in tags:
            return
        if not tags or len(tags) != sum(1 for member in header.split(",") if member.strip()):
            # A tag without its quotes (copied from a body, or unquoted by a
            # client), or none at all (an empty header, a tag the client
            # never kept), names no ETag: a 412 saying the row changed would
            # have the client read it again and send it so again, for ever.
            raise exceptions.ParseError(_IF_MATCH_FORM)
        current = self._current_tag(pk)
        if current is None or _as_read(current) not in {_as_read(tag) for tag in tags}:
            raise PreconditionFailed()

    def lock_and_check_if_match(self, instance: Model) -> None:
        """Lock the row (for the rest of the transaction) and check ``If-Match``."""
        if "If-Match" not in self.request.headers:
            return
        lock_row(type(instance), instance.pk)
        self.check_if_match(instance.pk)

    # --- Tags of writes -----------------------------------------------------------

    # The ETag of the row a write answers with (note_written), sent with that answer.
    written_tag: str | None = None

    def _row_path(self, pk: Any) -> str:
        """The address a GET of the row reads: the request's own for a change
        sent to it (``/people/1.json`` included), else the row's detail (the
        ``Location`` of a creation, the image an action of it changes)."""
        if self.action in {"update", "partial_update"}:
            return self.request.path
        return self.reverse_action("detail", args=[pk])

    def note_written(self, pk: Any) -> None:
        """Keep, for the answer of a write that returns the row ``pk``, the
        ETag a GET of the row would answer this caller now: a client making
        several conditional writes in a row needs no GET between them. None
        where the caller may not read the row (a review the public posts is
        held for moderation): a GET would be a 404.

        Call it in the transaction that wrote the row, after the write and
        with the row still locked (or not yet committed): the tag is then of
        the row the answer shows, not of a change another request made since,
        which an ``If-Match`` with it would overwrite unseen."""
        rows = list(self._values(self.get_queryset().filter(pk=pk))[:2])
        if len(rows) != 1:
            self.written_tag = None
            return
        self.written_tag = self._tag(rows, self.read_related(rows), path=self._row_path(pk))

    def note_written_row(self, row: dict[str, Any], related: Any) -> None:
        """``note_written`` for a row answered as it is in hand (``read_fields``
        of a row just written, which no one else has changed yet), not read
        back: the tag is of the answer's row, as a GET would read it, while
        the caller may read it."""
        if not self.get_queryset().filter(pk=row["id"]).exists():
            self.written_tag = None
            return
        self.written_tag = self._tag([row], related, path=self._row_path(row["id"]))

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any) -> Any:
        response = super().finalize_response(request, response, *args, **kwargs)
        if (
            self.written_tag is not None
            and status.is_success(response.status_code)
            and "ETag" not in response
        ):
            response["ETag"] = self.written_tag
        return response

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        instance = self.get_object()
        with transaction.atomic():
            self.lock_and_check_if_match(instance)
            self.perform_destroy(instance)  # type: ignore[attr-defined]  # DestroyModelMixin's
        return Response(status=status.HTTP_204_NO_CONTENT)

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        queryset = self.filter_queryset(self.get_queryset())
        lookup = self.lookup_url_kwarg or self.lookup_field
        try:
            rows = list(self._values(queryset.filter(**{self.lookup_field: self.kwargs[lookup]}))[:2])
        except (TypeError, ValueError, DjangoValidationError):
            rows = []
        if len(rows) != 1:
            raise Http404
        related = self.read_related(rows)
        return self._conditional(
            self._tag(rows, related), lambda: Response(self.represent_rows(rows, related)[0])
        )
