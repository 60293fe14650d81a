"""Names the bundles app gives its jobs: job kinds and bulk operations (values are part of the
ledger and the API; StrEnum members compare equal to the plain strings stored in rows)."""

from __future__ import annotations

from enum import StrEnum


class Kind(StrEnum):
    RECOMPUTE = "recompute"  # one bundle, explicit requests
    RECOMPUTE_BATCH = "recompute_batch"  # up to N bundles, coalesced (fan-outs, feeds)
    REINDEX = "reindex"  # one, many or all bundles
    CONSISTENCY_CHECK = "consistency_check"  # scope all / active / broken / ids
    MAINTENANCE = "maintenance"  # weekly: check all (fix), reindex all, prune
    FANOUT = "fanout"  # changed variants -> their bundles' recomputes
    BULK_OPERATION = "bulk_operation"  # parent: one child job per batch
    BULK_BATCH = "bulk_batch"  # child: one batch of a bulk operation


class BulkOperation(StrEnum):
    RECOMPUTE = "recompute"
    REINDEX = "reindex"
    CHECK = "check"
    ACTIVATE = "activate"
    ARCHIVE = "archive"
