"""How large a request body may be, decided before it is read.

Views that take files say so with ``accepts_files`` (function views) or a
``file_actions`` class attribute (DRF views: the actions that take a file,
and ``file_fields`` the fields they take it in).
Every other view gets ``MAX_BODY_BYTES``. The limit is checked from
``Content-Length`` before anything parses the body, and again while file
parts stream in, so a body that lies about its length is cut off too.

The handlers that keep an uploaded file's bytes (in memory or in a temporary
file) hash them as they arrive, and give the file they make the digest: the
hash then costs nothing once the body is in, where it waits on the network.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import (
    FileUploadHandler,
    MemoryFileUploadHandler,
    TemporaryFileUploadHandler,
)
from django.http import HttpRequest
from rest_framework import exceptions, status

from core import multipart

# Room for the multipart envelope and the small fields around a file.
ENVELOPE_BYTES = 64 * 1024

V = TypeVar("V", bound=Callable[..., Any])


class RequestTooLarge(exceptions.APIException):
    """A body over its endpoint's limit (HTTP 413)."""

    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "too_large"

    def __init__(self, size: int | None, limit: int, *, what: str = "The request body") -> None:
        shown = f"{what} is {size:,} bytes" if size is not None else f"{what} is larger than the limit"
        super().__init__(f"{shown}; the limit is {limit:,} bytes ({_human(limit)}).")
        self.size = size
        self.limit = limit


def _human(size: int) -> str:
    if size >= 1024 * 1024:
        return f"{size / 1024 / 1024:.0f} MB"
    return f"{size / 1024:.0f} KB"


def accepts_files(view: V | None = None, *, max_files: int = 1) -> Any:
    """Mark a function view as taking up to ``max_files`` uploaded files."""

    def mark(func: V) -> V:
        func.max_upload_files = max_files  # type: ignore[attr-defined]
        return func

    return mark(view) if view is not None else mark


def upload_file_fields(view_func: Callable[..., Any]) -> frozenset[str]:
    """The fields a DRF view takes its files in (its ``file_fields``)."""
    cls = getattr(view_func, "cls", None)
    return frozenset(getattr(cls, "file_fields", ()))


def upload_files_allowed(view_func: Callable[..., Any], method: str) -> int:
    """How many files this view takes for this method (0: none)."""
    marked = getattr(view_func, "max_upload_files", None)
    if marked is not None:
        return int(marked)
    cls = getattr(view_func, "cls", None)
    file_actions = getattr(cls, "file_actions", None)
    if not file_actions:
        return 0
    actions = getattr(view_func, "actions", None)  # viewsets: method -> action
    action = actions.get(method.lower()) if actions else method.lower()
    return 1 if action in file_actions else 0


def body_limit(files: int) -> int:
    if files <= 0:
        return settings.MAX_BODY_BYTES
    return files * settings.IMAGE_MAX_BYTES + ENVELOPE_BYTES


def content_length(request: HttpRequest) -> int | None:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return None


def body_unmeasured(request: HttpRequest) -> bool:
    """Whether a body comes in chunks with no Content-Length, which Django
    would read as empty."""
    encoding = request.META.get("HTTP_TRANSFER_ENCODING", "").lower()
    return "chunked" in encoding and not request.META.get("CONTENT_LENGTH")


class StreamingLimitHandler(FileUploadHandler):
    """Counts each uploaded file's bytes as they arrive and stops the upload
    as soon as one is over the file limit, or the body over its endpoint's."""

    def __init__(self, request: HttpRequest | None = None) -> None:
        super().__init__(request)
        self.total = 0
        self.file_bytes = 0

    def new_file(self, *args: Any, **kwargs: Any) -> None:
        super().new_file(*args, **kwargs)
        self.file_bytes = 0

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        self.total += len(raw_data)
        self.file_bytes += len(raw_data)
        file_limit = settings.IMAGE_MAX_BYTES
        if self.file_bytes > file_limit:
            name = multipart.name_as_sent(self.request, self.file_name or "")
            raise RequestTooLarge(None, file_limit, what=f"The file {name!r}")
        limit = getattr(self.request, "max_body_bytes", None)
        if limit is not None and self.total > limit:
            raise RequestTooLarge(None, limit)
        return raw_data

    def file_complete(self, file_size: int) -> None:
        return None


@dataclass(frozen=True)
class ReceivedDigest:
    """The SHA-256 of the bytes a file's upload handler stored, and how many."""

    sha256: str
    size: int


# The attribute of an uploaded file its digest rides on.
_DIGEST_ATTRIBUTE = "_received_digest"


class _Digesting(FileUploadHandler):
    """Hashes the bytes of each file this handler keeps as they arrive, and
    gives the file it makes their digest (see ``received_digest``)."""

    def new_file(self, *args: Any, **kwargs: Any) -> None:
        # Before the handler's own: the memory one stops the chain there.
        self.hash = hashlib.sha256()
        super().new_file(*args, **kwargs)

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes | None:
        passed: bytes | None = super().receive_data_chunk(raw_data, start)
        if passed is None:  # kept here, not passed on to the next handler
            self.hash.update(raw_data)
        return passed

    def file_complete(self, file_size: int) -> UploadedFile | None:
        upload: UploadedFile | None = super().file_complete(file_size)
        if upload is not None:
            setattr(upload, _DIGEST_ATTRIBUTE, ReceivedDigest(self.hash.hexdigest(), file_size))
        return upload


class DigestingMemoryFileUploadHandler(_Digesting, MemoryFileUploadHandler):
    """Django's handler for small files, which hashes them as they arrive."""


class DigestingTemporaryFileUploadHandler(_Digesting, TemporaryFileUploadHandler):
    """Django's handler for large files, which hashes them as they arrive."""


def received_digest(upload: object) -> ReceivedDigest | None:
    """The digest the upload handler computed of ``upload``'s bytes as they
    arrived, taken off it: it is given once. Only while the file is as the
    handler left it (unread, at its start, of the size hashed); None
    otherwise, and for anything else: hash what is read."""
    digest = getattr(upload, _DIGEST_ATTRIBUTE, None)
    if not isinstance(digest, ReceivedDigest) or not isinstance(upload, UploadedFile):
        return None
    delattr(upload, _DIGEST_ATTRIBUTE)
    try:
        handle = upload.file
        if handle is None or handle.closed or handle.tell() != 0:
            return None
        size = handle.seek(0, os.SEEK_END)
        handle.seek(0)
    except (AttributeError, OSError, ValueError):
        return None
    return digest if size == digest.size else None
