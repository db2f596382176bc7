"""Writes that meet on a fleet: four gunicorn processes (and a Celery worker
where images are processed) against one PostgreSQL and one S3 store.

Each test sends its requests at once (threads released together from a
barrier), or, where two writes meet only in a window of a few milliseconds,
widens that window the way a busy database does: a lock taken from a
connection of the test's own holds one writer at a chosen statement until
the other has reached the point where they meet. Then it checks the end
state in the database and the buckets: every answer a 2xx or a 4xx naming
the reason, one row per key, every row with its objects and no object
without its row.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import pytest
import requests

from tests.fleet import Fleet, Servers, fleet, running_servers
from tests.uploads import corpus

pytestmark = [pytest.mark.integration, pytest.mark.slow]

T = TypeVar("T")
# Why a review of a product deleted meanwhile is refused.
GONE = "The product you were reviewing is no longer in the catalog."


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    with running_servers(tmp_path_factory.mktemp("servers")) as servers:
        yield servers


@pytest.fixture(scope="module")
def portal(servers: Servers, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    """One deployment for the module, each test writing keys of its own:
    four web processes serve four requests at the same moment."""
    with fleet(
        servers,
        tmp_path_factory.mktemp("fleet"),
        PORTAL_FEEDBACK_RATE="100000/min",
        PORTAL_LAB_RATE="100000/min",
    ) as deployment:
        deployment.start_web(workers=4)
        yield deployment


@pytest.fixture(scope="module")
def worker(portal: Fleet) -> Fleet:
    """The deployment with a Celery worker processing its images."""
    portal.start_worker()
    return portal


def at_once(calls: Sequence[Callable[[], T]]) -> list[T]:
    """Run the calls on threads of their own, released together."""
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], T]) -> T:
        barrier.wait()
        return call()

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


def sql(portal: Fleet, query: str, *params: Any) -> list[tuple[Any, ...]]:
    with portal.servers.postgres.connect(dbname=_dbname(portal)) as conn:
        return list(conn.execute(query, params).fetchall())


def _dbname(portal: Fleet) -> str:
    return portal.database_url.rsplit("/", 1)[1]


def statuses(responses: Sequence[requests.Response]) -> Counter[int]:
    return Counter(r.status_code for r in responses)


def lab_post(portal: Fleet, body: dict[str, Any]) -> Callable[[], requests.Response]:
    # No credentials: the course's scripts post from the loopback.
    return lambda: requests.post(f"{portal.web_url}/fruits/", json=body, timeout=60)


def lab_upload(portal: Fleet, data: bytes, name: str) -> Callable[[], requests.Response]:
    return lambda: requests.post(f"{portal.web_url}/upload/", files={"file": (name, data)}, timeout=60)


def lock_waiters(portal: Fleet) -> int:
    """How many of the deployment's connections wait for a lock."""
    [(count,)] = sql(
        portal,
        "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock'",
        _dbname(portal),
    )
    return int(count)


def wait_for(portal: Fleet, what: str, probe: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() > deadline:
            busy = sql(
                portal,
                "SELECT state, wait_event_type, wait_event, left(query, 120) FROM pg_stat_activity "
                "WHERE datname = %s AND state <> 'idle'",
                _dbname(portal),
            )
            raise AssertionError(f"{what}: not in {timeout} s; the database's connections: {busy}")
        time.sleep(0.01)


@contextlib.contextmanager
def held(portal: Fleet, statement: str, *params: Any) -> Iterator[None]:
    """The locks ``statement`` takes, held by a transaction of the test's own
    for the block: the writers that need them wait meanwhile, as they would
    for a slow transaction."""
    with portal.servers.postgres.connect(dbname=_dbname(portal), autocommit=False) as conn:
        conn.execute(statement, params)
        yield
        conn.commit()


# --- /fruits/ -------------------------------------------------------------------


def test_fruits_posted_at_once_make_one_product_per_stem_holding_one_post_whole(portal: Fleet) -> None:
    stems = [f"fr{n:02d}" for n in range(6)]
    bodies = [
        {
            "name": f"Fruit {stem} v{version}",
            "weight": 100 * version + n,
            "description": f"Posted as version {version} of {stem}.",
            "image_name": f"{stem}.{'jpeg' if version % 2 else 'png'}",
        }
        for version in range(1, 6)
        for n, stem in enumerate(stems)
    ]
    # Without a file name, the name is what a post is matched by.
    bodies += [{"name": "Nameless fig", "weight": w, "description": f"w{w}"} for w in range(1, 7)]

    responses = at_once([lab_post(portal, body) for body in bodies])

    assert statuses(responses) == {201: len(bodies)}, [r.text for r in responses if r.status_code != 201]
    ids_by_key: dict[str, set[int]] = {}
    for body, response in zip(bodies, responses, strict=True):
        key = body.get("image_name", "").split(".")[0] or body["name"]
        ids_by_key.setdefault(key, set()).add(response.json()["id"])
    # Every post of a stem was answered with the one product of that stem.
    assert all(len(ids) == 1 for ids in ids_by_key.values()), ids_by_key
    assert len(set.union(*ids_by_key.values())) == len(stems) + 1
    rows = sql(
        portal,
        "SELECT image_stem, name, weight, description, image_name FROM catalog_product "
        "WHERE image_stem = ANY(%s) OR name = 'Nameless fig'",
        stems,
    )
    assert sorted(row[0] for row in rows) == ["", *stems]
    # Each product holds one post whole (the last to commit), never the
    # name of one post and the weight of another.
    posted = {
        (
            b.get("image_name", "").split(".")[0],
            b["name"],
            b["weight"],
            b["description"],
            b.get("image_name", ""),
        )
        for b in bodies
    }
    assert set(rows) <= posted, set(rows) - posted


def test_a_fruit_and_its_photo_posted_at_once_are_linked_whichever_commits_first(portal: Fleet) -> None:
    """The product is being added (its writer found no photo of its stem)
    when its photo's upload commits and links the products of its stem: the
    link waits for the product, then finds it."""
    photo = corpus.jpeg(corpus.solid(color=(200, 120, 30)))
    [(ids,)] = sql(portal, "SELECT pg_get_serial_sequence('catalog_product', 'id')")
    with ThreadPoolExecutor(2) as pool:
        # The product's INSERT waits for its id, the sequence held by the test.
        with held(portal, f"ALTER SEQUENCE {ids} INCREMENT BY 1"):
            fruit = pool.submit(lab_post(portal, {"name": "Quince", "weight": 40, "image_name": "qu1.jpeg"}))
            wait_for(portal, "the product's INSERT waits", lambda: lock_waiters(portal) >= 1)
            upload = pool.submit(lab_upload(portal, photo, "qu1.jpg"))
            wait_for(portal, "the upload ends or waits", lambda: upload.done() or lock_waiters(portal) >= 2)
        assert fruit.result().status_code == 201, fruit.result().text
        assert upload.result().status_code == 201, upload.result().text
    product = portal.api("GET", f"/api/v1/products/{fruit.result().json()['id']}/").json()
    assert product["image"] is not None, "the product shows no image, though its photo is there"
    assert product["image"]["id"] == upload.result().json()["id"]


# --- API: people and products -----------------------------------------------------


def test_people_added_at_once_with_one_username_make_one_person(portal: Fleet) -> None:
    responses = at_once(
        [
            (lambda n=n: portal.api("POST", "/api/v1/people/", json={"name": f"Ada {n}", "username": "ada"}))
            for n in range(12)
        ]
    )
    assert statuses(responses) == {201: 1, 400: 11}, [r.text for r in responses]
    assert all("username" in r.json() for r in responses if r.status_code == 400)
    [winner] = [r.json() for r in responses if r.status_code == 201]
    assert sql(portal, "SELECT id, name FROM catalog_person WHERE username = 'ada'") == [
        (winner["id"], winner["name"])
    ]


def test_people_renamed_at_once_to_one_username_leave_one_with_it(portal: Fleet) -> None:
    ids = [
        portal.api("POST", "/api/v1/people/", json={"name": f"P {n}", "username": f"pr{n}"}).json()["id"]
        for n in range(8)
    ]
    responses = at_once(
        [(lambda i=i: portal.api("PATCH", f"/api/v1/people/{i}/", json={"username": "taken"})) for i in ids]
    )
    assert statuses(responses) == {200: 1, 400: 7}, [r.text for r in responses]
    assert all("username" in r.json() for r in responses if r.status_code == 400)
    assert sql(portal, "SELECT count(*) FROM catalog_person WHERE username = 'taken'") == [(1,)]
    assert sql(portal, "SELECT count(*) FROM catalog_person WHERE id = ANY(%s)", ids) == [(8,)]


def test_products_posted_or_changed_at_once_to_one_stem_leave_one_product_with_it(portal: Fleet) -> None:
    def post(n: int) -> requests.Response:
        body = {"name": f"Kiwi {n}", "weight": n + 1, "image_name": f"kw.{'png' if n % 2 else 'jpeg'}"}
        return portal.api("POST", "/api/v1/products/", json=body)

    posted = at_once([(lambda n=n: post(n)) for n in range(8)])
    assert statuses(posted) == {201: 1, 200: 7}, [r.text for r in posted]
    assert len({r.json()["id"] for r in posted}) == 1

    ids = [
        portal.api(
            "POST", "/api/v1/products/", json={"name": f"Other {n}", "weight": 5, "image_name": f"ot{n}.png"}
        ).json()["id"]
        for n in range(6)
    ]
    changed = at_once(
        [
            (lambda i=i: portal.api("PATCH", f"/api/v1/products/{i}/", json={"image_name": "pa.png"}))
            for i in ids
        ]
    )
    assert statuses(changed) == {200: 1, 400: 5}, [r.text for r in changed]
    assert all("image_name" in r.json() for r in changed if r.status_code == 400)
    assert sql(
        portal,
        "SELECT image_stem, count(*) FROM catalog_product WHERE image_stem IN ('kw', 'pa') GROUP BY 1 ORDER BY 1",
    ) == [
        ("kw", 1),
        ("pa", 1),
    ]


# --- Reviews of a product being deleted ---------------------------------------------


def review_form_post(portal: Fleet, product: int, title: str, name: str) -> Callable[[], requests.Response]:
    """The public review form, as a browser sends it (each by another
    ``name``: the same review sent again is the one posted first)."""
    session = requests.Session()
    session.get(f"{portal.web_url}/reviews/new/?product={product}", timeout=60)
    form = {
        "csrfmiddlewaretoken": session.cookies["csrftoken"],
        "product": str(product),
        "title": title,
        "name": name,
        "text": "Sweet and fresh.",
        "rating": "5",
    }
    return lambda: session.post(
        f"{portal.web_url}/reviews/new/", data=form, allow_redirects=False, timeout=60
    )


def test_reviews_posted_while_their_product_is_deleted_are_kept_or_refused_naming_it(portal: Fleet) -> None:
    """Each round deletes a product while reviews of it arrive through the
    API and the form: the deletion goes through, and each review is kept
    (detached from the product) or refused because the product is gone."""
    for round_ in range(8):
        title = f"Round {round_}"
        product = portal.api(
            "POST", "/api/v1/products/", json={"name": f"Doomed {round_}", "weight": 3}
        ).json()
        body = {"title": title, "name": "Bo", "text": "Good fruit.", "rating": 5, "product": product["id"]}
        api_post = lambda: requests.post(f"{portal.web_url}/api/v1/feedback/", json=body, timeout=60)  # noqa: B023, E731 - run in this round
        calls = [api_post] * 10 + [
            review_form_post(portal, product["id"], title, f"Bo {n}") for n in range(5)
        ]
        calls.append(lambda: portal.api("DELETE", f"/api/v1/products/{product['id']}/"))  # noqa: B023 - run in this round

        *reviews, deleted = at_once(calls)

        assert deleted.status_code == 204, deleted.text
        api, form = reviews[:10], reviews[10:]
        assert set(statuses(api)) <= {201, 400}, [r.text for r in api]
        assert all(
            r.json() == {"product": [GONE]} or "Invalid pk" in r.text for r in api if r.status_code == 400
        ), [r.text for r in api]
        assert set(statuses(form)) <= {302, 400}, [(r.status_code, r.text[:300]) for r in form]
        assert all(GONE in r.text for r in form if r.status_code == 400)
        kept = sql(portal, "SELECT product_id FROM catalog_feedback WHERE title = %s", title)
        assert len(kept) == statuses(api)[201] + statuses(form)[302]
        assert {product_id for (product_id,) in kept} <= {None}
        assert sql(portal, "SELECT count(*) FROM catalog_product WHERE id = %s", product["id"]) == [(0,)]


# --- Images -----------------------------------------------------------------------


def settled_keys(portal: Fleet) -> set[str]:
    """The buckets' keys once no image (of an earlier test too) waits to be processed."""
    waiting = "SELECT count(*) FROM uploads_image WHERE status IN ('pending', 'processing')"
    wait_for(portal, "earlier images processed", lambda: sql(portal, waiting) == [(0,)], timeout=120)
    return portal.bucket_keys()


def object_keys(portal: Fleet, image: dict[str, Any]) -> set[str]:
    """The keys of the image's original and renditions."""
    keys = {r["url"].split(f"/{portal.bucket}/", 1)[1] for r in image["renditions"]}
    return keys | {f"originals/{image['sha256'][:2]}/{image['sha256']}.jpg"}


def test_the_same_photo_uploaded_and_deleted_at_once_keeps_the_objects_of_every_copy_left(
    worker: Fleet,
) -> None:
    portal = worker
    before = settled_keys(portal)
    data = corpus.photo_jpeg(900, 600, seed=21)
    uploaded = at_once([(lambda n=n: portal.upload(data, f"same{n}.jpg")) for n in range(8)])
    assert statuses(uploaded) == {201: 8}, [r.text for r in uploaded]
    copies = portal.wait_for_images([r.json()["id"] for r in uploaded])
    assert {c["status"] for c in copies} == {"ready"}

    # Six copies deleted while six more arrive.
    deletes = [(lambda i=c["id"]: portal.api("DELETE", f"/api/v1/images/{i}/")) for c in copies[:6]]
    uploads = [(lambda n=n: portal.upload(data, f"again{n}.jpg")) for n in range(6)]
    responses = at_once([*deletes, *uploads])
    assert statuses(responses) == {204: 6, 201: 6}, [r.text for r in responses]

    left = portal.wait_for_images([c["id"] for c in copies[6:]] + [r.json()["id"] for r in responses[6:]])
    assert {c["status"] for c in left} == {"ready"}
    keys = portal.bucket_keys()
    assert all(object_keys(portal, c) <= keys for c in left)
    # The copies share their objects: the last deletion takes them.
    for copy in left:
        assert portal.api("DELETE", f"/api/v1/images/{copy['id']}/").status_code == 204
    assert portal.bucket_keys() == before


def test_an_image_deleted_while_its_renditions_are_committed_goes_with_them(worker: Fleet) -> None:
    """The deletion meets the processing run's last transaction, which holds
    the image row while it writes the renditions."""
    portal = worker
    before = settled_keys(portal)
    with ThreadPoolExecutor(1) as pool:
        with held(portal, "LOCK TABLE uploads_rendition IN SHARE MODE"):
            image_id = portal.upload(corpus.photo_jpeg(800, 600, seed=11), "busy.jpg").json()["id"]
            wait_for(portal, "the renditions' INSERT waits", lambda: lock_waiters(portal) >= 1)
            deleting = pool.submit(portal.api, "DELETE", f"/api/v1/images/{image_id}/")
            wait_for(portal, "the deletion waits", lambda: lock_waiters(portal) >= 2)
        deleted = deleting.result()
    assert deleted.status_code == 204, deleted.text
    assert sql(portal, "SELECT count(*) FROM uploads_image WHERE id = %s", image_id) == [(0,)]
    assert sql(portal, "SELECT count(*) FROM uploads_rendition WHERE image_id = %s", image_id) == [(0,)]
    # Its objects went once the deletion committed.
    wait_for(portal, "the objects go", lambda: portal.bucket_keys() == before)


def test_a_photo_uploaded_again_while_its_first_copy_is_deleted_keeps_its_original(worker: Fleet) -> None:
    """The copies share one original: the deletion of the first must not
    take it from under the second, stored but not yet committed."""
    portal = worker
    data = corpus.photo_jpeg(600, 400, seed=12)
    [first] = portal.wait_for_images([portal.upload(data, "first.jpg").json()["id"]])
    [(uploader,)] = sql(portal, "SELECT id FROM auth_user WHERE username = 'fleet'")
    with ThreadPoolExecutor(2) as pool:
        # The second upload's INSERT checks its uploader at commit: held back
        # there, after its original is stored.
        with held(portal, "SELECT 1 FROM auth_user WHERE id = %s FOR UPDATE", uploader):
            again = pool.submit(portal.upload, data, "second.jpg")
            wait_for(portal, "the second copy's INSERT waits", lambda: lock_waiters(portal) >= 1)
            deleting = pool.submit(portal.api, "DELETE", f"/api/v1/images/{first['id']}/")
            # Done, or (once the storage waits for the writer) waiting for the second's commit.
            wait_for(
                portal, "the deletion ends or waits", lambda: deleting.done() or lock_waiters(portal) >= 2
            )
        second = again.result()
        assert deleting.result().status_code == 204, deleting.result().text
    assert second.status_code == 201, second.text
    sha = second.json()["sha256"]
    original = f"originals/{sha[:2]}/{sha}.jpg"
    assert original in portal.bucket_keys(bucket=portal.private_bucket), "the second copy lost its original"
    [image] = portal.wait_for_images([second.json()["id"]], timeout=60)
    assert image["status"] == "ready", image["error"]
    assert object_keys(portal, image) <= portal.bucket_keys()


def test_a_photo_processed_again_while_its_first_copy_is_deleted_keeps_its_renditions(worker: Fleet) -> None:
    """The copies' renditions are the same objects: the second's run stores
    them (finding them there) before it commits their rows, and the
    deletion of the first must not take them in between."""
    portal = worker
    data = corpus.photo_jpeg(3000, 2000, seed=13)
    [first] = portal.wait_for_images([portal.upload(data, "first.jpg").json()["id"]])
    second = portal.upload(data, "second.jpg").json()["id"]
    claimed = "SELECT status FROM uploads_image WHERE id = %s"
    wait_for(
        portal,
        "the second copy is being processed",
        lambda: sql(portal, claimed, second) == [("processing",)],
    )
    with ThreadPoolExecutor(1) as pool:
        # Its run, once its objects are stored, waits for the row to commit theirs.
        with held(portal, "SELECT 1 FROM uploads_image WHERE id = %s FOR UPDATE", second):
            wait_for(portal, "the run waits to commit its renditions", lambda: lock_waiters(portal) >= 1)
            deleting = pool.submit(portal.api, "DELETE", f"/api/v1/images/{first['id']}/")
            wait_for(
                portal, "the deletion ends or waits", lambda: deleting.done() or lock_waiters(portal) >= 2
            )
        assert deleting.result().status_code == 204, deleting.result().text
    [image] = portal.wait_for_images([second], timeout=60)
    assert image["status"] == "ready", image["error"]
    missing = object_keys(portal, image) - portal.bucket_keys()
    assert not missing, f"the ready copy lost {len(missing)} of its objects"
