"""What deleting images lets go once the deletion commits, and in how many steps."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import pytest
from botocore.config import Config
from django.db import connection, transaction
from django.db.transaction import TransactionManagementError
from django.test.utils import CaptureQueriesContext

from tests.factories import ImageFactory, s3_store
from tests.uploads import corpus
from uploads import services, storage
from uploads.models import Image, Rendition, ReplacedObject

pytestmark = pytest.mark.django_db


def _at_commit(capture: Any, delete: Callable[[], None]) -> int:
    """Run ``delete``, then its on-commit callbacks as a commit would; the
    number of statements the callbacks ran."""
    with capture() as callbacks:
        delete()
    with CaptureQueriesContext(connection) as queries:
        for callback in callbacks:
            callback()
    return len(queries.captured_queries)


def _delete_each(images: Iterable[Image]) -> Callable[[], None]:
    def delete() -> None:
        with transaction.atomic():
            for image in images:
                services.image_delete(image=image)

    return delete


def test_an_image_lets_its_objects_go_in_as_many_statements_however_many_renditions_it_has(
    django_capture_on_commit_callbacks: Any, media_files: Any
) -> None:
    many, one = (
        ImageFactory.create(size=(900, 600), preset="web"),
        ImageFactory.create(size=(900, 600), preset="icon"),
    )
    assert many.renditions.count() > one.renditions.count() == 1
    statements = [
        _at_commit(django_capture_on_commit_callbacks, _delete_each([image])) for image in (one, many)
    ]
    assert statements[0] == statements[1]
    assert media_files() == set()


def test_images_deleted_in_one_transaction_let_their_objects_go_together(
    django_capture_on_commit_callbacks: Any, media_files: Any
) -> None:
    alone = ImageFactory.create(size=(900, 600))
    three = [ImageFactory.create(size=(900, 600)) for _ in range(3)]
    statements = _at_commit(django_capture_on_commit_callbacks, _delete_each([alone]))
    assert _at_commit(django_capture_on_commit_callbacks, _delete_each(three)) == statements
    assert media_files() == set()
    assert not Rendition.objects.exists()


def test_a_deletion_rolled_back_lets_nothing_go_and_the_next_one_still_does(
    django_capture_on_commit_callbacks: Any, media_files: Any
) -> None:
    kept, deleted = ImageFactory.create(size=(900, 600)), ImageFactory.create(size=(900, 600))
    kept_files = {kept.file.name, *kept.renditions.values_list("storage_key", flat=True)}

    def changed_their_mind() -> None:
        with transaction.atomic():
            services.image_delete(image=kept)
            raise RuntimeError("changed their mind")

    with django_capture_on_commit_callbacks(execute=True):
        with pytest.raises(RuntimeError):
            changed_their_mind()
        services.image_delete(image=deleted)
    assert Image.objects.get() == kept
    assert media_files() == kept_files


def test_a_writer_deletes_what_it_stored_once_it_lets_its_keys_go() -> None:
    """Its row failed: asking for its keys alone while it shares them would
    wait holding them, in a circle with a deletion of several keys."""
    key = storage.rendition_key(b"never saved", "webp")
    storage.put(key, b"never saved")
    with storage.writing({key}):
        assert storage.delete_unreferenced({key}) == []
        assert storage.storage_for(key).exists(key)
    assert not storage.storage_for(key).exists(key)


@pytest.mark.django_db
def test_everything_waiting_for_a_write_runs_and_the_writes_own_error_is_the_one_raised() -> None:
    ran: list[str] = []

    def fails() -> None:
        ran.append("fails")
        raise OSError("the store is away")

    def write(*, own_error: bool) -> None:
        with storage.writing({"k"}):
            storage.after_writing(fails)
            storage.after_writing(lambda: ran.append("then"))
            if own_error:
                raise ValueError("the write's own")

    with pytest.raises(ValueError, match="the write's own"):
        write(own_error=True)
    assert ran == ["fails", "then"]

    ran.clear()
    with pytest.raises(OSError, match="the store is away"):
        write(own_error=False)
    assert ran == ["fails", "then"]


def test_deleting_an_image_lets_go_at_once_the_renditions_it_replaced_earlier(
    commit: Any, media_files: Any
) -> None:
    """A replaced rendition is kept for a while for cached redirects to it,
    but not past its image: the deleted picture is gone from the store."""
    image = ImageFactory.create(size=(900, 600), preset="web")
    before = set(image.renditions.values_list("storage_key", flat=True))
    with commit():
        services.image_reprocess(images=[image], preset="icon")
    replaced = set(ReplacedObject.objects.values_list("key", flat=True))
    assert replaced
    assert replaced <= before <= media_files()  # kept for now
    with commit():
        services.image_delete(image=Image.objects.get(pk=image.pk))
    assert media_files() == set()
    assert not ReplacedObject.objects.exists()


def test_an_image_is_kept_for_a_write_within_a_transaction_and_a_deleted_one_is_not() -> None:
    image = ImageFactory.create()
    gone = ImageFactory.create()
    services.image_delete(image=gone)

    with transaction.atomic():
        assert services.image_keep(image_id=image.pk)
        assert not services.image_keep(image_id=gone.pk)


@pytest.mark.django_db(transaction=True)
def test_keeping_an_image_outside_a_transaction_is_refused_as_it_would_keep_nothing() -> None:
    # In autocommit the lock would end with its own statement, before the write.
    image = ImageFactory.create()

    with pytest.raises(TransactionManagementError, match=r"needs a transaction \(transaction.atomic\)"):
        services.image_keep(image_id=image.pk)


@pytest.mark.django_db(transaction=True)
def test_a_deletion_with_the_store_away_is_done_and_said_so_its_objects_left_to_the_sweep(
    token_client: Any, admin_client: Any, monkeypatch: pytest.MonkeyPatch, media_files: Any
) -> None:
    """The rows are gone once the deletion commits: a store away then is no
    reason to answer "try again" (a retry would find nothing to delete)."""
    by_api, by_admin = (
        services.image_upload(file=corpus.photo_jpeg(320 + n, 240), original_name=f"{n}.jpg")
        for n in range(2)
    )
    files = media_files()

    def away(keys: list[str]) -> None:
        raise OSError(5, "Input/output error")

    real = storage._delete
    monkeypatch.setattr(storage, "_delete", away)
    response = token_client.delete(f"/api/v1/images/{by_api.pk}/")
    assert response.status_code == 204, response.content
    selection = {
        "action": "delete_selected",
        "_selected_action": [str(by_admin.pk)],
        "post": "yes",
        "rows": "1",
    }
    response = admin_client.post("/admin/uploads/image/", selection)
    assert response.status_code == 302, response.content
    assert not Image.objects.exists()
    assert media_files() == files

    monkeypatch.setattr(storage, "_delete", real)
    storage.sweep_orphans(grace_seconds=0)
    assert media_files() == set()


def test_an_unconfirmed_write_is_taken_back_in_one_prompt_request_however_long_a_store_may_take(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Made before the caller answers: one try of DISCARD_TIMEOUT_SECONDS to
    connect and as many to be answered, not the store's own two tries of
    STORAGE_TIMEOUT_SECONDS."""
    settings.STORAGE_TIMEOUT_SECONDS = 10
    s3_store(settings, "originals", bucket="originals")
    configs: list[Config] = []
    deleted: list[str] = []

    class Bucket:
        def delete_object(self, *, Bucket: str, Key: str) -> None:
            deleted.append(Key)

    def client(store: Any, purpose: str, config: Config) -> Bucket:
        configs.append(config)
        return Bucket()

    monkeypatch.setattr(storage, "_client", client)
    key = storage.original_key("a" * 64, "PNG")
    storage.discard_unconfirmed(key)
    assert deleted == [key]
    [config] = configs
    assert (config.connect_timeout, config.read_timeout) == (1, 1)
    assert config.retries == {"total_max_attempts": 1}
