"""The orphan sweep over a store too large to go over within a worker's time
limit: each run goes over a stretch of it, from where the last run stopped,
and ends well within the limit."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import time
from dataclasses import dataclass
from typing import Any

import pytest
from django.core.cache import caches
from django.core.files.storage import storages
from django.utils import timezone

from tests.uploads.conftest import WorkerRuns
from uploads import embedded, storage
from uploads.models import Image, Rendition, ReplacedObject

pytestmark = pytest.mark.django_db

# The last key a store can hold: what a sweep that starts from the first
# every time and is cut off at the same place never reaches.
LAST = f"{storage.RENDITIONS_PREFIX}ff/{'f' * 64}.webp"


def _key(prefix: str, n: int) -> str:
    digest = hashlib.sha256(str(n).encode()).hexdigest()
    return f"{prefix}{digest[:2]}/{digest}.{'jpg' if prefix == storage.ORIGINALS_PREFIX else 'webp'}"


def _put(key: str, *, age: float = 7200) -> str:
    """Store an object written ``age`` seconds ago."""
    storage.put(key, key.encode())
    written = time.time() - age
    os.utime(storage.storage_for(key).path(key), (written, written))
    return key


def _there(key: str) -> bool:
    return bool(storage.storage_for(key).exists(key))


@dataclass
class Store:
    orphans: list[str]
    # A row's object, a replaced rendition's still kept, an upload's in flight.
    live: list[str]


@pytest.fixture
def store(settings: Any) -> Store:
    """Twelve orphaned originals and as many renditions, the last key of all
    among them, between the objects of a live image (its thirty renditions
    listed again by every run) and the other objects the sweep must keep."""
    settings.IMAGE_ORPHAN_GRACE_SECONDS = 3600
    settings.CELERY_TASK_SOFT_TIME_LIMIT = 120  # a budget of 30 s a run
    orphans = [
        _put(_key(prefix, n))
        for prefix in (storage.ORIGINALS_PREFIX, storage.RENDITIONS_PREFIX)
        for n in range(12)
    ]
    orphans.append(_put(LAST))
    original = _put(_key(storage.ORIGINALS_PREFIX, 100))
    image = Image.objects.create(file=original, sha256="0" * 64, format="JPEG", width=1, height=1, bytes=1)
    renditions = [_put(_key(storage.RENDITIONS_PREFIX, n)) for n in range(100, 130)]
    Rendition.objects.bulk_create(
        Rendition(image=image, name=f"r{n}", format="webp", width=1, height=1, bytes=1, storage_key=key)
        for n, key in enumerate(renditions)
    )
    replaced = _put(_key(storage.RENDITIONS_PREFIX, 200))
    ReplacedObject.objects.create(key=replaced, image_id=image.pk, replaced_at=timezone.now())
    in_flight = _put(_key(storage.ORIGINALS_PREFIX, 201), age=0)
    return Store(orphans=orphans, live=[original, *renditions, replaced, in_flight])


def test_runs_within_the_time_limit_delete_every_orphan_the_last_keys_too(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Three batches of 40 s fill the worker's 120 s: a run that began from
    # the first key every time would be cut off at the fourth every time,
    # each run a failed task, the orphans after the live objects it lists
    # again every time never deleted.
    monkeypatch.setattr(storage, "BATCH", 3)
    runs = WorkerRuns(monkeypatch, limit=120, batch_seconds=40)
    done = [runs.run() for _ in range(30)]
    assert None not in done, f"runs cut off: {done}"
    assert sum(n or 0 for n in done) == len(store.orphans)
    assert not [key for key in store.orphans if _there(key)]
    assert all(_there(key) for key in store.live)


def test_a_run_the_time_limit_cuts_off_keeps_what_it_deleted_and_the_next_goes_on(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(storage, "BATCH", 5)
    runs = WorkerRuns(monkeypatch, limit=120, batch_seconds=10)
    runs.seconds = [10, 200]  # the store hangs in the second batch
    first = runs.run()
    assert first is not None  # ended, not failed
    assert 0 < first <= 5
    assert caches["shared"].get(storage.SWEEP_POSITION_KEY) == sorted([*store.orphans, *store.live])[4]
    for _ in range(20):
        assert runs.run() is not None
        if caches["shared"].get(storage.SWEEP_POSITION_KEY) is None:
            break
    assert not [key for key in store.orphans if _there(key)]
    assert all(_there(key) for key in store.live)


def test_each_run_goes_on_from_where_the_last_stopped_and_says_how_far_it_got(
    store: Store, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(storage, "BATCH", 4)
    keys = sorted([*store.orphans, *store.live])
    # A batch a run, each after the last (the originals, then the renditions).
    batches = [
        batch
        for prefix in (storage.ORIGINALS_PREFIX, storage.RENDITIONS_PREFIX)
        for batch in storage._batches([key for key in keys if key.startswith(prefix)], 4)
    ]
    caplog.set_level("INFO", logger="uploads.storage")
    swept = [storage.sweep_orphans(grace_seconds=3600, budget_seconds=0) for _ in batches]
    assert swept == [sorted(set(batch) & set(store.orphans)) for batch in batches]
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("orphan sweep")]
    assert lines[0] == (
        f"orphan sweep: went over 4 objects from the first to {keys[3]} and deleted "
        f"{len(swept[0])}; the next run goes on from there"
    )
    assert lines[1].startswith(f"orphan sweep: went over 4 objects after {keys[3]} to {keys[7]} and deleted")
    assert lines[-1].endswith(
        f"to {LAST} and deleted {len(swept[-1])}, the last; the next run starts from the first"
    )
    assert all(_there(key) for key in store.live)


def test_the_run_that_reaches_the_last_key_leaves_the_next_to_start_from_the_first(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(storage, "BATCH", 10)
    for _ in range(20):
        storage.sweep_orphans(grace_seconds=3600, budget_seconds=0)
        if caches["shared"].get(storage.SWEEP_POSITION_KEY) is None:
            break  # the run that reached the last key
    assert not [key for key in store.orphans if _there(key)]
    # Orphans made since, before the first key the sweep went over.
    first = f"{storage.ORIGINALS_PREFIX}00/{'0' * 64}.jpg"
    early = [_put(first), _put(f"{storage.RENDITIONS_PREFIX}00/{'0' * 64}.webp")]
    assert storage.sweep_orphans(grace_seconds=3600, budget_seconds=0) == [first]
    assert not _there(first)
    assert _there(early[1])  # in the next stretch
    assert all(_there(key) for key in store.live)


def test_a_sweep_without_a_budget_goes_over_the_whole_store_and_leaves_the_position(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(storage, "BATCH", 4)
    caches["shared"].set(storage.SWEEP_POSITION_KEY, LAST)
    assert sorted(storage.sweep_orphans(grace_seconds=3600)) == sorted(store.orphans)
    assert caches["shared"].get(storage.SWEEP_POSITION_KEY) == LAST
    assert all(_there(key) for key in store.live)


def test_a_round_of_the_embedded_sweeper_goes_over_a_stretch_of_the_store(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The round's other chores wait for it: the stuck uploads, the imports.
    monkeypatch.setattr(storage, "BATCH", 5)
    WorkerRuns(monkeypatch, limit=float("inf"), batch_seconds=40)
    rounds = []
    for _ in range(20):
        rounds.append(embedded.sweep()[1])
        if caches["shared"].get(storage.SWEEP_POSITION_KEY) is None:
            break  # the round that reached the last key
    assert rounds[0] <= 5
    assert sum(rounds) == len(store.orphans)
    assert not [key for key in store.orphans if _there(key)]
    assert all(_there(key) for key in store.live)


def test_an_orphan_goes_once_its_grace_period_has_passed_and_a_replaced_object_once_its_hour_has() -> None:
    """An object a minute younger than the grace period may be an upload whose
    row is still to commit, and stays; one a minute older goes. A replaced
    rendition's object stays while a redirect to it may still be cached,
    REPLACED_KEEP_SECONDS from when it was replaced, whatever its own age."""
    older = _put(_key(storage.ORIGINALS_PREFIX, 1), age=3600 + 60)
    younger = _put(_key(storage.ORIGINALS_PREFIX, 2), age=3600 - 60)
    original = _put(_key(storage.ORIGINALS_PREFIX, 3))
    image = Image.objects.create(file=original, sha256="0" * 64, format="JPEG", width=1, height=1, bytes=1)
    now = timezone.now()
    kept_over, still_kept = _put(_key(storage.RENDITIONS_PREFIX, 4)), _put(_key(storage.RENDITIONS_PREFIX, 5))
    for key, seconds in (
        (kept_over, storage.REPLACED_KEEP_SECONDS + 60),
        (still_kept, storage.REPLACED_KEEP_SECONDS - 60),
    ):
        ReplacedObject.objects.create(
            key=key, image_id=image.pk, replaced_at=now - dt.timedelta(seconds=seconds)
        )

    assert sorted(storage.sweep_orphans(grace_seconds=3600)) == sorted([older, kept_over])
    assert all(_there(key) for key in (younger, original, still_kept))
    assert list(ReplacedObject.objects.values_list("key", flat=True)) == [still_kept]


def test_the_local_store_is_listed_in_key_order_from_where_it_is_asked() -> None:
    # A folder sorts as its name and a slash, as S3 sorts the keys in it.
    names = ("ab/x.webp", "ab.webp", "a/b.webp", "b.webp", "ab/y/z.webp")
    keys = [_put(f"{storage.RENDITIONS_PREFIX}{name}") for name in names]
    listed = list(storage.list_objects(storages["default"], storage.RENDITIONS_PREFIX))
    assert [key for key, _ in listed] == sorted(keys)
    assert all(modified < timezone.now() - dt.timedelta(hours=1) for _, modified in listed)
    after = storage.list_objects(storages["default"], storage.RENDITIONS_PREFIX, after="renditions/ab/x.webp")
    assert [key for key, _ in after] == ["renditions/ab/y/z.webp", "renditions/b.webp"]
