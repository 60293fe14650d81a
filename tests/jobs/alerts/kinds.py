"""A job kind for the alert tests: it fails or succeeds as its payload says."""

from __future__ import annotations

from jobs.registry import job_kind

QUEUE = "bundle-recompute"


@job_kind("alert_test_job", queue=QUEUE, max_attempts=1, backoff=(0,), timeout=30)
def alert_test_job(ctx, *, fail: bool = False) -> dict:
    """Fails on its only attempt when asked to (a supplier feed that is down)."""
    if fail:
        raise ConnectionError("the supplier feed is down")
    return {"ok": True}
