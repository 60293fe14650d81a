"""What every benchmark shares: its scratch surroundings and the check that it left the
catalog right.

* ``scratch_services(prefix)``: a throwaway SQLite file and a private Redis for the run.
  DATABASE_URL and REDIS_URL, when set, are used as they are (the database is migrated and gets
  rows, so never point it at one you care about).
* ``wrong_bundles(ids)``: how many of these bundles' stored values differ from a fresh
  evaluation (0 = every recompute the benchmark caused was applied).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager


def wrong_bundles(bundle_ids) -> int:
    """Bundles whose stored values differ from a fresh evaluation (0 = all right)."""
    from django.utils import timezone

    from bundles import engine

    bad = 0
    for start in range(0, len(bundle_ids), 2000):
        outcomes = engine.evaluate_batch(
            bundle_ids[start : start + 2000], lock=False, now=timezone.now()
        )
        bad += sum(1 for o in outcomes if o.values_changed() or o.stale())
    return bad


@contextmanager
def scratch_services(prefix: str) -> Iterator[None]:
    scratch = tempfile.mkdtemp(prefix=f"{prefix}-")
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{scratch}/bench.sqlite3")
    server = None
    if not os.environ.get("REDIS_URL"):
        from config.embedded_redis import start_embedded_redis

        server = start_embedded_redis()
        os.environ["REDIS_URL"] = server.url
    try:
        yield
    finally:
        if server is not None:
            server.stop()
