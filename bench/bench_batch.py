"""Batch throughput (SPEC §9.1): images per second for a folder of 50 photos
through ``manage.py import_images``, against pyvips on every core making the
same outputs.

How the portal parallelises a batch: ``import_images`` stores the files one
after another on the command's thread; with no broker configured (the
embedded set-up this benchmark runs, as ``make run`` does) each image, once
its row commits, goes to one of ``--jobs`` threads (default: one per core),
each of which processes its image in a child process forked for it (the
memory ceiling and the time limit, ``uploads/sandbox.py``), where the
pipeline spreads that image's resampling and encodes over its small thread
pool. So two images at once on 2 cores, each child under the per-image
ceiling, while the command stores the next files. With a broker configured
the command only stores and queues, and the Celery workers' concurrency sets
how many images run at once.

The portal's time is the command's whole run as a user sees it (interpreter
and Django start, SQLite in WAL mode, originals and renditions written to
local media), shown with the start-up alone (the same command on an empty
folder) for reference. pyvips' time covers reading the 50 files and writing
their renditions to a folder; it gets its best shot: two images at once (one
per core), each made as in ``bench_pipeline.pyvips_every_core`` (shrink-on-load
decode, the ladder resized from the previous width, encodes on a thread
pool), the thumbnail cut from the centre (no focal point to estimate).

Each round imports new bytes (a JPEG comment tags the round), since the
command skips files it has imported before.

    .venv/bin/python -m bench.bench_batch [--quick] [--report-only] [--results FILE]
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyvips

from bench import ROOT, Result, load_average, main, spread
from bench.bench_pipeline import CORES, THUMB, WIDTHS, Layout, pyvips_every_core
from bench.bench_upload_ack import with_comment
from tests.uploads import corpus
from uploads import processing

PHOTOS = 50
SIZE = (3000, 2000)  # 6 MP: 50 of them keep a round within a minute or two on 2 cores
DISTINCT = 10  # different pictures; the rest differ by a comment only


def layout_centred(width: int, height: int) -> Layout:
    """The web preset's outputs for a source of this size, the thumbnail centred."""
    whole = tuple(
        (f"w{w}", w, max(1, round(height * w / width)))
        for w in sorted((w for w in WIDTHS if w <= width), reverse=True)
    )
    side = min(THUMB, width, height)
    return Layout((width, height), whole, side, processing.crop_box((width, height), (side, side)))


def embedded_env(var_dir: Path) -> dict[str, str]:
    """The embedded set-up (``make run``): none of a fleet's variables."""
    fleet_only = ("DATABASE_URL", "CELERY_BROKER_URL", "CACHE_URL", "AWS_STORAGE_BUCKET_NAME", "EMAIL_URL")
    env = {k: v for k, v in os.environ.items() if k not in fleet_only}
    env.update(DJANGO_SETTINGS_MODULE="portal.settings", PORTAL_VAR_DIR=str(var_dir))
    return env


def manage(env: dict[str, str], *args: str) -> float:
    started = time.perf_counter()
    completed = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    elapsed = time.perf_counter() - started
    if completed.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{completed.stdout}\n{completed.stderr}")
    return elapsed


def write_folder(folder: Path, photos: list[bytes], tag: str) -> None:
    folder.mkdir(parents=True)
    for i in range(PHOTOS):
        (folder / f"photo-{i:02}.jpg").write_bytes(with_comment(photos[i % len(photos)], f"{tag}-{i}"))


def pyvips_batch(folder: Path, out: Path) -> None:
    out.mkdir(parents=True)
    layout = layout_centred(*SIZE)

    def one(path: Path) -> None:
        for o in pyvips_every_core(path.read_bytes(), layout):
            (out / f"{path.stem}-{o.name}.{'jpg' if o.format == 'jpeg' else o.format}").write_bytes(o.data)

    with ThreadPoolExecutor(max_workers=CORES) as pool:
        list(pool.map(one, sorted(folder.iterdir())))


def run(quick: bool) -> list[Result]:
    # Every figure is a median of at least five interleaved rounds; a pair of
    # rounds (portal, then pyvips) takes about 40 s on two cores.
    rounds = 1 if quick else 5
    print(
        f"{PHOTOS} photos of {SIZE[0]}x{SIZE[1]} ({DISTINCT} distinct pictures), {rounds} interleaved rounds"
    )
    pyvips.cache_set_max(0)
    photos = [corpus.photo_jpeg(*SIZE, seed=seed) for seed in range(DISTINCT)]
    times: dict[str, list[float]] = {"portal": [], "pyvips": []}
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        base = Path(tmp)
        env = embedded_env(base / "var")
        manage(env, "migrate", "--no-input", "--verbosity", "0")
        (base / "empty").mkdir()
        startup = [manage(env, "import_images", str(base / "empty")) for _ in range(3)]

        def portal_round(i: int) -> float:
            folder = base / f"portal-{i}"
            write_folder(folder, photos, f"portal-{i}")
            return manage(env, "import_images", str(folder))

        def pyvips_round(i: int) -> float:
            folder = base / f"pyvips-{i}"
            write_folder(folder, photos, f"pyvips-{i}")
            started = time.perf_counter()
            pyvips_batch(folder, base / f"pyvips-out-{i}")
            return time.perf_counter() - started

        pyvips_round(-1)  # warm up: libvips start, thread pools
        for i in range(rounds):
            order = [("portal", portal_round), ("pyvips", pyvips_round)]
            for name, fn in order if i % 2 == 0 else reversed(order):
                times[name].append(fn(i))
                print(f"  round {i + 1}: {name} {times[name][-1]:.1f} s; {load_average()}", flush=True)

    rates = {name: [PHOTOS / t for t in values] for name, values in times.items()}
    ratios = [p / v for p, v in zip(rates["portal"], rates["pyvips"], strict=True)]
    print(f"\n  {'images/s':40} {'median':>8} {'min':>8} {'max':>8}")
    for name, label in (("portal", "portal: manage.py import_images"), ("pyvips", "pyvips on every core")):
        values = rates[name]
        print(f"  {label:40} {statistics.median(values):8.2f} {min(values):8.2f} {max(values):8.2f}")
    print(f"  start-up alone (import_images on an empty folder): {statistics.median(startup):.1f} s")
    print(f"  portal / pyvips throughput, per round: {statistics.median(ratios):.2f} ({spread(ratios)})")
    return [
        Result(
            f"batch {PHOTOS} x 6 MP: portal import_images images/s",
            round(statistics.median(rates["portal"]), 2),
            "img/s",
            "",
            True,
            spread(rates["portal"]),
        ),
        Result(
            f"batch {PHOTOS} x 6 MP: pyvips on every core images/s",
            round(statistics.median(rates["pyvips"]), 2),
            "img/s",
            "",
            True,
            spread(rates["pyvips"]),
        ),
        Result(
            f"batch {PHOTOS} x 6 MP: portal / pyvips throughput",
            round(statistics.median(ratios), 2),
            "x",
            "",
            True,
            spread(ratios),
        ),
        Result("batch: import_images start-up alone", round(statistics.median(startup), 2), "s", "", True),
    ]


if __name__ == "__main__":
    main(run, __doc__.splitlines()[0])
