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

Django reads a part's headers as UTF-8 and leaves out a part whose
Content-Disposition is not: a field under a name saved as Latin-1 was
dropped, a file under such a name answered as if no file had been sent. A
name sent RFC 2231-encoded (``filename*=UTF-8''...``) it reads with U+FFFD
for what is not text in the charset it names, and for a letter sent as it is
instead of percent-encoded. ``NameKeepingParser`` reads each part's headers
as they stream in (``DispositionCheck``) and refuses a field name or a file
name that is not text (``NotText``), quoting it.
"""

from __future__ import annotations

import codecs
import secrets
from email.message import Message
from typing import Any, Final, cast

from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler
from django.http import HttpRequest, QueryDict, multipartparser
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
    """A field of a form, the name of a field or the name of a file that is
    not text in the charset it is read in: ``field`` is the field the 400
    names (None: the form's)."""

    def __init__(self, field: str | None, message: str, *, of_value: bool = False) -> None:
        self.field = field
        self.message = message
        # The field's value is refused (not its name, nor a file's name).
        self.of_value = of_value
        super().__init__(message if field is None else f"{field}: {message}")

    @classmethod
    def value(cls, field: str, encoding: str) -> NotText:
        name = encoding.upper()
        return cls(field, f"Not {name} text; send the text as {name}.", of_value=True)

    def as_file(self) -> NotText:
        """The refusal of a value sent in a field that takes a file: a part
        with no file name (``curl -F "file=<photo.jpg"``, ``filename=""``) is
        read as a text field, and a photo's bytes are no text. The way out is
        a file name, not UTF-8."""
        return NotText(
            self.field,
            "This part has no file name, so it was read as text, and it is not text. "
            'Send the file as a file, with its name (filename="photo.jpg").',
        )

    @classmethod
    def field_name(cls, shown: str, encoding: str, why: str | None = None, how: str | None = None) -> NotText:
        """``shown``: the name as read, U+FFFD for what is not text; ``why``
        it is refused, if not for being no text in ``encoding``; ``how`` to
        send it, if not as text in ``encoding``."""
        name = encoding.upper()
        return cls(
            None,
            f"The field name {shown!r} is {why or f'not {name} text'}; send the name as {how or name}.",
        )

    @classmethod
    def file_name(
        cls, field: str, shown: str, encoding: str, why: str | None = None, how: str | None = None
    ) -> NotText:
        name = encoding.upper()
        return cls(
            field,
            f"The file's name {shown!r} is {why or f'not {name} text'}; send the name as {how or name}.",
        )


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
        # Django's parser reads the body from _input_data, split at the
        # boundary it has checked (_boundary, not in django-stubs).
        boundary: bytes = self._boundary  # type: ignore[attr-defined]
        self._input_data = DispositionCheck(input_data, boundary, self._text_encoding)

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
        sent = read.encode("latin-1")
        try:
            return sent.decode(self._text_encoding)
        except UnicodeError:  # UnicodeDecodeError, or a codec's own refusal
            if field is None:
                raise NotText.field_name(_shown(sent, self._text_encoding), self._text_encoding) from None
            raise NotText.value(field, self._text_encoding) from None


# The blank line that ends a part's headers, and how far into a part
# Django's parser looks for it (not in django-stubs).
_HEADERS_END: Final = b"\r\n\r\n"
_HEADERS_MAX: Final[int] = multipartparser.MAX_TOTAL_HEADER_SIZE  # type: ignore[attr-defined]


class DispositionCheck:
    """A multipart body, read through for Django's parser: the
    Content-Disposition of each part is checked as its headers stream past
    (``disposition_check``), before the parser would drop the part or read
    its names with U+FFFD.

    The parts are found as Django's parser finds them: each starts after a
    ``--boundary`` (the first at the start of the body) and its headers end at
    the first blank line within its first _HEADERS_MAX bytes."""

    def __init__(self, stream: Any, boundary: bytes, encoding: str) -> None:
        self._stream = stream
        self._separator = b"--" + boundary
        self._encoding = encoding
        self._in_headers = True
        self._unread = b""

    def read(self, size: int = -1) -> bytes:
        data: bytes = self._stream.read(size)
        self._unread = self._scan(self._unread + data)
        return data

    def _scan(self, data: bytes) -> bytes:
        """Checks the headers of each part that ``data`` holds whole; the
        bytes to look at again with the next read."""
        while True:
            separator = data.find(self._separator)
            if self._in_headers:
                bound = min(_HEADERS_MAX, len(data) if separator == -1 else separator)
                end = data.find(_HEADERS_END, 0, bound)
                if end != -1:
                    disposition_check(data[:end], self._encoding)
                    self._in_headers = False
                    data = data[end + len(_HEADERS_END) :]
                    continue
                if separator == -1 and len(data) < _HEADERS_MAX:
                    return data  # the blank line may come with the next read
                self._in_headers = False  # none: Django's parser reads no headers either
            if separator == -1:
                # A separator may start in these last bytes.
                return data[max(0, len(data) - len(self._separator) + 1) :]
            data = data[separator + len(self._separator) :]
            self._in_headers = True


def disposition_check(headers: bytes, encoding: str) -> None:
    """NotText if the Content-Disposition among a part's ``headers`` gives a
    field name or a file name that is not text: as bytes, in UTF-8 (Django
    reads headers in it) or in the form's ``encoding``; RFC 2231-encoded, in
    the charset it names."""
    for line in headers.split(b"\r\n"):
        # Read as Django's parser reads it, as UTF-8: read otherwise, a name
        # would not be cut where its parser cuts it (the UTF-8 of "à" ends
        # in a byte that is a space in Latin-1, which an unquoted name lost).
        # A line that is not UTF-8 its parser skips: read as Latin-1, each
        # byte one character, the names' bytes are had back to quote them.
        utf8 = _is_text(line, "utf-8")
        read_as = "utf-8" if utf8 else "latin-1"
        read = _params(line, read_as)
        if read is None:
            continue  # a header Django's parser skips too
        header, sent = read
        if header != "content-disposition" or "name" not in sent:
            continue  # no field: Django's parser leaves the part out
        # The bytes as sent, each a character, for the letters sent as they
        # are in an RFC 2231 value (which the line as UTF-8 hides).
        as_bytes = sent if not utf8 or line.isascii() else (_params(line, "latin-1") or ("", {}))[1]
        field, why, how = _name(sent["name"], as_bytes.get("name"), encoding, read_as)
        if why:
            raise NotText.field_name(field.strip(), encoding, why, how)
        if "filename" in sent:
            file_name, why, how = _name(sent["filename"], as_bytes.get("filename"), encoding, read_as)
            if why:
                raise NotText.file_name(field.strip(), file_name, encoding, why, how)
        if not utf8:
            # Django's parser leaves out the part for a byte anywhere in it.
            raise NotText(
                field.strip(), "The part's Content-Disposition is not UTF-8 text; send it as UTF-8."
            )


def _params(line: bytes, read_as: str) -> tuple[str, dict[str, Any]] | None:
    """A header ``line`` read as ``read_as``: its name (in lower case, empty
    if it has none) and its parameters, as Django's parser reads them; None
    for a line it skips."""
    message = Message()
    try:
        message["content-type"] = line.decode(read_as)
        (main, _), *params = message.get_params() or [("", "")]
    except ValueError:
        return None
    header, colon, _ = main.lower().partition(":")
    return (header if colon else ""), dict(params)


# Why a name sent RFC 2231-encoded with letters past ASCII as they are is refused.
_NOT_ESCAPED: Final = "not percent-encoded, as a name*= or filename*= value must be"


def _name(
    value: str | tuple[str, str, str], as_bytes: Any, encoding: str, read_as: str
) -> tuple[str, str | None, str | None]:
    """A name of a Content-Disposition (its line read as ``read_as``) as a
    person reads it, U+FFFD for what is not text, why it is refused (None:
    it is text) and how to send it instead (None: as text in ``encoding``).
    ``as_bytes``: the same name, its line read as Latin-1."""
    if not isinstance(value, tuple):
        sent = value.encode(read_as)
        for charset in dict.fromkeys(["utf-8", encoding]):
            if not _is_text(sent, charset):
                return _shown(sent, charset), f"not {charset.upper()} text", None
        return sent.decode(encoding), None, None
    # RFC 2231: charset'language'percent-escapes, the escapes read as Latin-1.
    charset, _, text = value
    if charset == "":
        return text, None, None  # Django's parser takes it as read: always text
    charset = charset or "us-ascii"
    # Django's parser reads each character as the byte of its number (one
    # past Latin-1 as the text of its escape, \u20ac): right for escapes,
    # wrong for a letter sent as it is ("é" read as the byte E9, no UTF-8).
    read = text.encode("raw-unicode-escape")
    sent = as_bytes[2].encode("latin-1") if isinstance(as_bytes, tuple) else read
    try:
        codecs.lookup(charset)
    except LookupError:  # Django's parser leaves out the part
        return _shown(sent, encoding), f"in a charset of no known name ({charset!r})", None
    if sent != read:
        return _shown(sent, charset), _NOT_ESCAPED, f"{charset.upper()}, each byte past ASCII as %XX"
    try:
        return sent.decode(charset), None, None
    except UnicodeError:
        return _shown(sent, charset), f"not {charset.upper()} text", None
    except LookupError:  # a codec of no text (base64): Django's parser takes it as read
        return text, None, None


def _is_text(sent: bytes, encoding: str) -> bool:
    try:
        sent.decode(encoding)
    except UnicodeError:
        return False
    return True


def _shown(sent: bytes, encoding: str) -> str:
    """``sent`` as a person reads it, U+FFFD for what is not text."""
    try:
        return sent.decode(encoding, errors="replace")
    except UnicodeError:  # a codec that refuses even so (IDNA)
        return sent.decode("utf-8", errors="replace")


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
