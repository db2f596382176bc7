"""The configuration tables and the code agree: every environment variable the
portal reads is in README.md's table, and every variable a table of README.md
or docs/deploy.md names is read somewhere."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = (ROOT / "README.md", ROOT / "docs" / "deploy.md")
APPS = ("portal", "core", "catalog", "uploads")
# Set by the server, not by whoever deploys: portal/wsgi.py asks it whether gunicorn runs.
SET_BY_SERVERS = {"SERVER_SOFTWARE"}
# `NAME` or `NAME=value` in a table cell.
VARIABLE = re.compile(r"`([A-Z][A-Z0-9_]*)(?:=[^`]*)?`")


def _read_name(node: ast.Call) -> str | None:
    """The variable a call reads: env.str("X"), env("X"), os.environ.get("X"), os.getenv("X")."""
    if not node.args or not isinstance(node.args[0], ast.Constant) or not isinstance(node.args[0].value, str):
        return None
    called = ast.unparse(node.func)
    reads = called in {"env", "os.environ.get", "os.getenv"} or called.startswith("env.")
    return node.args[0].value if reads else None


def code_reads() -> set[str]:
    names: set[str] = set()
    for app in APPS:
        for path in (ROOT / app).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
                if isinstance(node, ast.Call) and (name := _read_name(node)):
                    names.add(name)
                elif (
                    isinstance(node, ast.Subscript)
                    and isinstance(node.ctx, ast.Load)
                    and ast.unparse(node.value) == "os.environ"
                    and isinstance(node.slice, ast.Constant)
                    and isinstance(node.slice.value, str)
                ):
                    names.add(node.slice.value)
    return names


def makefile_reads() -> set[str]:
    """`$(NAME)` and `$${NAME:-default}`: what the make targets take from the environment."""
    text = (ROOT / "Makefile").read_text()
    return set(re.findall(r"\$(?:\(|\$\{)([A-Z][A-Z0-9_]*)", text))


def table_variables(path: Path, header: str | None = None) -> set[str]:
    """The names in the "Variable…" column of the tables of a Markdown file
    (only the table whose header line is `header`, if given)."""
    names: set[str] = set()
    column: int | None = None
    for line in path.read_text().splitlines():
        if not line.startswith("|"):
            column = None
            continue
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if column is None:
            if header is not None and line.strip() != header:
                column = -1  # another table: skipped to its end
                continue
            column = next((i for i, cell in enumerate(cells) if cell.startswith("Variable")), -1)
        elif column >= 0 and not set(cells[0]) <= {"-", " "}:
            names |= set(VARIABLE.findall(cells[column]))
    return names


README_TABLE = "| Variable | Example | Effect |"


def test_the_collector_finds_each_way_of_reading_a_variable() -> None:
    assert {"DATABASE_URL", "PORTAL_VAR_DIR", "PORTAL_ADMIN_USERNAME"} <= code_reads()
    assert {"WEB_CONCURRENCY", "CELERY_CONCURRENCY"} <= makefile_reads()
    assert "DATABASE_URL" in table_variables(ROOT / "README.md", README_TABLE)


def test_every_variable_the_code_reads_is_in_the_readme_table() -> None:
    missing = code_reads() - SET_BY_SERVERS - table_variables(ROOT / "README.md", README_TABLE)
    assert not missing, f"read by the code, missing from README.md's configuration table: {sorted(missing)}"


def test_every_variable_a_table_names_is_read_somewhere() -> None:
    read = code_reads() | makefile_reads()
    unread = {path.name: sorted(table_variables(path) - read) for path in DOCS}
    assert not any(unread.values()), f"named in a table, read nowhere: {unread}"


def test_the_readme_lists_every_variable_of_the_tiers_table() -> None:
    # docs/deploy.md says README.md lists each with an example.
    tiers = table_variables(ROOT / "docs" / "deploy.md", "| Variable | web | worker | beat |")
    assert tiers, "the tiers table of docs/deploy.md was not found"
    missing = tiers - table_variables(ROOT / "README.md", README_TABLE)
    assert not missing, f"in docs/deploy.md's tiers table, missing from README.md's: {sorted(missing)}"
