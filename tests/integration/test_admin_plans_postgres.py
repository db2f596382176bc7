"""On PostgreSQL, with a year of rows, the admin's lists of reviews and
images read what a page shows through an index: a search of a word inside
the text, each sortable column either way, and the default order; no list
of a large table counts the whole table to show it, nor reads it whole for
anything else (its filters, the drill-down by date). The planner chooses on
its own, on statistics of realistic row counts."""

from __future__ import annotations

import datetime as dt
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.admin.views.main import ChangeList
from django.contrib.auth.models import AnonymousUser
from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Model
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from psycopg import sql

from catalog.models import Feedback, Person, Product
from core.admin_counts import EstimatedCountPaginator, table_estimate
from core.admin_dates import walk_dates
from tests.processes import manage_py, portal_env
from tests.servers import PostgresServer
from uploads.models import Image

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.django_db]

ROOT = Path(__file__).resolve().parent.parent.parent
REVIEWS, PRODUCTS, IMAGES = 100_000, 20_000, 60_000


def migrate(url: str, tmp: Path) -> subprocess.CompletedProcess[str]:
    return manage_py("migrate", "--no-input", env=portal_env(tmp, DATABASE_URL=url), timeout=600)


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    with PostgresServer() as server:
        yield server


@pytest.fixture(scope="module")
def year(postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory) -> PostgresServer:
    """The portal's database migrated, then a year of reviews (one in ten
    of no product) and images (those ready with their renditions), analysed."""
    result = migrate(postgres.url, tmp_path_factory.mktemp("var"))
    assert result.returncode == 0, result.stderr
    with postgres.connect() as conn:
        conn.execute(
            """
            INSERT INTO catalog_product (name, weight, description, image_name, image_stem, is_demo,
                created_at, updated_at)
            SELECT 'Product ' || g, 1 + g %% 50, '', g || '.jpeg', g::text, false, now(), now()
            FROM generate_series(1, %(products)s) g
            """,
            {"products": PRODUCTS},
        )
        conn.execute(
            """
            INSERT INTO catalog_feedback (title, name, date, text, rating, product_id, status, source, is_demo,
                fingerprint, created_at, updated_at)
            SELECT 'Review ' || md5(g::text), 'Reader ' || substr(md5((g * 7)::text), 1, 8),
                date '2025-01-01' + g %% 365, md5((g * 3)::text) || ' tasted fine, would buy again',
                1 + g %% 5, CASE WHEN g %% 10 > 0 THEN 1 + g %% %(products)s END, (ARRAY['published', 'pending', 'hidden'])[1 + g %% 3],
                (ARRAY['web', 'api', 'import'])[1 + g %% 3], false, md5(g::text) || md5(g::text), now(), now()
            FROM generate_series(1, %(reviews)s) g
            """,
            {"reviews": REVIEWS, "products": PRODUCTS},
        )
        conn.execute(
            """
            INSERT INTO uploads_image (file, original_name, name_stem, title, alt, preset, sha256, format,
                width, height, frames, bytes, status, error, placeholder, dominant_color, attempts,
                interruptions, holder, created_at, updated_at, is_demo)
            SELECT 'originals/' || md5(g::text), 'supplier/' || g || '.jpeg', g::text,
                'Photo ' || md5((g * 5)::text), 'A ' || md5((g * 11)::text), 'web',
                md5(g::text) || md5((g + 1)::text), 'JPEG', 640, 480, 1, (g * 7919) %% 5000000,
                (ARRAY['ready', 'ready', 'ready', 'failed', 'pending'])[1 + g %% 5], '', '', '', 1, 0, '',
                now() - g * interval '1 minute', now(), false
            FROM generate_series(1, %(images)s) g
            """,
            {"images": IMAGES},
        )
        conn.execute(
            """
            INSERT INTO uploads_rendition (image_id, name, format, width, height, bytes, storage_key)
            SELECT i.id, r.name, r.format, r.width, r.width * 3 / 4, 20000, 'renditions/' || i.sha256 || '/' || r.name
            FROM uploads_image i
            CROSS JOIN (VALUES ('thumb', 'jpeg', 256), ('w640', 'webp', 640)) AS r (name, format, width)
            WHERE i.status = 'ready'
            """
        )
        # As autovacuum leaves a table: statistics, and the trigram indexes' pending entries merged.
        # A sample as large as each table (300 rows per unit of target), so
        # that the planner's estimates, which the pages tell, are the same at
        # every run: a sample of 30,000 rows put a third of 100,000 reviews
        # at "about 33,000" or "about 34,000" by chance.
        conn.execute("SET default_statistics_target = 400")
        conn.execute("VACUUM ANALYZE")
    return postgres


@pytest.fixture
def database(year: PostgresServer, django_db_blocker: Any) -> Iterator[BaseDatabaseWrapper]:
    """A Django connection of its own to it (the suite's is SQLite)."""
    with django_db_blocker.unblock():
        wrapper = year.django_connection()
        yield wrapper
        wrapper.close()


class Staff(AnonymousUser):
    is_active = is_staff = is_superuser = True  # type: ignore[assignment]  # a staff member with every permission, no row

    def has_perm(self, perm: str, obj: Any = None) -> bool:
        return True


def plan(database: BaseDatabaseWrapper, model: type[Model], params: dict[str, str]) -> str:
    """PostgreSQL's plan of the query of the first page of the list."""
    admin.autodiscover()
    request = RequestFactory().get("/", params)
    request.user = Staff()
    changelist = admin.site._registry[model].get_changelist_instance(request)
    query = changelist.queryset[: changelist.list_per_page].query
    statement, values = query.get_compiler(connection=database).as_sql()
    with database.cursor() as cursor:
        cursor.execute(f"EXPLAIN {statement}", values)
        return "\n".join(row[0] for row in cursor.fetchall())


@pytest.mark.parametrize(
    ("model", "indexes"),
    [
        (
            Feedback,
            ["catalog_feedback_title_trgm", "catalog_feedback_name_trgm", "catalog_feedback_text_trgm"],
        ),
        (
            Image,
            [
                "uploads_image_title_trgm",
                "uploads_image_alt_trgm",
                "uploads_image_original_name_trgm",
                "uploads_image_sha256_trgm",
            ],
        ),
    ],
    ids=["reviews", "images"],
)
def test_a_search_of_a_word_inside_the_text_reads_the_trigram_indexes(
    database: BaseDatabaseWrapper, model: type[Model], indexes: list[str]
) -> None:
    shown = plan(database, model, {"q": "c0ffee"})

    assert f"Seq Scan on {model._meta.db_table}" not in shown, shown
    for index in indexes:
        assert f"Bitmap Index Scan on {index}" in shown, shown


def sortable(model: type[Model]) -> list[tuple[str, str]]:
    """Each sortable column's ``o`` parameter, both ways, and its name, as
    the list numbers its columns (the selection box first)."""
    admin.autodiscover()
    model_admin = admin.site._registry[model]
    request = RequestFactory().get("/")
    request.user = Staff()
    columns = list(model_admin.get_list_display(request))
    if model_admin.get_actions(request):
        columns.insert(0, "action_checkbox")
    found = []
    lookup = SimpleNamespace(lookup_opts=model._meta, model_admin=model_admin)
    for i, name in enumerate(columns):
        if ChangeList.get_ordering_field(lookup, name) is not None:  # type: ignore[arg-type]
            found += [(f"{sign}{i}", f"{name} {'descending' if sign else 'ascending'}") for sign in ("", "-")]
    return found


# Sorting by the product runs through the products' own order (name, id), over
# a LEFT JOIN (a review may have no product), which no index serves: the list
# reads its pages in two parts instead (see the test of the sort by product).
REVIEW_ORDERS = [(o, name) for o, name in sortable(Feedback) if not name.startswith("product ")]


@pytest.mark.parametrize(
    ("model", "order"),
    [
        (Feedback, ""),
        *[(Feedback, o) for o, _ in REVIEW_ORDERS],
        (Image, ""),
        *[(Image, o) for o, _ in sortable(Image)],
    ],
    ids=[
        "reviews default",
        *[f"reviews by {name}" for _, name in REVIEW_ORDERS],
        "images default",
        *[f"images by {name}" for _, name in sortable(Image)],
    ],
)
def test_a_page_of_the_list_sorted_by_a_column_either_way_is_read_in_index_order(
    database: BaseDatabaseWrapper, model: type[Model], order: str
) -> None:
    shown = plan(database, model, {"o": order} if order else {})

    assert f"Seq Scan on {model._meta.db_table}" not in shown, shown
    assert "Sort" not in shown, shown
    assert "Index Scan" in shown, shown


def test_the_sort_by_size_is_read_from_the_index_of_size_and_id(database: BaseDatabaseWrapper) -> None:
    size = next(o for o, name in sortable(Image) if name == "size ascending")

    assert "Index Scan using uploads_image_bytes_idx" in plan(database, Image, {"o": size})
    assert "Index Scan Backward using uploads_image_bytes_idx" in plan(database, Image, {"o": f"-{size}"})


@pytest.mark.parametrize(
    ("direction", "page", "first", "indexes"),
    [
        # Product 1 has no review (its would be the tenth ones).
        ("", "1", "Product 10 ", ["catalog_product_name_idx"]),
        # The 10,000 reviews of no product come first going down.
        ("-", "1", None, []),
        ("-", "2", None, []),
    ],
    ids=["ascending", "descending", "descending page 2"],
)
def test_a_page_of_the_reviews_sorted_by_product_is_read_in_index_order(
    database: BaseDatabaseWrapper, direction: str, page: str, first: str | None, indexes: list[str]
) -> None:
    order = next(o for o, name in sortable(Feedback) if name == "product ascending")
    text, statements = changelist_page(database, Feedback, {"o": f"{direction}{order}", "p": page})
    reads = [s for s in statements if '"catalog_feedback"."product_id"' in s]
    shown = []
    with database.cursor() as cursor:
        for statement in reads:
            cursor.execute(f"EXPLAIN {statement}")
            shown.append("\n".join(row[0] for row in cursor.fetchall()))
    plans = "\n\n".join(shown)

    if first is None:
        assert not re.search(r"Product \d", text)
    else:
        assert first in text
    assert reads, statements
    # Each product's few reviews may be put in order as they come (an
    # incremental sort, its products presorted), but no part is sorted whole.
    assert not re.search(r"^\s*(->\s+)?Sort \(", plans, re.MULTILINE), plans
    assert "Seq Scan on catalog_feedback" not in plans, plans
    assert "Index Scan" in plans, plans
    for index in indexes:
        assert f"using {index}" in plans, plans


@pytest.mark.parametrize("page", ["101", "500", "901"])
def test_a_late_page_of_the_reviews_sorted_by_product_reads_no_more_reviews_of_no_product_than_it_counts_up_to(
    database: BaseDatabaseWrapper, page: str
) -> None:
    order = next(o for o, name in sortable(Feedback) if name == "product ascending")
    # Going down, the 10,000 reviews of no product come first, and these
    # pages are past them.
    text, statements = changelist_page(database, Feedback, {"o": f"-{order}", "p": page})
    of_none = [s for s in statements if '"catalog_feedback"."product_id" IS NULL' in s]

    bottom = (int(page) - 1) * 100
    suite = connections["default"]
    connections["default"] = database
    try:
        reviews = Feedback.objects.order_by("-product", "-pk")
        expected = list(reviews.values_list("title", flat=True)[bottom : bottom + 100])
    finally:
        connections["default"] = suite
    shown = re.findall(r"Review [0-9a-f]{32}", text)
    assert shown == expected
    assert of_none, statements
    read = sum(rows_read(database, statement)[1] for statement in of_none)
    assert read <= EstimatedCountPaginator.count_up_to + 1, of_none


def test_the_owner_of_the_database_creates_the_extension_and_another_role_is_told_what_to_do(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    with postgres.connect(dbname="postgres") as conn:
        for role in ("owner", "guest"):
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD 'secret'").format(sql.Identifier(role)))
        conn.execute("CREATE DATABASE owned OWNER owner")
        conn.execute("CREATE DATABASE borrowed")
    with postgres.connect(dbname="borrowed") as conn:
        conn.execute("GRANT ALL ON SCHEMA public TO guest")
    address = f"{postgres.host}:{postgres.port}"

    owned = migrate(f"postgres://owner:secret@{address}/owned", tmp_path)
    borrowed = migrate(f"postgres://guest:secret@{address}/borrowed", tmp_path)

    assert owned.returncode == 0, owned.stderr
    assert borrowed.returncode != 0
    assert "guest may not create the extension pg_trgm in database borrowed" in borrowed.stderr
    assert "CREATE EXTENSION IF NOT EXISTS pg_trgm;" in borrowed.stderr


def changelist_page(
    database: BaseDatabaseWrapper, model: type[Model], params: dict[str, str]
) -> tuple[str, list[str]]:
    """The list's page as staff get it, read from PostgreSQL: its text and the statements it ran."""
    admin.autodiscover()
    request = RequestFactory().get("/", params)
    request.user = Staff()
    suite = connections["default"]
    connections["default"] = database
    try:
        with CaptureQueriesContext(database) as ran:
            response = admin.site._registry[model].changelist_view(request)
            response.render()
    finally:
        connections["default"] = suite
    assert response.status_code == 200
    text = " ".join(re.sub(r"<[^>]+>", " ", response.content.decode()).split())
    return text, [query["sql"] for query in ran]


def counts_of_the_whole(table: str, statements: list[str]) -> list[str]:
    """The statements that count every row of the table."""
    return [s for s in statements if "COUNT(" in s.upper() and f'FROM "{table}"' in s and " WHERE " not in s]


LARGE = [
    (Feedback, "about 100,000 feedback", {"status__exact": "hidden"}, "about 33,000 results ( Show all )"),
    (Product, "about 20,000 products", {"q": "Product 1999"}, "12 results ( Show all )"),
    (Image, "about 60,000 images", {"status": "failed"}, "about 12,000 results ( Show all )"),
]


@pytest.mark.parametrize(("model", "told", "filtered", "found"), LARGE, ids=["reviews", "products", "images"])
def test_the_list_of_a_large_table_tells_the_planners_estimate_without_counting_it(
    database: BaseDatabaseWrapper, model: type[Model], told: str, filtered: dict[str, str], found: str
) -> None:
    text, statements = changelist_page(database, model, {})

    assert not counts_of_the_whole(model._meta.db_table, statements), statements
    assert told in text
    assert not re.search(r"\d[\d,]* results? \(", text), "a filtered count was shown"


@pytest.mark.parametrize(("model", "told", "filtered", "found"), LARGE, ids=["reviews", "products", "images"])
def test_a_filtered_list_of_a_large_table_counts_what_it_shows_and_not_the_table(
    database: BaseDatabaseWrapper, model: type[Model], told: str, filtered: dict[str, str], found: str
) -> None:
    text, statements = changelist_page(database, model, filtered)

    assert not counts_of_the_whole(model._meta.db_table, statements), statements
    assert found in text
    assert not re.search(r"\d[\d,]* total", text), "the whole table was counted"


def scans(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The nodes of a plan (EXPLAIN's JSON) that read a large table."""
    if node.get("Relation Name") in LARGE_TABLES:
        yield node
    for child in node.get("Plans", []):
        yield from scans(child)


def rows_read(database: BaseDatabaseWrapper, statement: str) -> tuple[int, int]:
    """The rows of large tables the statement took, as it ran (EXPLAIN
    ANALYZE), and those it read to find them (with those its filter left)."""
    with database.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {statement}")
        shown = cursor.fetchone()[0]
    taken = read = 0
    for node in scans(shown[0]["Plan"]):
        rows = node["Actual Rows"] * node["Actual Loops"]
        taken += rows
        read += rows + node.get("Rows Removed by Filter", 0) * node["Actual Loops"]
    return taken, read


@pytest.mark.parametrize(
    ("model", "filtered", "found", "rows"),
    [
        (Feedback, {"date__year": "2025"}, "about 100,000", REVIEWS),
        (Feedback, {"status__exact": "published"}, "about 33,000", REVIEWS),
        (Image, {"status": "ready"}, "about 36,000", IMAGES),
    ],
    ids=["reviews of the year", "reviews published", "images ready"],
)
def test_a_filter_that_keeps_most_of_a_large_table_counts_no_more_than_ten_thousand_rows(
    database: BaseDatabaseWrapper, model: type[Model], filtered: dict[str, str], found: str, rows: int
) -> None:
    text, statements = changelist_page(database, model, filtered)

    assert f"{found} results ( Show all )" in text
    assert f"Select all ({found}) {model._meta.verbose_name_plural}" in text
    counts = [s for s in statements if "COUNT(" in s.upper() and not s.startswith("EXPLAIN")]
    assert counts, statements
    for statement in counts:
        taken, read = rows_read(database, statement)
        assert taken <= EstimatedCountPaginator.count_up_to + 1, statement
        assert read < rows / 2, statement


def test_a_small_table_and_a_table_never_analysed_are_counted(database: BaseDatabaseWrapper) -> None:
    suite = connections["default"]
    connections["default"] = database
    try:
        products = Product.objects.all()
        assert table_estimate(products) == PRODUCTS
        assert table_estimate(products.filter(weight=1)) is None  # only a whole table is estimated
        assert table_estimate(Person.objects.all()) == 0  # analysed, and small: counted
        with database.cursor() as cursor:
            # As a table is before its first analysis (PostgreSQL 14 and later).
            cursor.execute("UPDATE pg_class SET reltuples = -1 WHERE oid = 'catalog_product'::regclass")
        try:
            paginator = EstimatedCountPaginator(products, 100)
            assert table_estimate(products) is None
            assert paginator.count == PRODUCTS
            assert not paginator.estimated
        finally:
            with database.cursor() as cursor:
                cursor.execute("ANALYZE catalog_product")
        assert table_estimate(products) == PRODUCTS
    finally:
        connections["default"] = suite


# Every table of the three lists that grows with the site.
LARGE_TABLES = ("catalog_feedback", "catalog_product", "uploads_image", "uploads_rendition")


def whole_table_reads(database: BaseDatabaseWrapper, statements: list[str]) -> list[str]:
    """The statements whose plan reads a large table whole (a sequential
    scan of it), each with its plan; every one of them is explained."""
    found = []
    with database.cursor() as cursor:
        for statement in statements:
            cursor.execute(f"EXPLAIN {statement}")
            shown = "\n".join(row[0] for row in cursor.fetchall())
            if any(f"Seq Scan on {table} " in shown for table in LARGE_TABLES):
                found.append(f"{statement}\n{shown}")
    return found


@pytest.mark.parametrize(("model", "told", "filtered", "found"), LARGE, ids=["reviews", "products", "images"])
def test_no_statement_of_the_list_of_a_large_table_reads_a_whole_table(
    database: BaseDatabaseWrapper, model: type[Model], told: str, filtered: dict[str, str], found: str
) -> None:
    text, statements = changelist_page(database, model, {})

    assert told in text
    assert len(statements) >= 2, statements
    assert not whole_table_reads(database, statements)


def test_the_drill_down_of_the_reviews_reads_the_months_and_days_from_the_index(
    database: BaseDatabaseWrapper,
) -> None:
    months = [dt.date(2025, m, 1).strftime("%B 2025") for m in range(1, 13)]
    # A year of reviews: the list starts with that year's months.
    text, statements = changelist_page(database, Feedback, {})
    year, in_year = changelist_page(database, Feedback, {"date__year": "2025"})
    march, in_march = changelist_page(database, Feedback, {"date__year": "2025", "date__month": "3"})

    assert " ".join(months) in text
    assert f"All dates {' '.join(months)}" in year
    assert "2025 March 1 March 2 March 3" in march
    assert "March 31" in march
    # The year holds every review: its page counts 10,001 of them, and tells the planner's estimate.
    assert "about 100,000 results ( Show all )" in year
    walks = [s for s in [*statements, *in_year, *in_march] if s.startswith("WITH RECURSIVE")]
    assert len(walks) == 3
    assert not whole_table_reads(database, walks)


@pytest.mark.parametrize("kind", ["year", "month", "day"])
def test_the_walk_of_the_dates_of_every_review_reads_the_index(
    database: BaseDatabaseWrapper, kind: str
) -> None:
    suite = connections["default"]
    connections["default"] = database
    try:
        reviews = Feedback.objects.all()
        with CaptureQueriesContext(database) as ran:
            found = walk_dates(reviews, "date", kind)
        assert found == list(reviews.dates("date", kind))
    finally:
        connections["default"] = suite
    assert len(found) == {"year": 1, "month": 12, "day": 365}[kind]
    assert not whole_table_reads(database, [query["sql"] for query in ran])
