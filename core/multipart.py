"""Uploaded files whose names Django's multipart parser would drop.

Django's parser leaves out a file part whose name sanitizes to nothing
(``..``, ``.``, ``photos/``, control characters alone): the view then sees no
file and answers that none was sent, though the client sent one and only its
name was refused. Views that take files parse their body with
``NameKeepingParser`` instead (``UnusableNameHandler``, put first among the
upload handlers by ``portal.middleware.BodyLimitMiddleware``): such a file is
kept under a stand-in name, with the name as sent on it, and
``unusable_name()`` lets the view refuse it saying why.

Django reads a text field's bytes that are not text in the form's charset as
U+FFFD: a script posting the lines of a file saved as Latin-1 got a review
stored with "Caf\ufffd" in it. ``NameKeepingParser`` refuses such a field
instead (``NotText``), as ``core.parsers.FormParser`` refuses it in a plain
form, with the same message.
"""

from __future__ import annotations

import secrets
from typing import Any, cast

from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler
from django.http import HttpRequest, QueryDict
from django.http.multipartparser import MultiPartParser
from django.utils.datastructures import MultiValueDict

# The attribute of an uploaded file its refused name rides on.
_SENT_NAME = "_unusable_name"
# The attribute of a request the names as sent of its kept files ride on, by stand-in name.
_SENT_NAMES = "_unusable_names"


# The types of body Django reads as a form itself (``request.POST``).
FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})


def charset_refusal(encoding: str) -> str | None:
    """Why a form in the charset ``encoding`` cannot be read, or None if it
    can. Django takes any charset Python has a codec of, but reads a form
    only in one of bytes to text that can mark a byte it cannot read
    (``errors="replace"``): not base64 or rot13 (bytes to bytes, text to
    text), nor IDNA (no such marking), which failed with a traceback."""
    try:
        b"\xff".decode(encoding, "replace")
    except (LookupError, UnicodeError):
        return (
            f"The form's charset {encoding!r} is no text encoding a form is read in; send the form as UTF-8."
        )
    return None


class NotText(ValueError):
    """A field of a form, or its name (``field`` None), that is not text in
    the form's charset."""

    def __init__(self, field: str | None, encoding: str) -> None:
        self.field = field
        name = encoding.upper()
        if field is None:
            self.message = f"A field name of the form is not {name} text; send it as {name}."
        else:
            self.message = f"Not {name} text; send the text as {name}."
        super().__init__(self.message if field is None else f"{field}: {self.message}")


class NameKeepingParser(MultiPartParser):
    """Django's parser, which keeps a file whose name it would drop and
    refuses a text field that is not text in the form's charset."""

    def __init__(
        self, META: dict[str, Any], input_data: Any, upload_handlers: Any, encoding: str | None = None
    ) -> None:
        super().__init__(META, input_data, upload_handlers, encoding)
        # Unguessable, so that no file sent under a name of its own is taken for one kept.
        self._stand_in = f"unusable-name-{secrets.token_hex(8)}"
        self._sent: dict[str, str] = {}
        # Django decodes with errors="replace", which leaves no trace of the
        # bytes it replaced. Read as Latin-1, each byte is one character:
        # parse() has the bytes back and decodes them in the form's charset.
        self._text_encoding = encoding or settings.DEFAULT_CHARSET
        self._encoding = "latin-1"

    def sanitize_file_name(self, file_name: str) -> str | None:
        file_name = file_name.encode("latin-1").decode(self._text_encoding, errors="replace")
        sanitized: str | None = super().sanitize_file_name(file_name)
        if sanitized is not None:
            return sanitized
        stand_in = f"{self._stand_in}-{len(self._sent)}"
        self._sent[stand_in] = file_name
        return stand_in

    def parse(self) -> tuple[Any, MultiValueDict[str, Any]]:
        read_post, read_files = super().parse()
        try:
            post = QueryDict(mutable=True)
            for key, values in read_post.lists():
                field = self._text(key, None)
                post.setlist(field, [self._text(value, field) for value in values])
            post._mutable = False
            files: MultiValueDict[str, Any] = MultiValueDict()
            for key, uploads in read_files.lists():
                files.setlist(self._text(key, None), uploads)
        except NotText:
            # Closed as Django's parser closes them on an error: the request
            # closes only the files it is given.
            for _, uploads in read_files.lists():
                for upload in uploads:
                    upload.close()
            raise
        for field, uploads in files.lists():
            for upload in uploads:
                if hasattr(upload, "field_name"):
                    upload.field_name = field
                sent = self._sent.get(upload.name)
                if sent is not None:
                    setattr(upload, _SENT_NAME, sent)
        return post, files

    def _text(self, read: str, field: str | None) -> str:
        """``read`` (as Latin-1) decoded in the form's charset: NotText if it
        is not text in it, for ``field`` (None: a field's name)."""
        try:
            return read.encode("latin-1").decode(self._text_encoding)
        except UnicodeError:  # UnicodeDecodeError, or a codec's own refusal
            raise NotText(field, self._text_encoding) from None


class UnusableNameHandler(FileUploadHandler):
    """Parses the body with ``NameKeepingParser``, which hands each file to
    the upload handlers after this one. First among them, it is asked first
    whether it parses the body itself (``handle_raw_input``), under Django's
    parsing of ``request.POST`` as under DRF's."""

    def handle_raw_input(
        self,
        input_data: Any,
        META: dict[str, Any],
        content_length: int,
        boundary: str,
        encoding: str | None = None,
    ) -> tuple[Any, MultiValueDict[str, Any]]:
        request = cast(HttpRequest, self.request)  # installed on one: keep_unusable_names
        handlers = [handler for handler in request.upload_handlers if handler is not self]
        parser = NameKeepingParser(META, input_data, handlers, encoding)
        # The handlers are given the stand-in name; one that names the file
        # (a file over the limit, cut off while it streams) asks for this one.
        setattr(request, _SENT_NAMES, parser._sent)
        return parser.parse()

    # Never handed a file: the parser above hands them to the others.
    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        return raw_data

    def file_complete(self, file_size: int) -> None:
        return None


def keep_unusable_names(request: HttpRequest) -> None:
    """Have ``request``'s multipart body parsed by ``NameKeepingParser``
    (before anything reads ``request.POST`` or ``request.FILES``)."""
    request.upload_handlers.insert(0, UnusableNameHandler(request))


def unusable_name(upload: object) -> str | None:
    """The name as sent of a file kept by ``NameKeepingParser`` for want of
    a usable one; None for a file with a usable name."""
    return getattr(upload, _SENT_NAME, None)


def name_as_sent(request: object, file_name: str) -> str:
    """The name a file of ``request`` was sent under, as an upload handler
    should show it: the name as sent for one kept under a stand-in name (the
    stand-in is the parser's, never the client's), else ``file_name``."""
    sent: dict[str, str] = getattr(request, _SENT_NAMES, None) or {}
    return sent.get(file_name, file_name)


def unusable_name_message(name: str) -> str:
    return (
        f"The file's name {name!r} is not a usable file name: it names no file once its "
        "folders and control characters are taken out. Send the file under a name such as photo.jpg."
    )
