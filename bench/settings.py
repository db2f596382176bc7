"""The portal's settings, plus the benchmarks' hand-written baseline views
(``bench/urls.py``) mounted beside the product's URLs. Nothing else differs:
figures are measured with production settings."""

from __future__ import annotations

from portal.settings import *  # noqa: F403 - the product's settings, unchanged

ROOT_URLCONF = "bench.urls"
