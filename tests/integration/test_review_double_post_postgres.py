"""On PostgreSQL, the public review form sent twice at once by one browser (a
double click on "Send") holds one review, with the shared cache away or not:
the second post waits for the first and answers with its review.

The first post is held after its insert, before it commits (``Paused``),
while the second runs; then both go on. Without the lock the posts of the
same words take, the second waits for the first's row in the unique index
of ``Feedback.form_digest`` instead, and finds it all the same.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from catalog import services
from catalog.models import Feedback
from core import locks
from tests.integration.paused import Paused, Writer, waiting
from tests.servers import PostgresServer

pytestmark = [pytest.mark.integration, pytest.mark.slow]

WORDS = {"title": "Great!", "name": "Ann", "text": "Great!", "rating": 5}
INSERTED = ('INSERT INTO "catalog_feedback"',)


def sent(sender: str) -> Callable[[], tuple[Feedback, bool]]:
    return lambda: services.feedback_submit_from_form(**WORDS, sender=sender)


@pytest.mark.parametrize("locked", [True, False], ids=["with the lock", "by the unique digest alone"])
def test_a_form_sent_twice_at_once_holds_one_review(
    postgres_database: PostgresServer, monkeypatch: pytest.MonkeyPatch, locked: bool
) -> None:
    if not locked:
        monkeypatch.setattr(locks, "hold", lambda *args, **kwargs: None)
    paused = Paused(*INSERTED)
    first = Writer(postgres_database, paused, sent("secret"))
    first.start()
    paused.wait()
    second = Writer(postgres_database, Paused("never run"), sent("secret"))
    second.start()

    waited = waiting(postgres_database, second)
    paused.go()

    review, created = first.outcome()
    again, created_again = second.outcome()
    assert waited == [True], "the second post did not wait for the first"
    assert (created, created_again) == (True, False)
    assert again.pk == review.pk
    assert list(Feedback.objects.values_list("pk", flat=True)) == [review.pk]


def test_the_same_words_sent_at_once_from_two_browsers_are_two_reviews(
    postgres_database: PostgresServer,
) -> None:
    paused = Paused(*INSERTED)
    first = Writer(postgres_database, paused, sent("one browser"))
    first.start()
    paused.wait()
    second = Writer(postgres_database, Paused("never run"), sent("another"))
    second.start()

    waiting(postgres_database, second)
    paused.go()

    outcomes: list[Any] = [first.outcome(), second.outcome()]
    assert [created for _, created in outcomes] == [True, True]
    assert Feedback.objects.count() == 2
