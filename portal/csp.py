"""What the operator may add to the Content-Security-Policy, read by the
settings (as the process starts) and by the middleware (as it builds the
policy, whatever set them)."""

from __future__ import annotations

import re

# A source of images (PORTAL_CSP_IMG_SOURCES): a host with an optional
# scheme, port and path. Nothing that could end the directive (``;``, ``,``,
# spaces) or widen it to every host (``*``, ``https:``). Both are matched
# whole: ``$`` alone lets a final line break through, which ends the header.
IMAGE_SOURCE = re.compile(
    r"^(?:[a-z][a-z0-9+.-]*://)?(?:\*\.)?[a-z0-9-]+(?:\.[a-z0-9-]+)*(?::(?:\d+|\*))?(?:/[^\s;,'\"]*)?$", re.I
)
REPORT_URI = re.compile(r"^(?:https?://[^\s;,'\"]+|/[^\s;,'\"]*)$")
