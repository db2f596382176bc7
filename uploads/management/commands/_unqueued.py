"""What the image commands say of images the broker did not take.

uploads.dispatch marks such an image (``holder=UNQUEUED``) and leaves it
pending; the sweep queues it once the broker is back. A command that counted
it as queued would exit 0 on a run that queued nothing. (Django takes no
command from a module whose name starts with an underscore.)
"""

from __future__ import annotations

from collections.abc import Sequence

from django.conf import settings

from uploads import holders
from uploads.models import WAITING, Image

# Ids per query: SQLite takes at most 32,766 parameters.
CHUNK = 1000


def unqueued(ids: Sequence[int]) -> int:
    """How many of these images are still waiting because the broker refused them."""
    unique = sorted(set(ids))
    return sum(
        Image.objects.filter(
            pk__in=unique[start : start + CHUNK], status__in=WAITING, holder=holders.UNQUEUED
        ).count()
        for start in range(0, len(unique), CHUNK)
    )


def left_pending(count: int) -> str:
    """The summary's words for them."""
    return f"{count} left pending: the broker did not take them"


def reason(count: int) -> str:
    """The error's words for them (exit 2: the others landed)."""
    return (
        f"{count} image(s) not queued, the broker is unavailable; the sweep queues them "
        f"once it is back (every {settings.SWEEP_INTERVAL_SECONDS} s)"
    )
