"""A job kind that fails two different ways, for the error-group tests (imported by them and
by worker subprocesses with ``run_worker --import``)."""

from __future__ import annotations

from jobs.registry import job_kind

QUEUE = "bundle-recompute"


class SupplierTimeout(ConnectionError):
    pass


def _call_supplier(n: int) -> None:
    # The message carries numbers and an address that differ per job: one group regardless.
    raise SupplierTimeout(f"supplier 10.0.0.{n % 250} timed out after {n} ms (conn 0x{n:x})")


def _lookup_variant(n: int) -> None:
    raise KeyError(f"variant {n}")


@job_kind("test_fails_two_ways", queue=QUEUE, max_attempts=1, backoff=(0,), timeout=30)
def fails_two_ways(ctx, *, n: int, how: str, succeed: bool = False) -> dict:
    """Fails with a supplier timeout or a missing variant, depending on ``how`` (unless
    ``succeed``: then it completes, so a retried group can be seen running again)."""
    if succeed:
        return {"n": n}
    if how == "timeout":
        _call_supplier(n)
    _lookup_variant(n)
    return {}
