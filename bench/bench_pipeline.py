"""Benchmark the upload pipeline against pyvips and a naive Pillow approach.

Run from the repository root::

    .venv/bin/python bench/bench_pipeline.py [--rounds N] [--quick] [--report-only] [--results FILE]

Contenders, on a 12 MP and a 50 MP photo-like JPEG:

- the portal: ``processing.process(data, web preset)``;
- **pyvips on every core**, the peer of the 0.8x target and of the quality
  checks, given its
  best shot: one shrink-on-load decode straight to the largest rendition,
  each smaller one resized from the previous, the thumbnail cut from the same
  box the portal cut (the portal's automatic focal point is handed to it for
  free, computed before the clock starts), and all ten encodes running
  concurrently on a thread pool of one thread per core (pyvips releases the
  GIL), while libvips threads each operation over every core as well. Its
  outputs are the portal's: same names, widths and heights, WebP q80
  effort 4 and progressive optimised JPEG q82 4:2:0, every piece of metadata
  stripped (``keep="none"``). Tried and not faster, so not the peer: five
  ``thumbnail_buffer`` calls in parallel (five decodes: slower at 12 MP,
  twice as slow at 50 MP), an encode pool of 3 or 4 threads (no faster);
- pyvips ``thumbnail`` run serially, one call per rendition (the textbook use);
- naive Pillow: full decode, ``resize(LANCZOS)`` of the original per output.

Also timed in every round, for the reader: the long pole, the WebP encode
of the largest rendition alone (libwebp encodes one picture on one thread, so
no pipeline making that output can finish sooner than it takes, however many
cores it has). What each side spends beyond it is the part a design
controls; the report shows both, and how much room the 0.8x target leaves.

Rounds are interleaved, the order rotating each round, so background load
hits every contender alike. Each ratio is the median of the per-round ratios
(portal's time over the other's in the same round) with its spread (min-max);
the load average is printed at the start and the end.

Quality fails the run like a missed time target: every output of the portal
must have the geometry of the peer's, a file size within +-10% of the peer's,
and a visual quality at least the peer's: SSIM (on luma, 7x7 windows) of each
output against the source decoded at full size and resized to the output's
geometry with Lanczos (the same box for the thumbnail), portal >= peer - 0.002.
Both sides are deterministic, so the epsilon absorbs no noise, only the
rounding of two resamplers that are both Lanczos-3 but not the same code;
0.002 is what lowering the JPEG quality by a single step (82 -> 81) costs in
SSIM on the 12 MP photo's 1600 px rendition (0.0019), a change no viewer sees.

Peak memory of the portal pipeline is measured in a fresh subprocess: the
growth of the peak resident set (``VmHWM`` in ``/proc/self/status``, which,
unlike ``ru_maxrss``, is not inherited from the parent across fork/exec) over
one ``process()`` call, above a baseline taken after imports, plugin
registration and reading the input file into memory. The targets are for
JPEG; 50 MP PNG and TIFF are measured too and shown for information with the
reason neither can meet them (``WHY_NOT``).

With ``--results FILE`` the figures are also written as JSON, spreads
included: what ``python -m bench`` reads for its summary table.

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
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pyvips  # noqa: E402
from PIL import Image  # noqa: E402

from bench import Result, load_average, missed, print_results, spread, write_results  # noqa: E402
from tests.uploads import corpus  # noqa: E402
from uploads import processing  # noqa: E402

WEB = processing.DEFAULT_PRESETS["web"]
WIDTHS = WEB.widths
THUMB = WEB.thumbnail or 256
JPEG_Q = WEB.jpeg_quality
WEBP_Q = WEB.webp_quality
CORES = os.cpu_count() or 1

TARGET_VS_PEER = 0.8
TARGET_VS_SERIAL = 0.6
TARGET_VS_NAIVE = 1 / 3
TARGET_FOCAL_SHARE = 0.10
TARGET_MB = {"12 MP": 60, "50 MP": 150}
SIZE_TOLERANCE = 0.10
SSIM_EPSILON = 0.002

PEER = "pyvips on every core"
SERIAL = "pyvips thumbnail, serial"
NAIVE = "naive Pillow (full decode)"
PORTAL = "portal process(web)"
LONG_POLE = "long pole: WebP of the largest, alone"


@dataclass(frozen=True)
class Out:
    name: str
    format: str
    width: int
    height: int
    data: bytes


@dataclass(frozen=True)
class Layout:
    """What the portal makes of one source, for a peer to make the same:
    whole renditions largest first, and the thumbnail's side and box (in
    the source's pixels)."""

    source: tuple[int, int]
    whole: tuple[tuple[str, int, int], ...]
    thumb: int
    box: tuple[float, float, float, float]


# --------------------------------------------------------------------------
# Contenders


def portal(data: bytes) -> list[Out]:
    result = processing.process(data, WEB)
    return [Out(o.name, o.format, o.width, o.height, o.data) for o in result.outputs]


def layout_of(data: bytes) -> Layout:
    result = processing.process(data, WEB)
    whole = sorted(
        {(o.name, o.width, o.height) for o in result.outputs if o.name != "thumb"},
        key=lambda t: t[1] * t[2],
        reverse=True,
    )
    side = next(o.width for o in result.outputs if o.name == "thumb")
    size = (result.info.width, result.info.height)
    box = processing.crop_box(size, (side, side), result.focal_point)
    return Layout(size, tuple(whole), side, box)


def _vips_save_options() -> tuple[dict[str, object], dict[str, object]]:
    strip: dict[str, object] = {"keep": "none"} if pyvips.at_least_libvips(8, 15) else {"strip": True}
    jpeg = {"Q": JPEG_Q, "interlace": True, "optimize_coding": True, "subsample_mode": "on", **strip}
    webp = {"Q": WEBP_Q, "effort": 4, **strip}
    return jpeg, webp


VIPS_JPEG, VIPS_WEBP = _vips_save_options()
_VIPS_POOL = ThreadPoolExecutor(max_workers=CORES, thread_name_prefix="vips")


def _vips_bytes(img: pyvips.Image, fmt: str) -> bytes:
    data: bytes = (
        img.write_to_buffer(".webp", **VIPS_WEBP)
        if fmt == "webp"
        else img.write_to_buffer(".jpg", **VIPS_JPEG)
    )
    return data


def pyvips_every_core(data: bytes, layout: Layout) -> list[Out]:
    """pyvips at its best, making exactly the portal's outputs."""
    pending: list[tuple[str, str, int, int, Future[bytes]]] = []

    def encode(name: str, img: pyvips.Image) -> None:
        for fmt in ("webp", "jpeg"):  # the slower codec first, as the portal does
            pending.append((name, fmt, img.width, img.height, _VIPS_POOL.submit(_vips_bytes, img, fmt)))

    name, width, height = layout.whole[0]
    # size="force" gives the portal's rounding of the height; the aspect is
    # the source's within a fraction of a pixel.
    largest = pyvips.Image.thumbnail_buffer(data, width, height=height, size="force").copy_memory()
    encode(name, largest)
    made = [largest]
    previous = largest
    for name, width, height in layout.whole[1:]:
        previous = previous.resize(width / previous.width, vscale=height / previous.height).copy_memory()
        encode(name, previous)
        made.append(previous)
    width, height, left, top, span = _vips_thumb_cut(layout)
    source = next(img for img in made if (img.width, img.height) == (width, height))
    square = source.crop(left, top, span, span)
    encode("thumb", square.resize(layout.thumb / span).copy_memory())
    return [Out(n, f, w, h, future.result()) for n, f, w, h, future in pending]


def _vips_thumb_cut(layout: Layout) -> tuple[int, int, int, int, int]:
    """Where pyvips cuts the thumbnail: from the smallest rendition that
    covers it (the portal's choice too), the portal's box rounded to whole
    pixels of that rendition (libvips crops whole pixels). Returns the
    rendition's size, then left, top and side of the square."""
    side = layout.thumb
    covering = [(w, h) for _, w, h in layout.whole if w >= side and h >= side]
    width, height = min(covering, key=lambda s: s[0] * s[1]) if covering else layout.whole[0][1:]
    scale = width / layout.source[0]
    left, top = round(layout.box[0] * scale), round(layout.box[1] * scale)
    span = min(round((layout.box[2] - layout.box[0]) * scale), width - left, height - top)
    return width, height, left, top, span


def pyvips_box(layout: Layout) -> tuple[float, float, float, float]:
    """The box (in the source's pixels) that ``pyvips_every_core`` cuts."""
    width, _, left, top, span = _vips_thumb_cut(layout)
    scale = width / layout.source[0]
    right, bottom = min((left + span) / scale, layout.source[0]), min((top + span) / scale, layout.source[1])
    return (left / scale, top / scale, right, bottom)


def pyvips_serial(data: bytes) -> list[Out]:
    """The textbook use: one ``thumbnail_buffer`` (shrink-on-load) per rendition, one after another."""
    out: list[Out] = []

    def encode(name: str, img: pyvips.Image) -> None:
        out.extend(Out(name, fmt, img.width, img.height, _vips_bytes(img, fmt)) for fmt in ("webp", "jpeg"))

    for width in WIDTHS:
        # copy_memory: two encoders cannot both stream from one sequential JPEG read.
        encode(f"w{width}", pyvips.Image.thumbnail_buffer(data, width, size="down").copy_memory())
    thumb = pyvips.Image.thumbnail_buffer(data, THUMB, height=THUMB, crop="centre", size="down")
    encode("thumb", thumb.copy_memory())
    return out


def _pillow_encode(name: str, img: Image.Image, out: list[Out]) -> None:
    for fmt in ("webp", "jpeg"):
        buffer = io.BytesIO()
        if fmt == "webp":
            img.save(buffer, "WEBP", quality=WEBP_Q, method=4)
        else:
            img.save(buffer, "JPEG", quality=JPEG_Q, optimize=True, progressive=True, subsampling="4:2:0")
        out.append(Out(name, fmt, img.width, img.height, buffer.getvalue()))


def naive_pillow(data: bytes) -> list[Out]:
    """What most tutorials do: decode everything, resize each output from the original."""
    out: list[Out] = []
    with Image.open(io.BytesIO(data)) as img:
        img.load()
        for width in WIDTHS:
            height = round(img.height * width / img.width)
            _pillow_encode(f"w{width}", img.resize((width, height), Image.Resampling.LANCZOS), out)
        side = min(img.size)
        left, top = (img.width - side) / 2, (img.height - side) / 2
        box = (left, top, left + side, top + side)
        _pillow_encode("thumb", img.resize((THUMB, THUMB), Image.Resampling.LANCZOS, box=box), out)
    return out


def long_pole(data: bytes, layout: Layout) -> Callable[[bytes], object]:
    """The one step both pipelines must take and neither can share between
    cores: the WebP encode of the largest rendition (libwebp encodes a picture
    on one thread), timed alone on the portal's own rendition and settings."""
    name, width, height = layout.whole[0]
    largest = next(o for o in processing.process(data, WEB).outputs if o.name == name and o.format == "jpeg")
    with Image.open(io.BytesIO(largest.data)) as decoded:
        picture = decoded.convert("RGB")
    if picture.size != (width, height):
        raise RuntimeError(f"largest rendition is {picture.size}, expected {(width, height)}")
    return lambda _data: processing._encode(picture, "webp", WEB)


def long_pole_report(label: str, times: dict[str, list[float]]) -> Result:
    """What each pipeline spends beyond the long pole, round by round: the
    part a design controls. A ratio target against the peer can only be met
    when the portal's time, long pole included, fits it: the line says how
    much room the target leaves beyond the pole."""
    pole = statistics.median(times[LONG_POLE])
    beyond = [p - w for p, w in zip(times[PORTAL], times[LONG_POLE], strict=True)]
    beyond_peer = [p - w for p, w in zip(times[PEER], times[LONG_POLE], strict=True)]
    ratios = [a / b for a, b in zip(beyond, beyond_peer, strict=True) if b > 0]
    room = TARGET_VS_PEER * statistics.median(times[PEER]) - pole
    print(
        f"  long pole (WebP of the largest rendition, one thread): {pole * 1000:.0f} ms,"
        f" {pole / statistics.median(times[PEER]):.0%} of the peer's time; beyond it the portal spends"
        f" {statistics.median(beyond) * 1000:.0f} ms and the peer {statistics.median(beyond_peer) * 1000:.0f} ms"
        f" ({statistics.median(ratios):.2f}x); {TARGET_VS_PEER}x the peer leaves {room * 1000:.0f} ms"
        " beyond the pole for decoding, resampling and the pole's wait"
    )
    return Result(
        f"pipeline {label}: beyond the long pole, portal / peer",
        round(statistics.median(ratios), 2),
        "x",
        "",
        True,
        spread(ratios),
    )


# --------------------------------------------------------------------------
# Measurement


def race(
    contenders: dict[str, Callable[[bytes], object]], data: bytes, rounds: int
) -> dict[str, list[float]]:
    """Seconds per call of each contender, rounds interleaved, the order rotating."""
    for fn in contenders.values():  # warm up: plugin loading, thread pools, vips init
        fn(data)
    names = list(contenders)
    times: dict[str, list[float]] = {name: [] for name in names}
    for i in range(rounds):
        for name in names[i % len(names) :] + names[: i % len(names)]:
            started = time.perf_counter()
            contenders[name](data)
            times[name].append(time.perf_counter() - started)
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
    processing.process(data, WEB)
    print(_peak_rss_kib() - baseline, baseline)


def peak_memory_mb(data: bytes) -> tuple[float, float]:
    with tempfile.NamedTemporaryFile(suffix=".img") as tmp:
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


# --------------------------------------------------------------------------
# Quality


def _window_sums(x: np.ndarray, side: int) -> np.ndarray:
    """Sum over every ``side`` x ``side`` window lying wholly inside ``x``."""
    c = np.zeros((x.shape[0] + 1, x.shape[1] + 1))
    c[1:, 1:] = x.cumsum(0).cumsum(1)
    return c[side:, side:] - c[:-side, side:] - c[side:, :-side] + c[:-side, :-side]


def ssim(a: Image.Image, b: Image.Image, side: int = 7) -> float:
    """Mean SSIM (Wang et al. 2004) of two pictures' luma, over uniform
    ``side`` x ``side`` windows with the sample covariance, as
    scikit-image's default."""
    x = np.asarray(a.convert("L"), dtype=np.float64)
    y = np.asarray(b.convert("L"), dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(f"SSIM of {a.size} against {b.size}")
    n = side * side
    mx, my = _window_sums(x, side) / n, _window_sums(y, side) / n
    correction = n / (n - 1)
    vx = (_window_sums(x * x, side) / n - mx * mx) * correction
    vy = (_window_sums(y * y, side) / n - my * my) * correction
    cxy = (_window_sums(x * y, side) / n - mx * my) * correction
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return float(s.mean())


@dataclass(frozen=True)
class Quality:
    geometry_mismatches: list[str]
    worst_size: tuple[str, float]  # output, portal bytes / peer bytes - 1 (largest in magnitude)
    worst_ssim: tuple[str, float, float]  # output, portal SSIM, peer SSIM (largest peer - portal)
    rows: list[tuple[str, int, int, float, float]]  # output, portal bytes, peer bytes, SSIMs


def compare_quality(data: bytes, layout: Layout, mine: Sequence[Out], theirs: Sequence[Out]) -> Quality:
    """Each portal output against the peer's of the same name and format."""
    with Image.open(io.BytesIO(data)) as decoded:
        source = decoded.convert("RGB")
    peer_index = {(o.name, o.format): o for o in theirs}
    references: dict[tuple[str, tuple[float, float, float, float] | None], Image.Image] = {}

    def reference(out: Out, box: tuple[float, float, float, float] | None) -> Image.Image:
        key = (out.name, box)
        if key not in references:
            references[key] = source.resize((out.width, out.height), Image.Resampling.LANCZOS, box=box)
        return references[key]

    vips_box = pyvips_box(layout)

    mismatches: list[str] = []
    rows: list[tuple[str, int, int, float, float]] = []
    worst_size = ("", 0.0)
    worst_ssim = ("", 1.0, 1.0)
    for out in mine:
        label = f"{out.name}.{out.format}"
        other = peer_index.get((out.name, out.format))
        if other is None or (other.width, other.height) != (out.width, out.height):
            found = f"{other.width}x{other.height}" if other else "none"
            mismatches.append(f"{label} {out.width}x{out.height} vs {found}")
            continue
        is_thumb = out.name == "thumb"
        with Image.open(io.BytesIO(out.data)) as img_mine, Image.open(io.BytesIO(other.data)) as img_theirs:
            s_mine = ssim(img_mine, reference(out, layout.box if is_thumb else None))
            s_theirs = ssim(img_theirs, reference(other, vips_box if is_thumb else None))
        deviation = len(out.data) / len(other.data) - 1
        if abs(deviation) > abs(worst_size[1]):
            worst_size = (label, deviation)
        if s_theirs - s_mine > worst_ssim[2] - worst_ssim[1] or not worst_ssim[0]:
            worst_ssim = (label, s_mine, s_theirs)
        rows.append((label, len(out.data), len(other.data), s_mine, s_theirs))
    return Quality(mismatches, worst_size, worst_ssim, rows)


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


def heic_report(rounds: int) -> list[Result]:
    """HEIC decode and processing per 12 MP image; against pyvips if it can."""
    started = time.perf_counter()
    data = corpus.heic_photo(4000, 3000)
    made = time.perf_counter() - started
    why_not = pyvips_reads(data)

    def decode_only(data: bytes) -> None:
        with Image.open(io.BytesIO(data)) as img:
            img.load()

    contenders: dict[str, Callable[[bytes], object]] = {
        "portal process(web), HEIC": portal,
        "pillow-heif decode alone": decode_only,
    }
    if not why_not:
        layout = layout_of(data)
        contenders[f"{PEER}, HEIC"] = lambda d: pyvips_every_core(d, layout)
    times = race(contenders, data, rounds)
    medians = {name: statistics.median(values) for name, values in times.items()}
    portal_median = medians["portal process(web), HEIC"]
    print(
        f"12 MP HEIC: 4000x3000, {len(data) / 1e6:.1f} MB (made in {made:.0f} s), {rounds} interleaved rounds"
    )
    print(f"  {'pipeline':34} {'median s':>9} {'min s':>8} {'max s':>8}")
    for name, values in times.items():
        print(f"  {name:34} {medians[name]:9.3f} {min(values):8.3f} {max(values):8.3f}  (information)")
    decode_share = medians["pillow-heif decode alone"] / portal_median
    print(
        f"  decoding is {decode_share:.0%} of the portal's time: HEVC has no reduced-scale decode like JPEG's"
    )
    results = [
        Result(
            "pipeline 12 MP HEIC: portal s per image",
            round(portal_median, 3),
            "s",
            "",
            True,
            spread(times["portal process(web), HEIC"], 3),
        )
    ]
    if why_not:
        print(f"  pyvips cannot read HEIC here, so no comparison: {why_not}")
        return results
    ratios = per_round(times, "portal process(web), HEIC", f"{PEER}, HEIC")
    print(f"  portal / {PEER}: {statistics.median(ratios):.2f} ({spread(ratios)})")
    results.append(
        Result(
            f"pipeline 12 MP HEIC: portal / {PEER}",
            round(statistics.median(ratios), 2),
            "x",
            "",
            True,
            spread(ratios),
        )
    )
    return results


def focal_share_report(data: bytes, portal_median: float, repeats: int) -> Result:
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
        started = time.perf_counter()
        processing.estimate_focal_point(smallest)
        samples.append(time.perf_counter() - started)
    median = statistics.median(samples)
    share = median / portal_median
    met = share <= TARGET_FOCAL_SHARE
    print(
        f"  auto focal point: {median * 1000:.1f} ms ({min(samples) * 1000:.1f}-{max(samples) * 1000:.1f})"
        f" on a {smallest.width}x{smallest.height} rendition, {repeats} runs: {share:.1%} of the pipeline"
        f"   target <= {TARGET_FOCAL_SHARE:.0%}  {'met' if met else 'MISSED'}"
    )
    return Result(
        "pipeline 12 MP: automatic focal point, share of the time",
        round(share, 3),
        "",
        f"<= {TARGET_FOCAL_SHARE:g}",
        met,
    )


# --------------------------------------------------------------------------
# Report


def per_round(times: dict[str, list[float]], mine: str, theirs: str) -> list[float]:
    """The portal's time over another's, round by round (each pair ran back to back)."""
    return [a / b for a, b in zip(times[mine], times[theirs], strict=True)]


def _row(
    name: str, first: float, second: float, value: float, target: float, met: bool, note: str = ""
) -> str:
    verdict = "met" if met else "MISSED"
    return f"  {name:44} {first:9.4f} {second:9.4f} {value:9.4f}  <= {target:.3g}  {verdict}{note}"


def image_report(label: str, photo: Image.Image, rounds: int) -> tuple[list[Result], bytes, float]:
    data = corpus.jpeg(photo, quality=90)
    layout = layout_of(data)
    contenders: dict[str, Callable[[bytes], object]] = {
        PORTAL: portal,
        PEER: lambda d: pyvips_every_core(d, layout),
        SERIAL: pyvips_serial,
        NAIVE: naive_pillow,
        LONG_POLE: long_pole(data, layout),
    }
    times = race(contenders, data, rounds)
    quality = compare_quality(data, layout, portal(data), pyvips_every_core(data, layout))
    peak_mb, baseline_mb = peak_memory_mb(data)

    print(
        f"{label}: {photo.width}x{photo.height} JPEG, {len(data) / 1e6:.1f} MB, {rounds} interleaved rounds; {load_average()}"
    )
    print(f"  {'seconds per image':44} {'median':>9} {'min':>9} {'max':>9}")
    for name, values in times.items():
        print(f"  {name:44} {statistics.median(values):9.3f} {min(values):9.3f} {max(values):9.3f}")
    print(f"  {'portal / contender, per round':44} {'median s':>9} {'best s':>9} {'ratio':>9}  target")
    results = [
        Result(
            f"pipeline {label}: portal s per image",
            round(statistics.median(times[PORTAL]), 3),
            "s",
            "",
            True,
            spread(times[PORTAL], 3),
        )
    ]
    for name, target in ((PEER, TARGET_VS_PEER), (SERIAL, TARGET_VS_SERIAL), (NAIVE, TARGET_VS_NAIVE)):
        ratios = per_round(times, PORTAL, name)
        ratio = statistics.median(ratios)
        met = ratio <= target
        print(
            _row(
                name,
                statistics.median(times[name]),
                min(times[name]),
                ratio,
                target,
                met,
                f"   rounds {spread(ratios)}",
            )
        )
        results.append(
            Result(
                f"pipeline {label}: portal / {name}",
                round(ratio, 2),
                "x",
                f"<= {target:.2g}x",
                met,
                spread(ratios),
            )
        )

    results.append(long_pole_report(label, times))
    print(
        f"  quality of the portal's {len(quality.rows) + len(quality.geometry_mismatches)} outputs against {PEER}'s:"
    )
    mismatches = len(quality.geometry_mismatches)
    note = f"   {'; '.join(quality.geometry_mismatches)}" if mismatches else ""
    print(
        _row(
            "geometry: outputs unlike the peer's",
            len(quality.rows) + mismatches,
            mismatches,
            mismatches,
            0,
            mismatches == 0,
            note,
        )
    )
    worst, deviation = quality.worst_size
    size_met = abs(deviation) <= SIZE_TOLERANCE and not mismatches
    total_mine, total_theirs = sum(r[1] for r in quality.rows), sum(r[2] for r in quality.rows)
    print(
        _row(
            "file size: worst |portal / peer - 1|",
            total_mine / 1024,
            total_theirs / 1024,
            abs(deviation),
            SIZE_TOLERANCE,
            size_met,
            f"   {worst} {deviation:+.1%} (totals in KiB)",
        )
    )
    worst, mine_ssim, theirs_ssim = quality.worst_ssim
    deficit = max(0.0, theirs_ssim - mine_ssim)
    ssim_met = deficit <= SSIM_EPSILON and not mismatches
    print(
        _row(
            "SSIM: worst peer - portal",
            mine_ssim,
            theirs_ssim,
            deficit,
            SSIM_EPSILON,
            ssim_met,
            f"   {worst} (SSIMs portal, peer)",
        )
    )
    for output, bytes_mine, bytes_theirs, s_mine, s_theirs in quality.rows:
        print(
            f"    {output:12} {bytes_mine:>8,} B vs {bytes_theirs:>8,} B ({bytes_mine / bytes_theirs - 1:+6.1%})"
            f"   SSIM {s_mine:.4f} vs {s_theirs:.4f} ({s_mine - s_theirs:+.4f})"
        )
    results += [
        Result(
            f"pipeline {label}: outputs whose geometry differs from pyvips'",
            mismatches,
            "",
            "= 0",
            mismatches == 0,
        ),
        Result(
            f"pipeline {label}: worst file size vs pyvips (+-)",
            round(abs(deviation) * 100, 1),
            "%",
            f"<= {SIZE_TOLERANCE:.0%}",
            size_met,
        ),
        Result(
            f"pipeline {label}: worst SSIM below pyvips'",
            round(deficit, 4),
            "",
            f"<= {SSIM_EPSILON:g}",
            ssim_met,
        ),
    ]

    target_mb = TARGET_MB[label]
    memory_met = peak_mb <= target_mb
    print(
        f"  portal peak memory: +{peak_mb:.0f} MB peak RSS (VmHWM) over a {baseline_mb:.0f} MB baseline"
        f" with the input already in memory   target <= {target_mb} MB  {'met' if memory_met else 'MISSED'}\n"
    )
    results.append(
        Result(
            f"pipeline {label}: peak memory growth", round(peak_mb), "MB", f"<= {target_mb} MB", memory_met
        )
    )
    return results, data, statistics.median(times[PORTAL])


# Why a format cannot meet the 50 MP memory target, where it cannot.
WHY_NOT = {
    "PNG": (
        "Pillow decodes a PNG whole (no reduced-scale or partial decode), at 4 bytes a pixel"
        " for RGB: 200 MB for 50 MP before any resampling"
    ),
    "TIFF": (
        "Pillow hands a compressed TIFF to libtiff as one tile covering the whole image, so it"
        " too is decoded whole (200 MB of RGB); only an uncompressed TIFF comes as a list of"
        " strips that could be decoded band by band, and an uncompressed 50 MP RGB TIFF is"
        " 150 MB, six times the upload limit"
    ),
}


def _encoded(img: Image.Image, fmt: str, **params: object) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, fmt, **params)  # type: ignore[arg-type]
    return buffer.getvalue()


def memory_report(photo: Image.Image) -> list[Result]:
    """The same 50 MP picture as PNG and as TIFF: what lossless sources cost."""
    results = []
    sources = {
        "PNG": lambda: corpus.png(photo, compress_level=1),
        "TIFF (deflate)": lambda: _encoded(photo, "TIFF", compression="tiff_adobe_deflate"),
    }
    for name, build in sources.items():
        data = build()
        peak_mb, _ = peak_memory_mb(data)
        reason = WHY_NOT.get(name.split()[0], "")
        verdict = "(information)" if peak_mb > TARGET_MB["50 MP"] else "within the JPEG target"
        print(f"  50 MP {name}, {len(data) / 1e6:.0f} MB: portal peak memory +{peak_mb:.0f} MB {verdict}")
        if reason and peak_mb > TARGET_MB["50 MP"]:
            print(f"    cannot meet {TARGET_MB['50 MP']} MB: {reason}")
        results.append(Result(f"pipeline 50 MP {name}: peak memory growth", round(peak_mb), "MB", "", True))
    return results


def run(rounds: int, quick: bool) -> list[Result]:
    pyvips.cache_set_max(0)  # a cached thumbnail of the same buffer would be cheating
    pyvips.vips_lib.vips_concurrency_set(CORES)
    print(f"Pillow {Image.__version__}, libvips {pyvips.version(0)}.{pyvips.version(1)}.{pyvips.version(2)}")
    print(
        f"{CORES} CPU cores; pyvips: libvips concurrency {pyvips.vips_lib.vips_concurrency_get()}, encode pool"
    )
    print(f"{CORES} threads; portal: pool of {processing._pool()._max_workers} threads + the calling thread.")
    print("Outputs per image: 4 widths + 256 px thumb, each WebP q80 + progressive JPEG q82 (10 files).")
    print(f"At start: {load_average()} (above ~1 the figures are noisy: other work competes for the cores)\n")

    results: list[Result] = []
    for label, width, height in (("12 MP", 4000, 3000), ("50 MP", 8660, 5773)):
        photo = corpus.photo(width, height)
        image_results, data, portal_median = image_report(label, photo, rounds)
        results += image_results
        if label == "12 MP":
            results.append(focal_share_report(data, portal_median, 20 if quick else 200))
            if not quick:
                print("  Step costs at 12 MP (median, one thread unless stated):")
                for step, seconds, size in encoder_costs(data):
                    extra = f"  {size / 1024:.0f} KiB" if size else ""
                    print(f"    {step:44} {seconds * 1000:7.1f} ms{extra}")
            print()
        else:
            results += memory_report(photo)
            print()
    results += heic_report(3 if quick else rounds)
    print(f"\nAt end: {load_average()}")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds per image (at least 5)")
    parser.add_argument("--quick", action="store_true", help="3 rounds, skip the step cost table")
    parser.add_argument("--results", help="also write the results as JSON to this file")
    parser.add_argument("--report-only", action="store_true", help="exit 0 even when a target is missed")
    parser.add_argument("--memory-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        memory_child(args.memory_child)
        return
    results = run(3 if args.quick else max(5, args.rounds), args.quick)
    print()
    print_results(results)
    if args.results:
        write_results(args.results, results)
    elif missed(results) and not args.report_only:
        sys.exit(1)


if __name__ == "__main__":
    main()
