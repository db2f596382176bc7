"""Fixtures of the catalog's tests: each test that reads YAML runs under both
YAML readers of ``catalog.formats``, so that neither falls behind."""

from __future__ import annotations

import inspect

import pytest

from catalog import formats

YAML_READERS = ("libyaml", "pure-python")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # A test that speaks of YAML anywhere (its code, its parameters) is one
    # that may read it.
    if "yaml" in inspect.getsource(metafunc.function).lower():
        metafunc.parametrize("yaml_reader", YAML_READERS, indirect=True)


@pytest.fixture(autouse=True)
def yaml_reader(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str | None:
    """The YAML reader the test runs under: libyaml, where PyYAML is built
    with it, or the pure-Python reader PyYAML falls back to without it."""
    reader: str | None = getattr(request, "param", None)
    if reader == "pure-python":
        monkeypatch.setattr(formats, "_CYamlLoader", None)
    elif reader == "libyaml" and formats._CYamlLoader is None:
        pytest.skip("PyYAML is built without libyaml")
    return reader
