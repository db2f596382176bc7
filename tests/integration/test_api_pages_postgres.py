"""On PostgreSQL, the numbered pages of an API list, or of the directory,
sorted by a column many rows share list every row once: the database orders rows that tie as it
pleases, differently for each page's LIMIT and OFFSET, unless the order ends
with a column no two rows share."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client

from catalog import views
from tests.factories import PersonFactory
from tests.servers import PostgresServer

pytestmark = [pytest.mark.integration]


def walk(client: Client, url: str) -> list[Any]:
    """The ids of every page of the list, in order."""
    ids: list[Any] = []
    page = 1
    while True:
        response = client.get(url, {"page": page, "page_size": 5})
        if response.status_code == 404:
            return ids
        ids += [row["id"] for row in response.json()["results"]]
        page += 1


@pytest.mark.parametrize("ordering", ["", "department", "-department"])
def test_pages_of_people_who_share_a_department_and_a_name_list_each_once(
    postgres_database: PostgresServer, ordering: str
) -> None:
    people = [PersonFactory(department="Engineering", name="Ann Lee").pk for _ in range(40)]
    url = "/api/v1/people/" + (f"?ordering={ordering}" if ordering else "")
    assert sorted(walk(Client(), url)) == sorted(people)


def test_the_directorys_pages_of_people_who_share_a_department_and_a_name_list_each_once(
    postgres_database: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(views, "PEOPLE_PER_PAGE", 5)
    people: list[str] = [PersonFactory(department="Engineering", name="Ann Lee").username for _ in range(40)]
    client = Client()
    listed: list[str] = []
    for page in range(1, 9):
        html = client.get("/people/", {"page": page}).content.decode()
        listed += re.findall(r'<a href="/people/([^/"]+)/">', html)
    assert sorted(listed) == sorted(people)
