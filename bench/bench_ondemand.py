"""Renditions on demand (SPEC §5): the time to first byte of a signed
rendition URL, cold (the rendition is made on this request) and warm (it
exists: a redirect to the stored object, no processing).

The portal runs embedded as ``make run`` sets it up (SQLite, media on the
local disk, processing in-process) in a temporary ``PORTAL_VAR_DIR``, served by
gunicorn (2 sync workers, the ``make serve`` command line). A 12 MP photo-like
JPEG is uploaded and processed first. Each round asks for a size never asked
for before (``fill-<800+n>x600``, WebP: cold) and for the previous round's
size again (warm), in alternating order, after a first round that warms the
server up. Times are the client's, from sending the request to the status line
and headers (first byte), and for warm also to the end of the stored rendition
the redirect leads to (gunicorn's sync workers close each connection, so every
request opens one). Medians over the rounds, with their spread.

    .venv/bin/python -m bench.bench_ondemand [--quick]
"""

from __future__ import annotations

import http.client
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

from bench import Result, main, spread
from bench.bench_pages import configure

SIZE = (4000, 3000)
WEB_WORKERS = 2


class Server:
    """gunicorn on the embedded set-up configured in this process's environment."""

    def __init__(self, workdir: Path) -> None:
        from tests.servers import free_port

        self.port = free_port()
        self.log = (workdir / "gunicorn.log").open("ab")
        command = [
            str(Path(sys.executable).parent / "gunicorn"), "portal.wsgi:application",
            "--bind", f"127.0.0.1:{self.port}", "--workers", str(WEB_WORKERS), "--timeout", "60",
        ]  # fmt: skip
        self.process = subprocess.Popen(
            command, env=os.environ.copy(), stdout=self.log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                status, _, _ = self.get("/health/live")
                if status == 200:
                    return
            except OSError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("gunicorn did not start; see its log")
            time.sleep(0.2)

    def connection(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)

    def get(
        self, path: str, connection: http.client.HTTPConnection | None = None
    ) -> tuple[int, float, bytes]:
        """(status, seconds to the status line and headers, body)."""
        conn = connection or self.connection()
        started = time.perf_counter()
        conn.request("GET", path, headers={"Accept": "image/avif,image/webp,*/*"})
        response = conn.getresponse()  # returns once the headers are in: the first byte's time
        first_byte = time.perf_counter() - started
        body = response.read()
        location = response.getheader("Location")
        if connection is None:
            conn.close()
        if location:
            return response.status, first_byte, location.encode()
        return response.status, first_byte, body

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


def run(quick: bool) -> list[Result]:
    rounds = 5 if quick else 9
    with tempfile.TemporaryDirectory(prefix="bench-ondemand-") as tmp:
        workdir = Path(tmp)
        configure(workdir / "var")
        import logging

        from tests.uploads import corpus
        from uploads import ondemand, services
        from uploads.models import Image

        logging.getLogger("uploads").setLevel(logging.WARNING)
        image = services.image_upload(file=corpus.photo_jpeg(*SIZE), original_name="bench-ondemand.jpg")
        image.refresh_from_db()
        if image.status != Image.Status.READY:
            raise RuntimeError(f"the photo was not processed: {image.status} {image.error}")
        print(
            f"Photo: {image.width}x{image.height} ({image.bytes / 1e6:.1f} MB JPEG), preset renditions made"
        )

        server = Server(workdir)
        try:
            conn = server.connection()
            made: list[str] = []
            cold, warm, warm_total = [], [], []
            for n in range(rounds + 1):
                path = ondemand.url_path(image.pk, f"fill-{800 + n}x600", "webp")
                order = ["cold", "warm"] if n % 2 else ["warm", "cold"]
                for kind in order:
                    if kind == "cold":
                        status, seconds, body = server.get(path, conn)
                        if status != 200:
                            raise RuntimeError(f"cold {path}: HTTP {status} {body[:200]!r}")
                        if n:  # the first round warms the server up
                            cold.append(seconds)
                        made.append(path)
                    elif made:
                        status, seconds, location = server.get(made[-1], conn)
                        if status != 302:
                            raise RuntimeError(f"warm {made[-1]}: HTTP {status}")
                        started = time.perf_counter()
                        target = urlsplit(location.decode()).path
                        status, _, data = server.get(target, conn)
                        if status != 200 or not data:
                            raise RuntimeError(f"{target}: HTTP {status}")
                        if n:
                            warm.append(seconds)
                            warm_total.append(seconds + time.perf_counter() - started)
                if n:
                    print(f"round {n}: cold {cold[-1] * 1000:.0f} ms, warm {warm[-1] * 1000:.1f} ms")
            conn.close()
        finally:
            server.close()

    def ms(values: list[float]) -> list[float]:
        return [v * 1000 for v in values]

    ratios = [c / w for c, w in zip(cold, warm, strict=True)]
    print(
        f"\nCold (made on the request) TTFB: median {statistics.median(ms(cold)):.0f} ms "
        f"(spread {spread(ms(cold), 0)} ms); warm (302 to the stored rendition): median "
        f"{statistics.median(ms(warm)):.1f} ms (spread {spread(ms(warm), 1)} ms), "
        f"{statistics.median(ms(warm_total)):.1f} ms with the rendition itself; "
        f"{len(cold)} rounds, gunicorn {WEB_WORKERS} sync workers, embedded set-up"
    )
    label = f"{SIZE[0] * SIZE[1] // 1_000_000} MP -> fill-800x600 webp"
    return [
        Result(
            f"on demand, cold: first byte ({label})",
            statistics.median(ms(cold)),
            "ms",
            "",
            True,
            spread(ms(cold), 0),
        ),
        Result(
            "on demand, warm: first byte (302)",
            statistics.median(ms(warm)),
            "ms",
            "",
            True,
            spread(ms(warm), 1),
        ),
        Result(
            "on demand, warm: redirect + stored rendition",
            statistics.median(ms(warm_total)),
            "ms",
            "",
            True,
            spread(ms(warm_total), 1),
        ),
        Result(
            "on demand: cold / warm first byte", statistics.median(ratios), "x", "", True, spread(ratios, 0)
        ),
    ]


if __name__ == "__main__":
    main(run, __doc__ or "")
