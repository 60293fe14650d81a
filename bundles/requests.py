"""Request functions: ask for bundle jobs. Validate the request, then call ``jobs.enqueue``.

Every door (signals, admin actions, GraphQL, management commands, schedules) goes through
these functions, so a recompute asked for from the admin is the same job as one asked for by a
signal: same payload, same dedup key, same target. Bad input raises a ``BundleError`` (or
``ValueError`` for malformed options) before anything is written.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import transaction

from bundles.errors import BundleError, BundleNotFound, InvalidScope
from bundles.kinds import BulkOperation, Kind
from bundles.models import Bundle
from bundles.selectors import (
    SCOPES,
    bundle_ids_for_scope,
    bundle_ids_matching,
    existing_bundle_ids,
)
from jobs.enqueue import dispatch, enqueue, enqueue_coalesced, enqueue_many
from jobs.maintenance.prune import check_retention
from jobs.models import Job
from jobs.request_registry import register_request
from jobs.targets import Target, TargetIds, register_target

if TYPE_CHECKING:
    from django.contrib.auth.models import User

BULK_OPERATIONS = tuple(BulkOperation)
MIN_BATCH_SIZE = 1
MAX_BATCH_SIZE = 1000
# A new fan-out waits this long before a worker may start it, so a burst of saves of the same
# variants merges into it (dedup only merges into jobs that have not started). The worker that
# takes it waits out the window (``dispatch(debounce=...)``), so it costs exactly this much.
DEFAULT_FANOUT_DEBOUNCE_SECONDS = 1


# A recompute batch holds at most this many bundles (``BUNDLES_RECOMPUTE_BATCH_SIZE``).
DEFAULT_RECOMPUTE_BATCH_SIZE = 500
# An open fan-out absorbs at most this many variants (``BUNDLES_FANOUT_MAX_VARIANTS``).
DEFAULT_FANOUT_MAX_VARIANTS = 10_000
RECOMPUTE_BATCH_KEY = "recompute_batch:open"
FANOUT_KEY = "fanout:variants:open"


# Bundles per child job of a bulk operation (``BUNDLES_BULK_BATCH_SIZE``): the engine's own
# batch, so a catalog-wide door costs what the engine does (a child's ledger work is ~1 % of it).
DEFAULT_BULK_BATCH_SIZE = 500


def bulk_batch_size() -> int:
    return int(getattr(settings, "BUNDLES_BULK_BATCH_SIZE", DEFAULT_BULK_BATCH_SIZE))


def recompute_batch_size() -> int:
    return int(getattr(settings, "BUNDLES_RECOMPUTE_BATCH_SIZE", DEFAULT_RECOMPUTE_BATCH_SIZE))


def fanout_max_variants() -> int:
    return int(getattr(settings, "BUNDLES_FANOUT_MAX_VARIANTS", DEFAULT_FANOUT_MAX_VARIANTS))


def fanout_debounce_seconds() -> float:
    return float(
        getattr(settings, "BUNDLES_FANOUT_DEBOUNCE_SECONDS", DEFAULT_FANOUT_DEBOUNCE_SECONDS)
    )


class InvalidJobOptions(BundleError, ValueError):
    """An option of a bundle job request is out of range or unknown."""

    code = "invalid_options"


def batch_size_checked(batch_size: object) -> int:
    """The batch size rule, in one place (every door calls this): a whole number in
    ``MIN_BATCH_SIZE``–``MAX_BATCH_SIZE``; else ``InvalidJobOptions`` naming the field."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int):
        raise InvalidJobOptions(
            f"Batch size must be a whole number, got {batch_size!r}.", field="batchSize"
        )
    if not MIN_BATCH_SIZE <= batch_size <= MAX_BATCH_SIZE:
        raise InvalidJobOptions(
            f"Batch size must be between {MIN_BATCH_SIZE} and {MAX_BATCH_SIZE}, got {batch_size}.",
            field="batchSize",
        )
    return batch_size


# --- dedup keys and payload merges ------------------------------------------------------------


def recompute_dedup_key(bundle_id: int) -> str:
    return f"recompute:{bundle_id}"


def _merge_recompute(old: dict, new: dict) -> dict:
    # The merged job must do everything either request asked for.
    merged = dict(old)
    merged["force"] = bool(old.get("force")) or bool(new.get("force"))
    merged["update_search"] = bool(old.get("update_search", True)) or bool(
        new.get("update_search", True)
    )
    reasons = [r for r in (old.get("reason", ""), new.get("reason", "")) if r]
    merged["reason"] = old.get("reason") or new.get("reason", "")
    if len(set(reasons)) > 1:
        merged["reason"] = f"{reasons[0]} (+ later changes)"
    return merged


def _merge_fanout(old: dict, new: dict) -> dict:
    merged = dict(old)
    for key in ("variant_ids", "product_ids"):
        ids = sorted(set(old.get(key) or []) | set(new.get(key) or []))
        if ids:
            merged[key] = ids
    # Reindex only if every merged request was a rename; a recompute reindexes anyway.
    if old.get("reindex_only") and new.get("reindex_only"):
        merged["reindex_only"] = True
    else:
        merged.pop("reindex_only", None)
    return merged


def _merge_check(old: dict, new: dict) -> dict:
    merged = dict(old)
    merged["fix"] = bool(old.get("fix")) or bool(new.get("fix"))
    merged["notify_admins"] = bool(old.get("notify_admins")) or bool(new.get("notify_admins"))
    return merged


def _bundle_target(bundle_id: int, label: str | None) -> Target:
    return Target("bundle", str(bundle_id), label or f"Bundle #{bundle_id}")


def _bundle_links(ids: Sequence[int]) -> TargetIds:
    """One link per bundle a job touches, so each bundle's page and filter find the job."""
    return TargetIds("bundle", ids)


# --- single bundle ----------------------------------------------------------------------------


def bundle_recompute_enqueue(
    *,
    bundle_id: int,
    trigger: str,
    reason: str = "",
    force: bool = False,
    update_search: bool = True,
    requested_by: User | None = None,
    label: str | None = None,
    parent: Job | None = None,
    dispatch_on_commit: bool = True,
) -> Job:
    """Ask for one bundle's recompute; merges into a pending recompute of the same bundle.

    No existence check: signals call this for bundles they just saw, and the handler treats a
    bundle that vanished meanwhile as done. Doors taking ids from people validate first
    (``bundle_recompute_request``).
    """
    return enqueue(
        Kind.RECOMPUTE,
        payload={
            "bundle_id": int(bundle_id),
            "reason": reason,
            "force": bool(force),
            "update_search": bool(update_search),
        },
        trigger=trigger,
        reason=reason,
        requested_by=requested_by,
        target=_bundle_target(bundle_id, label),
        dedup_key=recompute_dedup_key(bundle_id),
        merge=_merge_recompute,
        parent=parent,
        dispatch_on_commit=dispatch_on_commit,
    )


def bundle_recompute_request(
    *,
    bundle_id: int,
    trigger: str,
    reason: str = "",
    force: bool = False,
    update_search: bool = True,
    requested_by: User | None = None,
    dispatch_on_commit: bool = True,
) -> Job:
    """Like ``bundle_recompute_enqueue`` for ids typed by people: unknown id → BundleNotFound."""
    bundle = Bundle.objects.filter(pk=bundle_id).only("pk", "name").first()
    if bundle is None:
        raise BundleNotFound([int(bundle_id)])
    return bundle_recompute_enqueue(
        bundle_id=bundle.pk,
        trigger=trigger,
        reason=reason,
        force=force,
        update_search=update_search,
        requested_by=requested_by,
        label=bundle.name,
        dispatch_on_commit=dispatch_on_commit,
    )


def bundles_recompute_coalesced(
    *,
    bundle_ids: Sequence[int],
    trigger: str,
    reason: str = "",
    requested_by: User | None = None,
    dispatch_on_commit: bool = True,
    parent: Job | None = None,
) -> list[Job]:
    """Recompute these bundles in coalesced batch jobs of up to ``BUNDLES_RECOMPUTE_BATCH_SIZE``.

    What changes flow into (fan-outs, feeds): the ids join the pending batch while it has not
    started (a burst of changes fills one job), and the rest open new batches; a batch that is
    already running is never added to, so a change during its run gets a batch of its own.
    No existence check (the handler skips bundles that vanished). Returns the batches used.
    """
    ids = sorted({int(i) for i in bundle_ids})
    if not ids:
        return []
    return enqueue_coalesced(
        Kind.RECOMPUTE_BATCH,
        key=RECOMPUTE_BATCH_KEY,
        ids_field="bundle_ids",
        ids=ids,
        capacity=recompute_batch_size(),
        payload={"reason": reason},
        trigger=trigger,
        reason=reason,
        requested_by=requested_by,
        target_type="bundle",
        label=lambda count: f"Recompute {count} bundle{'s' if count != 1 else ''}",
        dispatch_on_commit=dispatch_on_commit,
        parent=parent,  # a new batch is listed under the fan-out that opened it
    )


# --- reindex / check --------------------------------------------------------------------------


def bundle_reindex_enqueue(
    *,
    bundle_id: int,
    trigger: str,
    reason: str = "",
    requested_by: User | None = None,
    label: str | None = None,
    parent: Job | None = None,
    dispatch_on_commit: bool = True,
) -> Job:
    """Reindex one bundle (no existence check, like ``bundle_recompute_enqueue``)."""
    return enqueue(
        Kind.REINDEX,
        payload={"bundle_ids": [int(bundle_id)]},
        trigger=trigger,
        reason=reason,
        requested_by=requested_by,
        target=_bundle_target(bundle_id, label),
        dedup_key=f"reindex:{bundle_id}",
        parent=parent,
        dispatch_on_commit=dispatch_on_commit,
    )


def bundles_reindex_enqueue(
    *,
    bundle_ids: Sequence[int] | None,
    trigger: str,
    reason: str = "",
    requested_by: User | None = None,
    dispatch_on_commit: bool = True,
) -> Job:
    """Reindex the given bundles (``None`` = all). Unknown ids → BundleNotFound, no job."""
    if bundle_ids is None:
        payload: dict = {"bundle_ids": None}
        target = Target("bundle", "", "All bundles")
        dedup_key: str | None = "reindex:all"
    else:
        ids = existing_bundle_ids(bundle_ids)
        if not ids:
            raise InvalidJobOptions("No bundles selected to reindex.")
        payload = {"bundle_ids": ids}
        if len(ids) == 1:
            name = Bundle.objects.filter(pk=ids[0]).values_list("name", flat=True).first()
            target = _bundle_target(ids[0], name)
            dedup_key = f"reindex:{ids[0]}"
        else:
            target = Target("bundle", "", f"{len(ids)} bundles")
            dedup_key = None
    return enqueue(
        Kind.REINDEX,
        payload=payload,
        trigger=trigger,
        reason=reason,
        requested_by=requested_by,
        target=target,
        targets=_bundle_links(payload["bundle_ids"] or ()),
        dedup_key=dedup_key,
        dispatch_on_commit=dispatch_on_commit,
    )


def bundles_check_enqueue(
    *,
    scope: str | Sequence[int],
    fix: bool = False,
    notify_admins: bool = False,
    trigger: str,
    reason: str = "",
    requested_by: User | None = None,
    dispatch_on_commit: bool = True,
) -> Job:
    """Consistency check of a scope (all / active / broken) or a list of bundle ids.

    The scope is validated now (``InvalidScope``, ``BundleNotFound``) so a typo never becomes
    a job. Named scopes dedup: a burst of requests for the same check makes one job.
    """
    # Validation only: the job resolves the scope when it runs.
    if isinstance(scope, str):
        if scope not in SCOPES:
            raise InvalidScope(scope)
    else:
        bundle_ids_for_scope(scope=scope)
    if isinstance(scope, str):
        payload: dict = {"scope": scope, "fix": bool(fix), "notify_admins": bool(notify_admins)}
        target = Target("scope", scope, f"{scope.capitalize()} bundles")
        dedup_key: str | None = f"check:{scope}:{'fix' if fix else 'nofix'}"
    else:
        ids = list(dict.fromkeys(int(i) for i in scope))
        if not ids:
            raise InvalidJobOptions("No bundles selected to check.")
        payload = {"scope": ids, "fix": bool(fix), "notify_admins": bool(notify_admins)}
        target = (
            _bundle_target(ids[0], None)
            if len(ids) == 1
            else Target("bundle", "", f"{len(ids)} bundles")
        )
        dedup_key = None
    return enqueue(
        Kind.CONSISTENCY_CHECK,
        payload=payload,
        trigger=trigger,
        reason=reason,
        requested_by=requested_by,
        target=target,
        targets=_bundle_links(payload["scope"] if not isinstance(scope, str) else ()),
        dedup_key=dedup_key,
        merge=_merge_check,
        dispatch_on_commit=dispatch_on_commit,
    )


# --- bulk -------------------------------------------------------------------------------------


def bundles_bulk_enqueue(
    *,
    operation: str,
    bundle_ids: Sequence[int],
    batch_size: int | None = None,
    continue_on_error: bool = True,
    trigger: str,
    reason: str = "",
    requested_by: User | None = None,
    dispatch_on_commit: bool = True,
) -> Job:
    """One parent job and, in the same transaction, its child jobs, one per batch of
    ``batch_size`` (default ``BUNDLES_BULK_BATCH_SIZE``, 500); returns the parent
    (``bulk_batch_jobs(parent=...)`` gives the children).

    The children exist from the start, so every door can name them at once; they go to RQ
    with the parent on commit (the parent runs any that no worker has started yet).

    Raises ``InvalidJobOptions`` for an unknown operation, a batch size outside 1–1000 or an
    empty selection, and ``BundleNotFound`` naming every unknown id; nothing is created then.
    """
    if operation not in BULK_OPERATIONS:
        raise InvalidJobOptions(
            f"Unknown bulk operation {operation!r} (expected one of {', '.join(BULK_OPERATIONS)})."
        )
    batch_size = batch_size_checked(bulk_batch_size() if batch_size is None else batch_size)
    ids = existing_bundle_ids(bundle_ids)
    if not ids:
        raise InvalidJobOptions("No bundles selected.")
    batches = -(-len(ids) // batch_size)
    with transaction.atomic():  # parent and children, or neither
        parent = enqueue(
            Kind.BULK_OPERATION,
            payload={
                "operation": operation,
                "bundle_ids": ids,
                "batch_size": batch_size,
                "continue_on_error": bool(continue_on_error),
            },
            trigger=trigger,
            reason=reason or f"Bulk {operation} of {len(ids)} bundles in {batches} batches",
            requested_by=requested_by,
            # Its batches link every bundle (one link per bundle and batch, not two).
            target=Target("bundle", "", f"{operation.capitalize()} {len(ids)} bundles"),
            dispatch_on_commit=dispatch_on_commit,
        )
        bulk_batches_enqueue(parent=parent, dispatch_on_commit=dispatch_on_commit)
    return parent


def bulk_batches_enqueue(*, parent: Job, dispatch_on_commit: bool = True) -> list[Job]:
    """The child jobs of a bulk parent, one per batch of its payload, in batch order.

    Called by ``bundles_bulk_enqueue``; the parent's handler calls it too for a parent recorded
    without children (by a version that made them only when the parent ran).
    """
    operation = parent.payload["operation"]
    ids = [int(i) for i in parent.payload["bundle_ids"]]
    size = int(parent.payload.get("batch_size") or bulk_batch_size())
    chunks = [ids[i : i + size] for i in range(0, len(ids), size)]
    total = len(chunks)
    payloads = [
        {
            "operation": operation,
            "bundle_ids": chunk,
            "continue_on_error": bool(parent.payload.get("continue_on_error", True)),
            "batch": number,
            "batches": total,
        }
        for number, chunk in enumerate(chunks, 1)
    ]
    return enqueue_many(
        Kind.BULK_BATCH,
        payloads=payloads,
        trigger=parent.trigger,
        reason_for=lambda index, _payload: f"Batch {index + 1}/{total} of bulk {operation}",
        requested_by=parent.requested_by,
        targets=[
            Target("bundle", "", f"{operation.capitalize()} batch {number}/{total}")
            for number in range(1, total + 1)
        ],
        links=[_bundle_links(chunk) for chunk in chunks],
        parent=parent,
        dispatch_on_commit=dispatch_on_commit,
    )


# --- variants ---------------------------------------------------------------------------------


def variant_fanout_dedup_key(variant_ids: Sequence[int]) -> str:
    if len(variant_ids) == 1:
        return f"fanout:variant:{variant_ids[0]}"
    digest = hashlib.sha1(",".join(map(str, variant_ids)).encode(), usedforsecurity=False)
    return f"fanout:variants:{digest.hexdigest()[:20]}"


def _enqueue_fanout(
    *,
    payload: dict,
    trigger: str,
    reason: str,
    requested_by: User | None,
    target: Target,
    dedup_key: str,
    dispatch_on_commit: bool,
) -> Job:
    job = enqueue(
        Kind.FANOUT,
        payload=payload,
        trigger=trigger,
        reason=reason,
        requested_by=requested_by,
        target=target,
        dedup_key=dedup_key,
        merge=_merge_fanout,
        dispatch_on_commit=False,  # dispatched below, debounced
    )
    if dispatch_on_commit and job.merged_count == 0:  # a new row; a merged one is on its way
        job_id, debounce = job.pk, fanout_debounce_seconds()
        transaction.on_commit(lambda: dispatch(job_id, debounce=debounce))
    return job


def variants_changed(
    *,
    variant_ids: Sequence[int],
    trigger: str = "command",
    reason: str = "",
    requested_by: User | None = None,
    label: str | None = None,
    reindex_only: bool = False,
    dispatch_on_commit: bool = True,
) -> list[Job]:
    """Tell the bundles that these variants changed (signals, imports, ``QuerySet.update``).

    Enqueues fan-out jobs (usually one: the ids join the open fan-out while it has room under
    ``BUNDLES_FANOUT_MAX_VARIANTS``, or the request's own size if bigger; the rest opens
    another), each of which finds the bundles using its variants and enqueues their recomputes — or
    only their reindexes with ``reindex_only`` (a renamed variant or a new SKU changes what
    search shows, not prices). Requests for the same variants merge while the
    fan-out has not started, and a new fan-out is handed to RQ only after
    ``BUNDLES_FANOUT_DEBOUNCE_SECONDS`` (default 1), so a burst of saves makes a handful of
    fan-outs rather than one per worker cycle. Returns every fan-out the call filled, in order
    (none when there is nothing to tell): a ``--sync`` caller runs them all.
    """
    ids = sorted({int(i) for i in variant_ids})
    if not ids:
        return []
    if not reindex_only:
        # One open fan-out absorbs every change until a worker starts it (after the debounce):
        # a burst of saves of different variants makes one fan-out, hence a few batches.
        jobs = enqueue_coalesced(
            Kind.FANOUT,
            key=FANOUT_KEY,
            ids_field="variant_ids",
            ids=ids,
            # One request is never split by the cap (only an open fan-out's growth is): split
            # fan-outs of one feed each recompute the bundles that use variants of both.
            capacity=max(fanout_max_variants(), len(ids)),
            payload={"reason": reason},
            trigger=trigger,
            reason=reason,
            requested_by=requested_by,
            target_type="variant",
            label=lambda count: (
                (label or f"Variant #{ids[0]}") if count == 1 else f"{count} variants"
            ),
            dispatch_on_commit=dispatch_on_commit,
            debounce=fanout_debounce_seconds(),
        )
        return list(jobs)
    if len(ids) == 1:
        target = Target("variant", str(ids[0]), label or f"Variant #{ids[0]}")
    else:
        target = Target("variant", "", f"{len(ids)} variants")
    payload: dict = {"variant_ids": ids, "reason": reason, "reindex_only": True}
    return [
        _enqueue_fanout(
            payload=payload,
            trigger=trigger,
            reason=reason,
            requested_by=requested_by,
            target=target,
            dedup_key=variant_fanout_dedup_key(ids),
            dispatch_on_commit=dispatch_on_commit,
        )
    ]


def products_renamed(
    *,
    product_ids: Sequence[int],
    trigger: str = "command",
    reason: str = "",
    requested_by: User | None = None,
    label: str | None = None,
    dispatch_on_commit: bool = True,
) -> Job | None:
    """Reindex the bundles using these products' variants (search shows product names).

    A fan-out job like ``variants_changed(reindex_only=True)``: the bundles are found in the
    job, never in the request. Returns None when there is nothing to tell.
    """
    ids = sorted({int(i) for i in product_ids})
    if not ids:
        return None
    if len(ids) == 1:
        target = Target("product", str(ids[0]), label or f"Product #{ids[0]}")
        dedup_key = f"fanout:product:{ids[0]}"
    else:
        target = Target("product", "", f"{len(ids)} products")
        digest = hashlib.sha1(",".join(map(str, ids)).encode(), usedforsecurity=False)
        dedup_key = f"fanout:products:{digest.hexdigest()[:20]}"
    return _enqueue_fanout(
        payload={"variant_ids": [], "product_ids": ids, "reason": reason, "reindex_only": True},
        trigger=trigger,
        reason=reason,
        requested_by=requested_by,
        target=target,
        dedup_key=dedup_key,
        dispatch_on_commit=dispatch_on_commit,
    )


def broken_check_enqueue(
    *, trigger: str, reason: str = "", requested_by: User | None = None
) -> Job:
    """The safety net after a component was deleted or disabled: check broken bundles, fix on.

    Deduped, so a burst of deletions makes one pending check.
    """
    return enqueue(
        Kind.CONSISTENCY_CHECK,
        payload={"scope": "broken", "fix": True, "notify_admins": False},
        trigger=trigger,
        reason=reason,
        requested_by=requested_by,
        target=Target("scope", "broken", "Broken bundles"),
        dedup_key="check:broken:fix",
        merge=_merge_check,
    )


def maintenance_enqueue(
    *,
    trigger: str,
    reason: str = "",
    requested_by: User | None = None,
    retention_days: int | None = None,
    notify_admins: bool = True,
) -> Job:
    """The weekly maintenance: check all bundles (fix on), reindex all, prune old jobs.

    Deduped, so a backlog (or "run now" pressed twice) makes one pending job.
    """
    payload: dict = {"notify_admins": bool(notify_admins)}
    if retention_days is not None:
        if isinstance(retention_days, bool) or not isinstance(retention_days, int):
            raise InvalidJobOptions("Retention days must be a whole number.", field="retentionDays")
        if retention_days < 0:
            raise InvalidJobOptions("Retention days must be 0 or more.", field="retentionDays")
        payload["retention_days"] = retention_days
    return enqueue(
        Kind.MAINTENANCE,
        payload=payload,
        trigger=trigger,
        reason=reason,
        requested_by=requested_by,
        target=Target("scope", "all", "All bundles"),
        dedup_key="maintenance",
    )


# --- what the jobs app learns from this module (it imports it in ``ready()``) ------------------

register_target(
    "bundle",
    label="Bundle",
    admin_url="admin:bundles_bundle_change",
    search=bundle_ids_matching,
    filter_argument="bundle_id",
)
register_target("variant", label="Variant", admin_url="admin:bundles_productvariant_change")
register_target("product", label="Product", admin_url="admin:bundles_product_change")
register_target("scope", label="Scope", numeric_ids=False)

# Schedules (``JOBS_SCHEDULES``) name these; every door asks through the same functions. Each
# declares the permission its work needs (a schedule's editor must hold it too) and checks a
# schedule's arguments when it is saved, so a typo is a form error, not a failed night.

CHANGE_BUNDLE = "bundles.change_bundle"


def _whole_ids(value: object) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(i, int) and not isinstance(i, bool) for i in value)
    )


def _check_flags(kwargs: dict, *names: str) -> None:
    for name in names:
        if not isinstance(kwargs.get(name, False), bool):
            raise InvalidJobOptions(f"{name} is true or false.", field=name)


def check_arguments(kwargs: dict) -> None:
    """``bundles.check``: scope is all / active / broken or a non-empty list of bundle ids."""
    scope = kwargs.get("scope")
    if not (isinstance(scope, str) and scope in SCOPES) and not _whole_ids(scope):
        raise InvalidScope(scope)
    _check_flags(kwargs, "fix", "notify_admins")


def maintenance_arguments(kwargs: dict) -> None:
    """``bundles.maintenance``: retention_days, when given, is at least the floor."""
    if kwargs.get("retention_days") is not None:
        check_retention(kwargs["retention_days"])
    _check_flags(kwargs, "notify_admins")


def reindex_arguments(kwargs: dict) -> None:
    """``bundles.reindex``: bundle_ids is null (all) or a non-empty list of ids."""
    ids = kwargs.get("bundle_ids")
    if ids is not None and not _whole_ids(ids):
        raise InvalidJobOptions("bundle_ids is null (all) or a list of bundle ids.")


register_request(
    "bundles.check",
    bundles_check_enqueue,
    permission=CHANGE_BUNDLE,  # with fix, it changes bundles
    validate=check_arguments,
    queue="bundle-consistency-check",
    kind=Kind.CONSISTENCY_CHECK,
)
register_request(
    "bundles.maintenance",
    maintenance_enqueue,
    permission=(CHANGE_BUNDLE, "jobs.delete_job"),  # fixes bundles, purges the ledger
    validate=maintenance_arguments,
    queue="bundle-consistency-check",
    kind=Kind.MAINTENANCE,
)
register_request(
    "bundles.reindex",
    bundles_reindex_enqueue,
    permission=CHANGE_BUNDLE,
    validate=reindex_arguments,
    queue="bundle-reindex",
    kind=Kind.REINDEX,
)
