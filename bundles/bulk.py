"""Bulk operations: one parent job and a child job per batch of bundles, asked for together.

Every door that acts on a selection (admin actions, ``recompute_bundles`` ids or ``--all``,
``bulkRecomputeBundles``) calls ``bundles_bulk_enqueue``; the ``bulk_operation`` handler only
waits for the batches (``jobs.parents``), each ``bulk_batch`` runs one batch through a service.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import transaction
from django.utils.translation import ngettext

from bundles.errors import InvalidJobOptions
from bundles.kinds import BulkOperation, Kind
from bundles.requests import bundle_links
from bundles.selectors import existing_bundle_ids
from jobs.enqueue import enqueue, enqueue_many
from jobs.models import Job
from jobs.target_types import Target

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

BULK_OPERATIONS = tuple(BulkOperation)
MIN_BATCH_SIZE = 1
MAX_BATCH_SIZE = 1000
# Bundles per child job of a bulk operation (``BUNDLES_BULK_BATCH_SIZE``): the engine's own
# batch, so a catalog-wide door costs what the engine does (a child's ledger work is ~1 % of it).
DEFAULT_BULK_BATCH_SIZE = 500


def bulk_batch_size() -> int:
    return int(getattr(settings, "BUNDLES_BULK_BATCH_SIZE", DEFAULT_BULK_BATCH_SIZE))


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


def bundles_bulk_enqueue(
    *,
    operation: str,
    bundle_ids: Sequence[int],
    batch_size: int | None = None,
    continue_on_error: bool = True,
    trigger: str,
    reason: str = "",
    requested_by: AbstractBaseUser | None = None,
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
            reason=reason
            or f"Bulk {operation} of {_bundles(len(ids))} in {batches} "
            + ngettext("batch", "batches", batches),
            requested_by=requested_by,
            # Its batches link every bundle (one link per bundle and batch, not two).
            target=Target("bundle", "", f"{operation.capitalize()} {_bundles(len(ids))}"),
            dispatch_on_commit=dispatch_on_commit,
        )
        bulk_batches_enqueue(parent=parent, dispatch_on_commit=dispatch_on_commit)
    return parent


def bulk_batches_enqueue(*, parent: Job, dispatch_on_commit: bool = True) -> list[Job]:
    """The child jobs of a bulk parent, one per batch of its payload, in batch order.

    Called by ``bundles_bulk_enqueue``, in the transaction that records the parent.
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
        links=[bundle_links(chunk) for chunk in chunks],
        parent=parent,
        dispatch_on_commit=dispatch_on_commit,
    )


def _bundles(count: int) -> str:
    """ "1 bundle", "2 bundles"."""
    return f"{count} " + ngettext("bundle", "bundles", count)
