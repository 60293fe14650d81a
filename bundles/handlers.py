"""Bundle job handlers: ids in, call the bundle services, report progress.

``BundlesConfig.ready()`` imports this module, which registers the kinds below. Handlers are
thin: they tolerate rows that vanished since the job was asked for, turn the services'
progress into ``ctx.set_progress`` and return a JSON-able result for the ledger.

Kinds and queues (queue names are part of the interface)::

    recompute          bundle-recompute            one bundle
    reindex            bundle-reindex              one, many or all bundles
    consistency_check  bundle-consistency-check    scope all / active / broken / ids
    maintenance        bundle-consistency-check    weekly: check all (fix), reindex, purge
    bulk_operation     bundle-bulk-operation       parent: one child job per batch
    bulk_batch         bundle-bulk-operation       child: one batch of a bulk operation
    fanout             bundle-bulk-operation       changed variants -> coalesced recompute batches
    recompute_batch    bundle-recompute            up to N bundles, set-based, coalesced
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from django.conf import settings
from django.core.mail import mail_admins

from bundles import bulk, services
from bundles.errors import BundleNotFound
from bundles.fanout import fanout_run
from bundles.kinds import BulkOperation, Kind
from bundles.selectors import bundle_ids_split
from jobs.context import JobContext
from jobs.maintenance.prune import prune_settled_jobs
from jobs.models import Job, JobState
from jobs.parents import AwaitChildren, await_children, ordered_children
from jobs.registry import job_kind
from jobs.services import retry_unfinished

logger = logging.getLogger(__name__)

Progress = Callable[[int, str], None]


class BulkBatchFailed(Exception):
    """A batch of a bulk operation hit errors and the operation does not continue on errors."""


def _progress_range(ctx: JobContext, start: int, end: int) -> Progress:
    """A progress callback mapping a step's 0–100 % onto ``start``–``end`` of the whole job."""

    def report(pct: int, message: str = "") -> None:
        ctx.set_progress(start + (end - start) * max(0, min(100, int(pct))) // 100, message)

    return report


def _dispatch_spawned(ctx: JobContext) -> bool:
    """Hand the jobs this one spawns to RQ? Not when it runs inline (``--sync``, no RQ job):
    the door that ran it runs them next, in this process (``jobs.cli.run_spawned_inline``)."""
    return ctx.rq_job is not None


# --- recompute ----------------------------------------------------------------------------------


@job_kind(
    Kind.RECOMPUTE, queue="bundle-recompute", max_attempts=3, backoff=(10, 60, 300), timeout=600
)
def recompute(
    ctx: JobContext,
    *,
    bundle_id: int,
    reason: str = "",
    force: bool = False,
    update_search: bool = True,
) -> dict:
    """Recompute one bundle's price and availability (and its search entry)."""
    try:
        return services.bundle_recompute(
            bundle_id=bundle_id,
            force=force,
            update_search=update_search,
            progress=ctx.set_progress,
        )
    except BundleNotFound:
        # Deleted since the job was asked for: nothing to do, and retrying would not help.
        ctx.set_progress(100, "Bundle no longer exists")
        return {"bundle_id": bundle_id, "skipped": True, "message": "Bundle no longer exists"}


# --- reindex ------------------------------------------------------------------------------------


@job_kind(Kind.REINDEX, queue="bundle-reindex", max_attempts=3, backoff=(10, 60, 300), timeout=1800)
def reindex(ctx: JobContext, *, bundle_ids: Sequence[int] | None = None) -> dict:
    """Rebuild the search entries of the given bundles (all when ``bundle_ids`` is None)."""
    if bundle_ids is None:
        count = services.bundles_reindex(bundle_ids=None, progress=ctx.set_progress)
        return {"reindexed": count, "scope": "all"}
    ids, missing = bundle_ids_split(bundle_ids)
    count = services.bundles_reindex(bundle_ids=ids, progress=ctx.set_progress) if ids else 0
    ctx.set_progress(100, f"{count} reindexed")
    return {"reindexed": count, "missing": missing}


# --- consistency check --------------------------------------------------------------------------


def _notify_admins(result: dict, *, scope, job: Job) -> None:
    lines = [
        f"The consistency check of {scope if isinstance(scope, str) else 'selected'} bundles "
        f"found problems (job {job.pk}).",
        "",
        f"checked {result.get('checked', 0)}, ok {result.get('ok', 0)}, "
        f"broken {result.get('broken', 0)}, fixed {result.get('fixed', 0)}, "
        f"errors {result.get('errors', 0)}",
        "",
    ]
    for bundle in result.get("broken_bundles", []):
        lines.append(f"- {bundle.get('name', '')} (id {bundle.get('id')}):")
        for reason in bundle.get("reasons", []):
            fixable = " (fixable)" if reason.get("fixable") else ""
            lines.append(f"    {reason.get('code')}: {reason.get('message')}{fixable}")
    mail_admins(
        subject=f"Bundle check: {result.get('broken', 0)} broken, {result.get('errors', 0)} errors",
        message="\n".join(lines),
    )


def _run_check(
    ctx: JobContext, *, scope, fix: bool, notify_admins: bool, progress: Progress
) -> dict:
    missing: list[int] = []
    if not isinstance(scope, str):
        scope, missing = bundle_ids_split(scope)
    if isinstance(scope, str) or scope:
        result = dict(services.bundles_check(scope=scope, fix=fix, progress=progress))
    else:
        result = {"checked": 0, "ok": 0, "broken": 0, "fixed": 0, "errors": 0}
        result["broken_bundles"] = []
    result["missing"] = missing
    result["notified"] = False
    if notify_admins and (result.get("broken") or result.get("errors")):
        # issue 24: with no ADMINS, mail_admins sends nothing; say so instead of "notified".
        if settings.ADMINS:
            _notify_admins(result, scope=scope, job=ctx.job)
            result["notified"] = True
        else:
            result["notify"] = "no ADMINS set"
    return result


@job_kind(
    Kind.CONSISTENCY_CHECK,
    queue="bundle-consistency-check",
    max_attempts=3,
    backoff=(30, 120, 600),
    timeout=3600,
)
def consistency_check(
    ctx: JobContext,
    *,
    scope: str | Sequence[int] = "all",
    fix: bool = False,
    notify_admins: bool = False,
) -> dict:
    """Validate bundles of a scope in chunks; optionally fix them and mail the site admins."""
    return _run_check(
        ctx, scope=scope, fix=fix, notify_admins=notify_admins, progress=ctx.set_progress
    )


# --- weekly maintenance ---------------------------------------------------------------------------


@job_kind(
    Kind.MAINTENANCE,
    queue="bundle-consistency-check",
    max_attempts=2,
    backoff=(300,),
    timeout=4 * 3600,
)
def maintenance(
    ctx: JobContext, *, retention_days: int | None = None, notify_admins: bool = True
) -> dict:
    """Weekly: check all bundles with fixing on, reindex all, purge old settled jobs."""
    check = _run_check(
        ctx,
        scope="all",
        fix=True,
        notify_admins=notify_admins,
        progress=_progress_range(ctx, 0, 60),
    )
    reindexed = services.bundles_reindex(bundle_ids=None, progress=_progress_range(ctx, 60, 95))
    purged, days = prune_settled_jobs(
        older_than_days=None if retention_days is None else int(retention_days)
    )
    ctx.set_progress(100, f"Purged {purged} jobs older than {days} days")
    return {"check": check, "reindexed": reindexed, "purged": purged, "retention_days": days}


# --- fan-out ------------------------------------------------------------------------------------


@job_kind(
    Kind.FANOUT, queue="bundle-bulk-operation", max_attempts=3, backoff=(5, 30, 120), timeout=900
)
def fanout(
    ctx: JobContext,
    *,
    variant_ids: Sequence[int] = (),
    reason: str = "",
    product_ids: Sequence[int] = (),
    reindex_only: bool = False,
) -> dict:
    """The bundles using the changed variants (or products' variants) go into coalesced
    recompute batches, or get their reindexes with ``reindex_only`` (renames): ``fanout_run``."""
    return fanout_run(
        job=ctx.job,
        variant_ids=variant_ids,
        product_ids=product_ids,
        reason=reason,
        reindex_only=reindex_only,
        dispatch_on_commit=_dispatch_spawned(ctx),
        progress=ctx.set_progress,
    )


# --- recompute batches --------------------------------------------------------------------------


@job_kind(
    Kind.RECOMPUTE_BATCH,
    queue="bundle-recompute",
    max_attempts=3,
    backoff=(10, 60, 300),
    timeout=1800,
)
def recompute_batch(ctx: JobContext, *, bundle_ids: Sequence[int], reason: str = "") -> dict:
    """Recompute a coalesced batch set-based; the result says what changed per bundle."""
    done = services.bundles_recompute(bundle_ids=bundle_ids, progress=ctx.set_progress)
    ctx.set_progress(100, f"{done['recomputed']} recomputed, {done['changed']} changed")
    return {
        "bundles": len(bundle_ids),
        "recomputed": done["recomputed"],
        "changed": done["changed"],
        "missing": done["missing"],
        "changes": done["changes"],
    }


# --- bulk operations ----------------------------------------------------------------------------


def _batch_recompute(ids: list[int], continue_on_error: bool, progress: Progress) -> dict:
    try:
        done = services.bundles_recompute(bundle_ids=ids, progress=progress)
        return {"ok": done.get("recomputed", 0), "errors": [], "details": done}
    except Exception:
        if not continue_on_error:
            raise
    # The batch call failed: go bundle by bundle so one bad bundle doesn't sink the rest.
    errors, ok = [], 0
    for index, bundle_id in enumerate(ids, 1):
        try:
            services.bundle_recompute(bundle_id=bundle_id)
            ok += 1
        except BundleNotFound:
            ok += 1
        except Exception as exc:  # reported per bundle, the batch goes on
            errors.append({"id": bundle_id, "message": f"{type(exc).__name__}: {exc}"})
        progress(index * 100 // len(ids), f"{index}/{len(ids)} bundles")
    return {"ok": ok, "errors": errors}


def _batch_reindex(ids: list[int], continue_on_error: bool, progress: Progress) -> dict:
    count = services.bundles_reindex(bundle_ids=ids, progress=progress)
    return {"ok": count, "errors": []}


def _batch_check(ids: list[int], continue_on_error: bool, progress: Progress) -> dict:
    result = services.bundles_check(scope=ids, fix=True, progress=progress)
    errors = [
        {"id": b["id"], "message": "; ".join(r.get("message", "") for r in b.get("reasons", []))}
        for b in result.get("broken_bundles", [])
    ]
    return {"ok": result.get("ok", 0) + result.get("fixed", 0), "errors": errors, "details": result}


def _batch_status(status: str) -> Callable[[list[int], bool, Progress], dict]:
    def run(ids: list[int], continue_on_error: bool, progress: Progress) -> dict:
        result = services.bundles_set_status(bundle_ids=ids, status=status)
        progress(100, f"{result.get('updated', 0)} set to {status}")
        return {"ok": result.get("updated", 0), "errors": list(result.get("errors", []))}

    return run


BATCH_OPERATIONS: dict[str, Callable[[list[int], bool, Progress], dict]] = {
    BulkOperation.RECOMPUTE: _batch_recompute,
    BulkOperation.REINDEX: _batch_reindex,
    BulkOperation.CHECK: _batch_check,
    BulkOperation.ACTIVATE: _batch_status("active"),
    BulkOperation.ARCHIVE: _batch_status("archived"),
}


@job_kind(
    Kind.BULK_BATCH, queue="bundle-bulk-operation", max_attempts=2, backoff=(5,), timeout=1800
)
def bulk_batch(
    ctx: JobContext,
    *,
    operation: str,
    bundle_ids: Sequence[int],
    continue_on_error: bool = True,
    batch: int = 1,
    batches: int = 1,
) -> dict:
    """One batch of a bulk operation (a child of the ``bulk_operation`` job)."""
    if operation == BulkOperation.RECOMPUTE:
        # The engine skips and reports vanished bundles itself: no separate existence check.
        ids = [int(i) for i in bundle_ids]
        outcome = _batch_recompute(ids, continue_on_error, ctx.set_progress)
        missing = outcome.get("details", {}).get("missing", [])
        ids = [i for i in ids if i not in set(missing)] if missing else ids
    else:
        ids, missing = bundle_ids_split(bundle_ids)
        outcome = (
            BATCH_OPERATIONS[operation](ids, continue_on_error, ctx.set_progress)
            if ids
            else {"ok": 0, "errors": []}
        )
    result = {
        "operation": operation,
        "batch": batch,
        "batches": batches,
        "bundles": len(ids),
        "missing": missing,
        **outcome,
    }
    if outcome["errors"] and not continue_on_error:
        shown = "; ".join(f"#{e.get('id')}: {e.get('message')}" for e in outcome["errors"][:5])
        raise BulkBatchFailed(f"{len(outcome['errors'])} bundle(s) failed: {shown}")
    return result


def _summarize(parent: Job) -> dict:
    """The bulk result from its batches, read once, streamed: only the fields it needs."""
    ok = batches_count = 0
    errors: list[dict] = []
    failed_batches: list[dict] = []
    rows = (
        ordered_children(parent.pk)
        .filter(kind=Kind.BULK_BATCH)
        .values_list("pk", "state", "payload__batch", "result__ok", "result__errors", "errors")
    )
    for pk, state, batch, batch_ok, batch_errors, attempt_errors in rows.iterator(2000):
        batches_count += 1
        ok += int(batch_ok or 0)
        errors.extend(batch_errors or [])
        if state != JobState.COMPLETED:
            message = attempt_errors[-1]["message"] if attempt_errors else state
            failed_batches.append({"batch": batch, "job": str(pk), "message": message})
    return {
        "operation": parent.payload.get("operation", ""),
        "batches": batches_count,
        "completed_batches": batches_count - len(failed_batches),
        "failed_batches": failed_batches,
        "ok": ok,
        "errors": errors,
    }


@job_kind(
    Kind.BULK_OPERATION,
    queue="bundle-bulk-operation",
    max_attempts=1,
    backoff=(),
    timeout=6 * 3600,
    summarize=_summarize,
)
def bulk_operation(
    ctx: JobContext,
    *,
    operation: str,
    bundle_ids: Sequence[int],
    batch_size: int = bulk.DEFAULT_BULK_BATCH_SIZE,
    continue_on_error: bool = True,
) -> AwaitChildren:
    """Parent of a bulk operation: one child job per batch; settles when every child has.

    The children were recorded with the parent (``bulk.bundles_bulk_enqueue``) and go to
    RQ like any job, so several workers share them. The parent holds no worker while they run:
    it returns ``await_children()`` and the runner settles it when its last batch
    settles (``jobs.parents``), its progress the batches' combined progress and its result
    :func:`_summarize`. A failed batch is run again only when the parent itself is retried.
    """
    if operation not in BATCH_OPERATIONS:
        raise ValueError(f"Unknown bulk operation {operation!r}")
    if ctx.job.attempts > 1:  # a re-run (retry): the batches that did not complete run again
        retry_unfinished(ctx.job)
    return await_children()
