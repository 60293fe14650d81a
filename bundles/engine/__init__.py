"""The one evaluation engine: every recompute, check and reindex of bundles, one bundle
included (a batch of one).

A batch reads its bundles and their component aggregates in two or three queries
(``rows``), applies the pure rules of ``pricing`` and ``integrity`` to plain values
(``evaluate``), decides what differs (``plan``), creates missing shells and entries
(``create``) and writes only what changed, in bulk (``write``). ``batches`` holds the
recompute, check and reindex batches the services call. PostgreSQL and SQLite ≥ 3.33 only.
"""

from .batches import (
    CHECK_COUNTS,
    RecomputeBatch,
    bundle_issues,
    change_of,
    check_batch,
    recompute_batch,
    reindex_batch,
)
from .evaluate import Outcome, evaluate_batch
from .sql import UnsupportedDatabase

__all__ = [
    "CHECK_COUNTS",
    "Outcome",
    "RecomputeBatch",
    "UnsupportedDatabase",
    "bundle_issues",
    "change_of",
    "check_batch",
    "evaluate_batch",
    "recompute_batch",
    "reindex_batch",
]
