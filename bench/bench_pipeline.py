"""Benchmark the upload pipeline against pyvips and a naive Pillow approach.

Run from the repository root::

    .venv/bin/python bench/bench_pipeline.py [--rounds N] [--quick]

Every contender produces the same renditions as the ``web`` preset: widths
320/640/1024/1600 plus a 256 px centre-cropped square, each as WebP (quality
80, effort/method 4) and progressive optimised JPEG (quality 82, 4:2:0), with
all metadata stripped. Rounds are interleaved (portal, pyvips, naive, portal,
...) so background load on the machine hits every contender alike; the table
shows the median and the best round.

Peak memory of the portal pipeline is measured in a fresh subprocess: the
growth of the peak resident set (``VmHWM`` in ``/proc/self/status``, which,
unlike ``ru_maxrss``, is not inherited from the parent across fork/exec) over
one ``process()`` call, above a baseline taken after imports, plugin
registration and reading the input file into memory.

Two more figures: a phone's 12 MP HEIC through the same ``web`` preset,
against pyvips on the same file when its libvips can decode HEVC (the binary
wheel usually cannot: it says so), and the cost of the automatic focal point
estimate, measured on the rendition the pipeline makes it from, as a share of
the 12 MP JPEG's processing time.
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import pyvips  # noqa: E402
from PIL import Image  # noqa: E402

from tests.uploads import corpus  # noqa: E402
from uploads import processing  # noqa: E402

WIDTHS = (320, 640, 1024, 1600)
THUMB = 256
JPEG_Q = 82
WEBP_Q = 80
CORES = os.cpu_count() or 1

TARGET_VS_PYVIPS = 0.6
TARGET_VS_NAIVE = 1 / 3
TARGET_FOCAL_SHARE = 0.10
TARGET_MB = {"12 MP": 60, "50 MP": 150}

Renditions = list[tuple[str, int, int, int]]  # (format, width, height, bytes)


# --------------------------------------------------------------------------
# Contenders


def portal(data: bytes) -> Renditions:
    result = processing.process(data, processing.DEFAULT_PRESETS["web"])
    return [(o.format, o.width, o.height, len(o.data)) for o in result.outputs]


def _vips_save_options() -> tuple[dict[str, object], dict[str, object]]:
    strip: dict[str, object] = {"keep": "none"} if pyvips.at_least_libvips(8, 15) else {"strip": True}
    jpeg = {"Q": JPEG_Q, "interlace": True, "optimize_coding": True, "subsample_mode": "on", **strip}
    webp = {"Q": WEBP_Q, "effort": 4, **strip}
    return jpeg, webp


VIPS_JPEG, VIPS_WEBP = _vips_save_options()


def _vips_encode(img: pyvips.Image, out: Renditions) -> None:
    webp = img.write_to_buffer(".webp", **VIPS_WEBP)
    jpeg = img.write_to_buffer(".jpg", **VIPS_JPEG)
    out += [("webp", img.width, img.height, len(webp)), ("jpeg", img.width, img.height, len(jpeg))]


def pyvips_per_output(data: bytes) -> Renditions:
    """The textbook use: one ``thumbnail_buffer`` (shrink-on-load) per rendition."""
    out: Renditions = []
    for width in WIDTHS:
        # copy_memory: two encoders cannot both stream from one sequential JPEG read.
        _vips_encode(pyvips.Image.thumbnail_buffer(data, width, size="down").copy_memory(), out)
    thumb = pyvips.Image.thumbnail_buffer(data, THUMB, height=THUMB, crop="centre", size="down")
    _vips_encode(thumb.copy_memory(), out)
    return out


def pyvips_once_then_resize(data: bytes) -> Renditions:
    """pyvips at its best: one shrink-on-load decode to 1600 px, then each
    smaller width resized from the previous one, like the portal does."""
    out: Renditions = []
    largest = pyvips.Image.thumbnail_buffer(data, max(WIDTHS), size="down").copy_memory()
    previous = largest
    for width in sorted(WIDTHS, reverse=True):
        img = previous if width == previous.width else previous.resize(width / previous.width).copy_memory()
        _vips_encode(img, out)
        previous = img
    source = previous if min(previous.width, previous.height) >= THUMB else largest
    _vips_encode(source.thumbnail_image(THUMB, height=THUMB, crop="centre").copy_memory(), out)
    return out


def _pillow_encode(img: Image.Image, out: Renditions) -> None:
    for fmt in ("webp", "jpeg"):
        buffer = io.BytesIO()
        if fmt == "webp":
            img.save(buffer, "WEBP", quality=WEBP_Q, method=4)
        else:
            img.save(buffer, "JPEG", quality=JPEG_Q, optimize=True, progressive=True, subsampling="4:2:0")
        out.append((fmt, img.width, img.height, len(buffer.getvalue())))


def naive_pillow(data: bytes) -> Renditions:
    """What most tutorials do: decode everything, resize each output from the original."""
    out: Renditions = []
    with Image.open(io.BytesIO(data)) as img:
        img.load()
        for width in WIDTHS:
            height = round(img.height * width / img.width)
            _pillow_encode(img.resize((width, height), Image.Resampling.LANCZOS), out)
        side = min(img.size)
        left, top = (img.width - side) / 2, (img.height - side) / 2
        box = (left, top, left + side, top + side)
        _pillow_encode(img.resize((THUMB, THUMB), Image.Resampling.LANCZOS, box=box), out)
    return out


CONTENDERS: dict[str, Callable[[bytes], Renditions]] = {
    "portal process(web)": portal,
    "pyvips thumbnail per output": pyvips_per_output,
    "pyvips thumbnail once + resize": pyvips_once_then_resize,
    "naive Pillow (full decode)": naive_pillow,
}


# --------------------------------------------------------------------------
# Measurement


def timed(fn: Callable[[bytes], Renditions], data: bytes) -> float:
    start = time.perf_counter()
    fn(data)
    return time.perf_counter() - start


def race(data: bytes, rounds: int, skip_naive: bool) -> dict[str, list[float]]:
    contenders = {k: v for k, v in CONTENDERS.items() if not (skip_naive and v is naive_pillow)}
    for fn in contenders.values():  # warm up: plugin loading, thread pools, vips init
        fn(data)
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, fn in contenders.items():
            times[name].append(timed(fn, data))
    return times


def _peak_rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    # Not Linux: ru_maxrss is the same figure (KiB on Linux, bytes on macOS).
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def memory_child(path: str) -> None:
    """Runs in a fresh interpreter; prints the peak growth and the baseline in KiB."""
    data = Path(path).read_bytes()
    Image.init()
    baseline = _peak_rss_kib()
    processing.process(data, processing.DEFAULT_PRESETS["web"])
    print(_peak_rss_kib() - baseline, baseline)


def peak_memory_mb(data: bytes) -> tuple[float, float]:
    with tempfile.NamedTemporaryFile(suffix=".jpg") as tmp:
        tmp.write(data)
        tmp.flush()
        completed = subprocess.run(
            [sys.executable, __file__, "--memory-child", tmp.name],
            check=True,
            capture_output=True,
            text=True,
        )
    delta_kib, baseline_kib = (int(v) for v in completed.stdout.split())
    return delta_kib / 1024, baseline_kib / 1024


def encoder_costs(data: bytes, repeats: int = 7) -> list[tuple[str, float, int]]:
    """What each step costs at the largest rendition, to explain the design."""
    img = Image.open(io.BytesIO(data))
    img.draft("RGB", (1600, 1200))
    img.load()
    work = img.resize((1600, round(img.height * 1600 / img.width)), Image.Resampling.LANCZOS)

    def measure(label: str, fn: Callable[[], object]) -> tuple[str, float, int]:
        samples, size = [], 0
        for _ in range(repeats):
            start = time.perf_counter()
            result = fn()
            samples.append(time.perf_counter() - start)
            size = len(result) if isinstance(result, bytes) else 0
        return label, statistics.median(samples), size

    def save(**params: object) -> bytes:
        buffer = io.BytesIO()
        work.save(buffer, **params)  # type: ignore[arg-type]
        return buffer.getvalue()

    def decode(scale: bool) -> bytes:
        with Image.open(io.BytesIO(data)) as fresh:
            if scale:
                fresh.draft("RGB", (1600, 1200))
            fresh.load()
        return b""

    rows = [
        measure("decode full size", lambda: decode(False)),
        measure("decode with draft (DCT scaling)", lambda: decode(True)),
        measure(
            f"Lanczos {img.width}px -> 1600px, one thread",
            lambda: img.resize(work.size, Image.Resampling.LANCZOS, reducing_gap=2.0),
        ),
        measure(f"Lanczos {img.width}px -> 1600px, two bands", lambda: processing._resample(img, work.size)),
        measure("JPEG q82 baseline", lambda: save(format="JPEG", quality=JPEG_Q)),
        measure("JPEG q82 optimize", lambda: save(format="JPEG", quality=JPEG_Q, optimize=True)),
        measure("JPEG q82 progressive", lambda: save(format="JPEG", quality=JPEG_Q, progressive=True)),
        measure(
            "JPEG q82 progressive+optimize",
            lambda: save(format="JPEG", quality=JPEG_Q, progressive=True, optimize=True),
        ),
        measure("WebP q80 method 4", lambda: save(format="WEBP", quality=WEBP_Q, method=4)),
    ]
    img.close()
    return rows


def pyvips_reads(data: bytes) -> str:
    """Empty when pyvips decodes ``data``; else why not, in a few words."""
    try:
        pyvips.Image.thumbnail_buffer(data, 64).copy_memory()
    except pyvips.Error as exc:
        lines = [line for line in str(exc).splitlines() if "plugin" in line or "decoder" in line]
        return (lines[0] if lines else str(exc).splitlines()[0]).strip()[:160]
    return ""


def heic_race(data: bytes, rounds: int, with_vips: bool) -> dict[str, list[float]]:
    def decode_only(data: bytes) -> Renditions:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
        return []

    contenders: dict[str, Callable[[bytes], Renditions]] = {
        "portal process(web), HEIC": portal,
        "pillow-heif decode alone": decode_only,
    }
    if with_vips:
        contenders["pyvips thumbnail per output, HEIC"] = pyvips_per_output
        contenders["pyvips thumbnail once + resize, HEIC"] = pyvips_once_then_resize
    for fn in contenders.values():
        fn(data)
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, fn in contenders.items():
            times[name].append(timed(fn, data))
    return times


def heic_report(rounds: int) -> str:
    """HEIC decode and processing per 12 MP image; against pyvips if it can."""
    started = time.perf_counter()
    data = corpus.heic_photo(4000, 3000)
    made = time.perf_counter() - started
    why_not = pyvips_reads(data)
    times = heic_race(data, rounds, with_vips=not why_not)
    medians = {name: statistics.median(values) for name, values in times.items()}
    best = {name: min(values) for name, values in times.items()}
    portal_median = medians["portal process(web), HEIC"]
    print(
        f"12 MP: 4000x3000 HEIC, {len(data) / 1e6:.1f} MB (made in {made:.0f} s), {rounds} interleaved rounds"
    )
    print(f"  {'pipeline':34} {'median s':>9} {'best s':>8}   {'portal / this':>13}")
    for name in times:
        ratio = portal_median / medians[name]
        print(f"  {name:34} {medians[name]:9.3f} {best[name]:8.3f}   {ratio:13.2f}  (information)")
    decode_share = medians["pillow-heif decode alone"] / portal_median
    print(
        f"  decoding is {decode_share:.0%} of the portal's time: HEVC has no reduced-scale decode like JPEG's"
    )
    if why_not:
        print(f"  pyvips cannot read HEIC here, so no comparison: {why_not}")
        return f"12 MP HEIC: portal {portal_median:.2f} s per image; pyvips cannot read HEIC here"
    vips = medians["pyvips thumbnail per output, HEIC"]
    return f"12 MP HEIC: portal {portal_median:.2f} s per image, portal/pyvips {portal_median / vips:.2f} (per output)"


def focal_share_report(data: bytes, portal_median: float, repeats: int) -> str:
    """The automatic focal point's cost per image, as a share of the pipeline.

    The pipeline estimates it from its smallest whole rendition (320 px wide
    for the web preset), so it is timed on exactly that picture.
    """
    with Image.open(io.BytesIO(data)) as img:
        img.draft("RGB", (640, 480))
        smallest = img.resize((320, round(img.height * 320 / img.width)), Image.Resampling.LANCZOS)
    processing.estimate_focal_point(smallest)
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        processing.estimate_focal_point(smallest)
        samples.append(time.perf_counter() - start)
    median, best = statistics.median(samples), min(samples)
    share = median / portal_median
    verdict_text = verdict(share, TARGET_FOCAL_SHARE)
    name = "auto focal point, share of it"
    print(
        f"  {name:34} {median:9.4f} {best:8.4f}   {share:13.3f}  <= {TARGET_FOCAL_SHARE:.2f}  {verdict_text}"
        f"   ({median * 1000:.1f} ms on a {smallest.width}x{smallest.height} rendition, {repeats} runs)"
    )
    return f"12 MP: automatic focal point {median * 1000:.1f} ms, {share:.1%} of the pipeline"


# --------------------------------------------------------------------------
# Report


def verdict(value: float, target: float) -> str:
    return "met" if value <= target else "MISSED"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7, help="rounds at 12 MP (50 MP uses half, at least 3)")
    parser.add_argument("--quick", action="store_true", help="3 rounds, skip the encoder cost table")
    parser.add_argument("--memory-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        memory_child(args.memory_child)
        return

    pyvips.cache_set_max(0)  # a cached thumbnail of the same buffer would be cheating
    pyvips.vips_lib.vips_concurrency_set(CORES)
    rounds_12 = 3 if args.quick else max(5, args.rounds)
    rounds_50 = 3 if args.quick else max(3, args.rounds // 2)

    print(f"Pillow {Image.__version__}, libvips {pyvips.version(0)}.{pyvips.version(1)}.{pyvips.version(2)}")
    print(f"{CORES} CPU cores; pyvips concurrency {pyvips.vips_lib.vips_concurrency_get()}, portal pool size")
    print(f"{processing._pool()._max_workers} threads + the calling thread.")
    print("Outputs per image: 4 widths + 256 px thumb, each WebP q80 + progressive JPEG q82 (10 files).")
    print(f"Load average at start: {os.getloadavg()[0]:.2f} (above ~0.5 the figures are noisy: other work")
    print("competes for the same cores, and the portal's edge comes from using both cores at once).\n")

    images = [("12 MP", 4000, 3000, rounds_12), ("50 MP", 8660, 5773, rounds_50)]
    summary: list[str] = []
    for label, width, height, rounds in images:
        data = corpus.photo_jpeg(width, height, quality=90)
        check = {name: sorted((f, w, h) for f, w, h, _ in fn(data)) for name, fn in CONTENDERS.items()}
        reference = check["portal process(web)"]
        times = race(data, rounds, skip_naive=False)
        medians = {name: statistics.median(values) for name, values in times.items()}
        best = {name: min(values) for name, values in times.items()}
        peak_mb, baseline_mb = peak_memory_mb(data)

        print(f"{label}: {width}x{height} JPEG, {len(data) / 1e6:.1f} MB, {rounds} interleaved rounds")
        print(f"  {'pipeline':34} {'median s':>9} {'best s':>8}   {'portal / this':>13}  target")
        portal_median = medians["portal process(web)"]
        for name in times:
            ratio = portal_median / medians[name]
            if name.startswith("pyvips"):
                target = f"<= {TARGET_VS_PYVIPS:.2f}  {verdict(ratio, TARGET_VS_PYVIPS)}"
            elif name.startswith("naive"):
                target = f"<= {TARGET_VS_NAIVE:.2f}  {verdict(ratio, TARGET_VS_NAIVE)}"
            else:
                target = ""
            same = "" if check[name] == reference else "  (sizes differ by rounding)"
            print(f"  {name:34} {medians[name]:9.3f} {best[name]:8.3f}   {ratio:13.2f}  {target}{same}")
        target_mb = TARGET_MB[label]
        print(
            f"  portal peak memory: +{peak_mb:.0f} MB peak RSS (VmHWM) over a {baseline_mb:.0f} MB baseline"
            f" with the input already in memory   target <= {target_mb} MB  {verdict(peak_mb, target_mb)}\n"
        )
        summary.append(
            f"{label}: portal/pyvips {portal_median / medians['pyvips thumbnail per output']:.2f} (per output), "
            f"{portal_median / medians['pyvips thumbnail once + resize']:.2f} (once + resize); "
            f"portal/naive {portal_median / medians['naive Pillow (full decode)']:.2f}; peak +{peak_mb:.0f} MB"
        )

        if label == "12 MP":
            summary.append(focal_share_report(data, portal_median, 20 if args.quick else 200))
            print()

        if label == "12 MP" and not args.quick:
            print("  Step costs at 12 MP (median, one thread unless stated):")
            for step, seconds, size in encoder_costs(data):
                extra = f"  {size / 1024:.0f} KiB" if size else ""
                print(f"    {step:44} {seconds * 1000:7.1f} ms{extra}")
            print()

    summary.append(heic_report(3 if args.quick else max(3, args.rounds // 2)))
    print()

    print(f"Load average at end: {os.getloadavg()[0]:.2f}\n")
    print("Summary")
    for line in summary:
        print("  " + line)


if __name__ == "__main__":
    main()
