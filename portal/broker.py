"""kombu's Redis transport, with a channel that finishes closing when Redis is
already gone.

When a worker loses Redis, Celery closes the connection twice: once to
collect it (which then forgets the connection's address) and once more to
release it. kombu's Redis channel talks to Redis on its way out before it
counts itself closed: it reads the reply of a pending BRPOP (a worker with a
free pool slot has one) and removes the binding of a broadcast queue (each
worker consumes ``settings.HOSTS_QUEUE`` through one). With Redis gone, that
first close stops there; the second one, with the address forgotten, then
fails to hand back the task the worker is running (``AttributeError``, not a
connection error), and Celery stops the worker for good instead of
reconnecting. This channel finishes the first close whatever Redis answers:
what it could not tell Redis is lost with the connection anyway (a running
task stays Redis's until acknowledged, and is handed out again after the
visibility timeout if it never is).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from kombu.transport import redis

REDIS_SCHEMES = frozenset({"redis", "rediss"})


class Channel(redis.Channel):
    def close(self) -> None:
        try:
            super().close()
        except self.connection_errors:
            if self.closed:  # closed already; only handing back a task failed
                raise
            # Redis is gone: the pending BRPOP has no reply to read, and a
            # broadcast queue's binding stays in Redis, where the worker binds
            # the same queue again on reconnecting and removes it on stopping.
            self._in_poll = False
            self.auto_delete_queues.clear()
            super().close()


class Transport(redis.Transport):
    Channel = Channel


def transport_for(url: str) -> str | None:
    """The transport for a broker URL: this module's for Redis, else the
    one the URL's scheme names (None)."""
    return f"{__name__}:Transport" if urlsplit(url).scheme in REDIS_SCHEMES else None
