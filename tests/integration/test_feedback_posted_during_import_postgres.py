"""On PostgreSQL, a review posted to /feedback/ while ``import_feedback``
imports the same review is held once, whichever comes first: the post
answers with the review the import added, or the import skips the one
posted.

An import's batch asks once which of its fingerprints are held, then adds
the others; a post checks its own, then adds it. Each used to lock alone
(the import its lock, a post its fingerprint's), so a post between the
batch's check and its commit could not see the batch's rows, and a batch
could not see a post not yet committed: both added the review.

Each writer runs the portal's code on a thread of its own and is held after
a chosen statement (``Paused``) while the other runs.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from catalog import services
from catalog.models import Feedback
from tests.integration.paused import PATIENCE, Paused, Writer, waiting
from tests.servers import PostgresServer

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REVIEW = {"title": "Great service", "name": "John", "date": "2017-12-21", "feedback": "Very good."}
OTHER = {**REVIEW, "title": "Slow delivery"}

# The batch's one question about its fingerprints, and a post's about its own.
BATCH_CHECKED = ('"catalog_feedback"."fingerprint" IN',)
POST_CHECKED = ('"catalog_feedback"."fingerprint" =',)


def post(review: dict[str, str]) -> Callable[[], Any]:
    return lambda: Client(raise_request_exception=False).post(
        "/feedback/", review, content_type="application/json"
    )


def import_files(folder: Path) -> Callable[[], Any]:
    return lambda: services.feedback_import_files(sorted(folder.glob("*.txt")))


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """The review posted, as a file, and one other."""
    (tmp_path / "001.txt").write_text("Great service\nJohn\n2017-12-21\nVery good.\n")
    (tmp_path / "002.txt").write_text("Fresh fruit\nMary\n2017-12-22\nLovely.\n")
    return tmp_path


def held_once() -> Feedback:
    reviews = list(Feedback.objects.filter(title="Great service"))
    assert len(reviews) == 1, [(r.pk, r.source) for r in reviews]
    return reviews[0]


def test_a_review_posted_while_a_batch_imports_it_is_the_one_imported(
    postgres_database: PostgresServer, folder: Path
) -> None:
    paused = Paused(*BATCH_CHECKED)
    importer = Writer(postgres_database, paused, import_files(folder))
    importer.start()
    paused.wait()
    poster = Writer(postgres_database, Paused("never run"), post(REVIEW))
    poster.start()

    waited = waiting(postgres_database, poster)
    paused.go()

    summary = importer.outcome()
    response = poster.outcome()
    assert response.status_code == 201, response.content
    review = held_once()
    assert review.source == Feedback.Source.IMPORT
    assert response.json()["id"] == review.pk
    assert (summary.created, summary.skipped) == (2, 0)
    assert waited == [True], "the post did not wait for the batch"


def test_a_review_imported_while_it_is_posted_is_skipped_by_the_import(
    postgres_database: PostgresServer, folder: Path
) -> None:
    paused = Paused(*POST_CHECKED)
    poster = Writer(postgres_database, paused, post(REVIEW))
    poster.start()
    paused.wait()
    importer = Writer(postgres_database, Paused("never run"), import_files(folder))
    importer.start()

    waited = waiting(postgres_database, importer)
    paused.go()

    response = poster.outcome()
    summary = importer.outcome()
    assert response.status_code == 201, response.content
    review = held_once()
    assert review.source == Feedback.Source.API
    assert response.json()["id"] == review.pk
    assert (summary.created, summary.skipped) == (1, 1)
    assert waited == [True], "the batch did not wait for the post"


def test_posts_of_other_reviews_do_not_wait_for_each_other(postgres_database: PostgresServer) -> None:
    paused = Paused(*POST_CHECKED)
    first = Writer(postgres_database, paused, post(REVIEW))
    first.start()
    paused.wait()

    second = Writer(postgres_database, Paused("never run"), post(OTHER))
    second.start()
    waited = waiting(postgres_database, second)
    paused.go()

    assert waited == [False], "a post waited for another review's"
    assert (first.outcome().status_code, second.outcome().status_code) == (201, 201)
    assert Feedback.objects.count() == 2


def test_a_post_an_import_and_a_post_again_queued_on_each_other_all_end_with_the_review_once(
    postgres_database: PostgresServer, folder: Path
) -> None:
    """The post holds the import's lock shared, then its review's; the
    batch waits for it, and the same review posted again waits behind the
    batch. Each lock is taken in that order by every writer, so the three
    end one after the other rather than in a deadlock."""
    paused = Paused(*POST_CHECKED)
    first = Writer(postgres_database, paused, post(REVIEW))
    first.start()
    paused.wait()
    importer = Writer(postgres_database, Paused("never run"), import_files(folder))
    importer.start()
    waiting(postgres_database, importer)
    again = Writer(postgres_database, Paused("never run"), post(REVIEW))
    again.start()
    waited = waiting(postgres_database, importer, again)
    paused.go()

    responses = [first.outcome(), again.outcome()]
    summary = importer.outcome()
    assert [r.status_code for r in responses] == [201, 201]
    review = held_once()
    assert [r.json()["id"] for r in responses] == [review.pk, review.pk]
    assert (summary.created, summary.skipped) == (1, 1)
    assert Feedback.objects.count() == 2
    assert waited == [True, True], "the import and the post again did not queue"


def test_a_post_waits_for_the_batch_under_way_not_for_the_whole_import(
    postgres_database: PostgresServer, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An import commits a batch at a time: a review posted between two
    batches is added at once, and the batch that holds it skips it."""
    monkeypatch.setattr(services, "IMPORT_BATCH", 1)
    (folder / "003.txt").write_text("Slow delivery\nJohn\n2017-12-21\nVery good.\n")
    first_done, go_on = threading.Event(), threading.Event()

    def between_batches(done: int) -> None:
        if not first_done.is_set():
            first_done.set()
            assert go_on.wait(PATIENCE), "never released"

    importer = Writer(
        postgres_database,
        Paused("never run"),
        lambda: services.feedback_import_files(sorted(folder.glob("*.txt")), progress=between_batches),
    )
    importer.start()
    assert first_done.wait(PATIENCE)
    poster = Writer(postgres_database, Paused("never run"), post(OTHER))
    poster.start()
    waited = waiting(postgres_database, poster)
    go_on.set()

    assert waited == [False], "the post waited for the import to end"
    assert poster.outcome().status_code == 201
    summary = importer.outcome()
    assert (summary.created, summary.skipped) == (2, 1)
    assert Feedback.objects.filter(title="Slow delivery").get().source == Feedback.Source.API
    assert Feedback.objects.count() == 3
