"""A variant change, from the request to the recompute batches: the fan-out, in one place.

Asking (every door that learns of changed variants: signals, ``variant_soft_delete``, feeds,
commands): ``variants_changed`` / ``products_renamed`` put the ids into a fan-out job. The open
fan-out absorbs every change until a worker starts it (after a short debounce), so a burst of
saves makes one fan-out. The request never looks for bundles: that is the job's work.

Running (the ``fanout`` handler calls ``fanout_run``): find the bundles that use the variants,
put them into coalesced recompute batches (``bundles_recompute_coalesced``), or ask for one
reindex per bundle when only names changed. The batches are the fan-out's children; run inline
(``--sync``) they are left undispatched and the door runs them next (``jobs.cli``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import transaction

from bundles.kinds import Kind
from bundles.models import Bundle
from bundles.requests import bundle_reindex_enqueue
from bundles.selectors import bundle_ids_using_products, bundle_ids_using_variants
from jobs.enqueue import dispatch, enqueue, enqueue_coalesced
from jobs.models import Job
from jobs.target_types import Target

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

Progress = Callable[[int, str], None]

# A new fan-out waits this long before a worker may start it, so a burst of saves of the same
# variants merges into it (dedup only merges into jobs that have not started). The worker that
# takes it waits out the window (``dispatch(debounce=...)``), so it costs exactly this much.
DEFAULT_FANOUT_DEBOUNCE_SECONDS = 1
# An open fan-out absorbs at most this many variants (``BUNDLES_FANOUT_MAX_VARIANTS``).
DEFAULT_FANOUT_MAX_VARIANTS = 10_000
# A recompute batch holds at most this many bundles (``BUNDLES_RECOMPUTE_BATCH_SIZE``).
DEFAULT_RECOMPUTE_BATCH_SIZE = 500
FANOUT_KEY = "fanout:variants:open"
RECOMPUTE_BATCH_KEY = "recompute_batch:open"
# How many reindexes a renames' fan-out asks for per transaction (and per progress step).
REINDEX_CHUNK = 200


def recompute_batch_size() -> int:
    return int(getattr(settings, "BUNDLES_RECOMPUTE_BATCH_SIZE", DEFAULT_RECOMPUTE_BATCH_SIZE))


def fanout_max_variants() -> int:
    return int(getattr(settings, "BUNDLES_FANOUT_MAX_VARIANTS", DEFAULT_FANOUT_MAX_VARIANTS))


def fanout_debounce_seconds() -> float:
    return float(
        getattr(settings, "BUNDLES_FANOUT_DEBOUNCE_SECONDS", DEFAULT_FANOUT_DEBOUNCE_SECONDS)
    )


# --- asking -----------------------------------------------------------------------------------


def fanout_dedup_key(what: str, ids: Sequence[int]) -> str:
    """``fanout:variant:7`` for one id; ``fanout:variants:<digest>`` for several (a dedup key
    has a bounded length, and the same ids in any order are the same request)."""
    if len(ids) == 1:
        return f"fanout:{what}:{ids[0]}"
    digest = hashlib.sha1(",".join(map(str, sorted(ids))).encode(), usedforsecurity=False)
    return f"fanout:{what}s:{digest.hexdigest()[:20]}"


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


def _enqueue_renames(
    *,
    payload: dict,
    trigger: str,
    reason: str,
    requested_by: AbstractBaseUser | None,
    target: Target,
    dedup_key: str,
    dispatch_on_commit: bool,
) -> Job:
    """A reindex-only fan-out, deduplicated on its ids and handed to RQ after the debounce."""
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
    requested_by: AbstractBaseUser | None = None,
    label: str | None = None,
    reindex_only: bool = False,
    dispatch_on_commit: bool = True,
) -> list[Job]:
    """Tell the bundles that these variants changed (signals, services, imports).

    Puts the ids into fan-out jobs (usually one: the ids join the open fan-out while it has
    room under ``BUNDLES_FANOUT_MAX_VARIANTS``, or the request's own size if bigger; the rest
    opens another), each of which finds the bundles using its variants and fills their
    recompute batches — or asks only for their reindexes with ``reindex_only`` (a renamed
    variant or a new SKU changes what search shows, not prices). A new fan-out is handed to
    RQ only after ``BUNDLES_FANOUT_DEBOUNCE_SECONDS`` (default 1), so a burst of saves makes a
    handful of fan-outs. Returns every fan-out the call filled, in order (none when there is
    nothing to tell): a ``--sync`` caller runs them all.
    """
    ids = sorted({int(i) for i in variant_ids})
    if not ids:
        return []
    if not reindex_only:
        return enqueue_coalesced(
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
    target = _ids_target("variant", ids, label)
    return [
        _enqueue_renames(
            payload={"variant_ids": ids, "reason": reason, "reindex_only": True},
            trigger=trigger,
            reason=reason,
            requested_by=requested_by,
            target=target,
            dedup_key=fanout_dedup_key("variant", ids),
            dispatch_on_commit=dispatch_on_commit,
        )
    ]


def _ids_target(target_type: str, ids: list[int], label: str | None) -> Target:
    """One object by its label ("Variant #7" without one), several by their count."""
    if len(ids) == 1:
        return Target(target_type, str(ids[0]), label or f"{target_type.title()} #{ids[0]}")
    return Target(target_type, "", f"{len(ids)} {target_type}s")


def products_renamed(
    *,
    product_ids: Sequence[int],
    trigger: str = "command",
    reason: str = "",
    requested_by: AbstractBaseUser | None = None,
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
    target = _ids_target("product", ids, label)
    return _enqueue_renames(
        payload={"variant_ids": [], "product_ids": ids, "reason": reason, "reindex_only": True},
        trigger=trigger,
        reason=reason,
        requested_by=requested_by,
        target=target,
        dedup_key=fanout_dedup_key("product", ids),
        dispatch_on_commit=dispatch_on_commit,
    )


def bundles_recompute_coalesced(
    *,
    bundle_ids: Sequence[int],
    trigger: str,
    reason: str = "",
    requested_by: AbstractBaseUser | None = None,
    dispatch_on_commit: bool = True,
    parent: Job | None = None,
) -> list[Job]:
    """Recompute these bundles in coalesced batch jobs of up to ``BUNDLES_RECOMPUTE_BATCH_SIZE``.

    The ids join the pending batch while it has not started (a burst of changes fills one
    job), and the rest open new batches; a batch that is already running is never added to, so
    a change during its run gets a batch of its own. No existence check (the handler skips
    bundles that vanished). Returns the batches used.
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


# --- running ----------------------------------------------------------------------------------


def fanout_run(
    *,
    job: Job,
    variant_ids: Sequence[int] = (),
    product_ids: Sequence[int] = (),
    reason: str = "",
    reindex_only: bool = False,
    dispatch_on_commit: bool = True,
    progress: Progress,
) -> dict:
    """The fan-out job's work: the bundles using these variants (or products' variants) go
    into recompute batches, or get a reindex each with ``reindex_only``; the new jobs are
    ``job``'s children. Returns the ledger result."""
    bundle_ids = sorted(
        set(bundle_ids_using_variants(variant_ids=variant_ids))
        | set(bundle_ids_using_products(product_ids=product_ids))
    )
    changed = [f"variant(s) {_few(variant_ids)}"] if variant_ids else []
    changed += [f"product(s) {_few(product_ids)}"] if product_ids else []
    why = (reason or f"{' and '.join(changed).capitalize()} changed")[:255]
    result: dict = {"variant_ids": list(variant_ids), "bundles": len(bundle_ids)}
    if product_ids:
        result["product_ids"] = list(product_ids)
    place = _reindexes_place if reindex_only else _batches_place
    return result | place(
        job, bundle_ids, why=why, dispatch_on_commit=dispatch_on_commit, progress=progress
    )


def _few(ids: Sequence[int], shown: int = 10) -> str:
    """ "1, 2, 3" — or the first ``shown`` and "+N more", so a feed's reason stays short."""
    ids = list(ids)
    more = f" (+{len(ids) - shown} more)" if len(ids) > shown else ""
    return ", ".join(map(str, ids[:shown])) + more


def _batches_place(
    job: Job, bundle_ids: list[int], *, why: str, dispatch_on_commit: bool, progress: Progress
) -> dict:
    """One transaction per batch's worth, so the first batch reaches RQ while the rest are
    still being placed."""
    size, total = recompute_batch_size(), len(bundle_ids)
    placed: list[Job] = []
    for start in range(0, total, size):
        with transaction.atomic():
            for batch in bundles_recompute_coalesced(
                bundle_ids=bundle_ids[start : start + size],
                trigger=job.trigger,
                reason=why,
                requested_by=job.requested_by,
                dispatch_on_commit=dispatch_on_commit,
                parent=job,
            ):
                if batch not in placed:
                    placed.append(batch)
        done = min(start + size, total)
        progress(done * 100 // total, f"{done}/{total} bundles")
    return {"batches": [str(batch.pk) for batch in placed]}


def _reindexes_place(
    job: Job, bundle_ids: list[int], *, why: str, dispatch_on_commit: bool, progress: Progress
) -> dict:
    """Renames: one deduplicated reindex per bundle (search shows names, prices are kept)."""
    names = dict(Bundle.objects.filter(pk__in=bundle_ids).values_list("pk", "name"))
    created = merged = 0
    total = len(bundle_ids)
    for start in range(0, total, REINDEX_CHUNK):
        # One transaction per chunk: its jobs reach RQ together when it commits.
        with transaction.atomic():
            for bundle_id in bundle_ids[start : start + REINDEX_CHUNK]:
                reindex = bundle_reindex_enqueue(
                    bundle_id=bundle_id,
                    trigger=job.trigger,
                    reason=why,
                    label=names.get(bundle_id),
                    requested_by=job.requested_by,
                    parent=job,
                    dispatch_on_commit=dispatch_on_commit,
                )
                if reindex.parent_id == job.pk:
                    created += 1
                else:
                    merged += 1
        done = min(start + REINDEX_CHUNK, total)
        progress(done * 100 // total, f"{done}/{total} bundles")
    return {"reindexes_enqueued": created, "reindexes_merged": merged}
