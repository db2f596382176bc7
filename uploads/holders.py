"""Which process holds an image's pending work, and whether it still lives.

Without a broker, an image waiting to be processed lives only in the memory
of the process that queued it (a server's background thread, a command's
batch). If that process dies (killed, a crash, gunicorn recycling a worker
after ``--max-requests``), nothing else would know the work is lost until
the image had waited IMAGE_STUCK_AFTER_SECONDS. So the process records itself
on the row (``Image.holder``) when it takes the work, and the sweep and a
re-run import take over at once the work of a holder that is gone.

A holder is ``host:pid:start``: the start time (from /proc, where there is
one) tells a dead process from a new one that was given the same pid. Only
holders on this host can be judged; any other holder is taken as alive.
With a broker, the queue outlives every process, and no holder is recorded.
"""

from __future__ import annotations

import functools
import os
import socket
from pathlib import Path

from django.conf import settings

_PROC = Path("/proc")


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot; None if it has
    ended (or is a zombie waiting to be reaped). "" where /proc is missing."""
    if not _PROC.is_dir():
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        return ""
    try:
        stat = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The command name, in parentheses, may itself hold spaces and ")".
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] in ("Z", "X"):
        return None
    return fields[19]


@functools.cache
def _me(pid: int) -> str:
    return f"{socket.gethostname()}:{pid}:{_start_time(pid) or ''}"


def mine() -> str:
    """This process, as recorded on the images it takes; "" with a broker."""
    return "" if settings.BROKER_CONFIGURED else _me(os.getpid())


def this_host() -> str:
    """What every holder on this host starts with."""
    return socket.gethostname() + ":"


def gone(holder: str) -> bool:
    """Whether ``holder`` is a process of this host that no longer runs."""
    if not holder.startswith(this_host()):
        return False
    try:
        _, pid, start = holder.rsplit(":", 2)
        now = _start_time(int(pid))
    except ValueError:
        return False
    # A start time that differs: the pid was given to a new process.
    return now is None or (start != "" and now not in ("", start))
