"""Which process holds an image's pending work, and whether it still lives.

Without a broker, an image waiting to be processed lives only in the memory
of the process that queued it (a server's background thread, a command's
batch). If that process dies (killed, a crash, gunicorn recycling a worker
after ``--max-requests``), nothing else would know the work is lost until
the image had waited IMAGE_STUCK_AFTER_SECONDS. So the process records itself
on the row (``Image.holder``) when it takes the work, and the sweep and a
re-run import take over at once the work of a holder that is gone.

A holder is ``node:pid:start``. The node is the host name, the kernel's boot
id and the pid namespace: only holders whose pids mean the same processes as
ours are judged (not another container's, not a machine's of the same name);
any other holder is taken as alive. The start time (from /proc, where it is
readable) tells a dead process from a new one given the same pid.
With a broker, the queue outlives every process, and no holder is recorded.
The health alerts' claims on a check record their run's process the same way
(``this_process``), broker or not.
"""

from __future__ import annotations

import functools
import os
import re
import socket
from pathlib import Path

from django.conf import settings

_PROC = Path("/proc")


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


@functools.cache
def _node() -> str:
    """Where pids mean the same processes: this host name, this boot of its
    kernel and this pid namespace. Two containers (their own pid namespaces)
    or two machines called alike never judge each other's processes."""
    boot = _read(_PROC / "sys" / "kernel" / "random" / "boot_id")[:8]
    try:
        namespace = os.readlink(_PROC / "self" / "ns" / "pid").removeprefix("pid:").strip("[]")
    except OSError:
        namespace = ""
    return "/".join(part for part in (socket.gethostname(), boot, namespace) if part)


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot; None if it has
    ended (or is a zombie waiting to be reaped); "" if it runs but its start
    cannot be read (no /proc, or one that hides other users' processes)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # it runs, as another user
    stat = _read(_PROC / str(pid) / "stat")
    if not stat:
        return ""
    # The command name, in parentheses, may itself hold spaces and ")".
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] in ("Z", "X"):
        return None
    return fields[19]


@functools.cache
def _me(pid: int) -> str:
    return f"{_node()}:{pid}:{_start_time(pid) or ''}"


def this_process() -> str:
    """This process, as ``gone`` judges it."""
    return _me(os.getpid())


def mine() -> str:
    """This process, as recorded on the images it takes; "" with a broker."""
    return "" if settings.BROKER_CONFIGURED else this_process()


def this_host() -> str:
    """What every holder this process can judge starts with."""
    return _node() + ":"


# Recorded on an image whose task the broker did not take (it was away): no
# process holds it, so the next sweep on any host takes it over.
UNQUEUED = "unqueued"


# A holder as ``_me`` writes it: node, pid (a positive number a pid_t
# holds), start time (clock ticks, or none where /proc hides it).
_HOLDER = re.compile(r"(?P<node>[^:]*):(?P<pid>[1-9][0-9]{0,8}):(?P<start>[0-9]*)", re.ASCII)


def ended(process: str) -> bool:
    """Whether ``process`` (as ``this_process`` names one) is a process of
    this host (and pid namespace) that no longer runs. Text of any other
    shape (a pid that is none, a start that is no time, a field too many)
    is nobody's to judge: taken as alive, as another host's process is."""
    match = _HOLDER.fullmatch(process)
    if match is None or match["node"] != _node():
        return False
    now = _start_time(int(match["pid"]))
    # A start time that differs: the pid was given to a new process.
    return now is None or (match["start"] != "" and now not in ("", match["start"]))


def gone(holder: str) -> bool:
    """Whether ``holder`` is a process of this host (and pid namespace) that
    no longer runs (``ended``), or nobody (UNQUEUED)."""
    return holder == UNQUEUED or ended(holder)
