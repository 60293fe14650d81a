"""The engine's batches, each inside the caller's transaction: recompute, check (and fix),
reindex, and the read-only issues of one bundle. One bundle is a batch of one."""

from __future__ import annotations

import gc
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.utils import timezone

from .. import pricing
from ..integrity import Issue, shell_sku
from ..models import SearchEntry
from ..search import refresh_documents
from .create import create_missing_entries, create_missing_shells
from .evaluate import Outcome, entry_body, evaluate_batch
from .rows import load_aggregates, load_rows
from .sql import money_from_scaled, price_param, stamp
from .write import ENTRY_FIELDS, bulk_update, write


@contextmanager
def collector_paused() -> Iterator[None]:
    """Run a batch with CPython's cyclic garbage collector off (back on after, if it was on).

    A batch builds about ten container objects per bundle, all alive until its write: their
    allocations keep triggering collections that walk them, and everything older, again and
    again (a fifth of a 100,000-bundle recompute; more when a large result is still alive).
    They form no reference cycles: reference counting frees them when the batch ends.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _complete(
    outcomes: list[Outcome], *, index: bool, now: datetime, fixable_issues: bool
) -> tuple[list[Outcome], set[int]]:
    """Create the shells (and with ``index`` the search entries) these bundles lack, then read
    those bundles again; returns the outcomes to write and the ids whose shell was created."""
    incomplete = [o for o in outcomes if o.shell_missing or (index and o.row.entry_id is None)]
    if not incomplete:
        return outcomes, set()
    created = create_missing_shells([o for o in incomplete if o.shell_missing])
    if index:
        create_missing_entries([o for o in incomplete if o.row.entry_id is None])
    again = evaluate_batch(
        [o.row.id for o in incomplete], lock=False, now=now, fixable_issues=fixable_issues
    )
    fresh = {o.row.id: o for o in again}
    return [fresh.get(o.row.id, o) for o in outcomes], created


# --- recompute --------------------------------------------------------------------------------


@dataclass
class RecomputeBatch:
    found: list[int]
    changed: int
    # bundle id -> what changed, compactly: {"price": (old, new), "availability": (...), ...}
    changes: dict[int, dict] = field(default_factory=dict)
    outcomes: list[Outcome] = field(default_factory=list)  # as written, in id order


def _minor_text(price: Decimal | None, currency: str) -> str | None:
    return None if price is None else str(pricing.quantize_money(price, currency))


def change_of(
    *, old: tuple[Decimal | None, int, str], new: tuple[Decimal | None, int, str], currency: str
) -> dict:
    """The fields that differ between (price, availability, status) before and after, each as
    (old, new) (prices as text in the currency's minor unit); {} when nothing differs.

    Pairs are tuples, JSON arrays in a job's result: a tuple of plain values drops out of the
    garbage collector's lists, so a catalog's worth of changes is not walked by every collection.
    """
    out: dict = {}
    if old[0] != new[0]:  # equal amounts print the same; only differing ones are formatted
        old_price, new_price = _minor_text(old[0], currency), _minor_text(new[0], currency)
        if old_price != new_price:
            out["price"] = (old_price, new_price)
    if old[1] != new[1]:
        out["availability"] = (old[1], new[1])
    if old[2] != new[2]:
        out["status"] = (old[2], new[2])
    return out


def recompute_batch(
    ids: Sequence[int], *, update_search: bool, force: bool = False
) -> RecomputeBatch:
    """Recompute these bundles (rows locked): price, availability, status and reasons, shell,
    and with ``update_search`` the search entry. Only what differs is written; ``force``
    rewrites every row anyway."""
    with collector_paused():
        now = timezone.now()
        outcomes = evaluate_batch(ids, lock=True, now=now, fixable_issues=False)
        outcomes, created = _complete(outcomes, index=update_search, now=now, fixable_issues=False)
        changed = write(outcomes, now=now, index=update_search, force=force, created=created)
        changes = {}
        for o in outcomes:
            if o.row.id in changed:
                diff = change_of(
                    old=(
                        money_from_scaled(o.row.computed_price),
                        o.row.computed_availability,
                        o.row.status,
                    ),
                    new=(o.price, o.availability, o.status),
                    currency=o.row.currency,
                )
                if diff:
                    changes[o.row.id] = diff
        return RecomputeBatch(
            found=[o.row.id for o in outcomes],
            changed=len(changed),
            changes=changes,
            outcomes=outcomes,
        )


# --- check ------------------------------------------------------------------------------------

CHECK_COUNTS = ("checked", "ok", "broken", "fixed", "needs_fix", "errors")


def check_batch(ids: Sequence[int], *, fix: bool, result: dict) -> None:
    """Check these bundles, counting into ``result`` (``CHECK_COUNTS`` and ``broken_bundles``);
    with ``fix`` write what needs writing (drift, shells, a stale status)."""
    with collector_paused():
        now = timezone.now()
        outcomes = evaluate_batch(ids, lock=fix, now=now)
        to_fix = []
        for o in outcomes:
            needs_writing = bool(o.fixable) or o.stale()
            if o.unfixable:
                result["broken"] += 1
            elif needs_writing:
                result["fixed" if fix else "needs_fix"] += 1
            else:
                result["ok"] += 1
            remaining = o.unfixable if fix else o.issues
            if remaining:
                result["broken_bundles"].append(
                    {
                        "id": o.row.id,
                        "name": o.row.name,
                        "reasons": [i.as_dict() for i in remaining],
                    }
                )
            if fix and needs_writing:
                to_fix.append(o)
        if to_fix:
            to_fix, created = _complete(to_fix, index=True, now=now, fixable_issues=True)
            write(to_fix, now=now, index=True, created=created)
        result["checked"] += len(outcomes)


def bundle_issues(bundle_id: int, *, now: datetime | None = None) -> list[Issue] | None:
    """Every issue of one bundle, read only; None when there is no such bundle."""
    outcomes = evaluate_batch([bundle_id], lock=False, now=now or timezone.now())
    return outcomes[0].issues if outcomes else None


# --- reindex ----------------------------------------------------------------------------------


def reindex_batch(ids: Sequence[int]) -> int:
    """Rewrite the search entries of these bundles from their stored values (creating the
    missing ones); returns how many were written."""
    rows = load_rows(ids, lock=False)
    if not rows:
        return 0
    words = {i: a.words for i, a in load_aggregates([r.id for r in rows]).items()}
    at = stamp(timezone.now())
    new, updated = [], []
    for r in rows:
        # the shell variant's SKU when one is linked (``sv`` is a LEFT JOIN on it)
        sku = r.sv_sku if r.sv_sku is not None else shell_sku(r.id)
        body = entry_body(r, words.get(r.id, ""))
        price = money_from_scaled(r.computed_price)
        if r.entry_id is None:
            new.append(
                SearchEntry(
                    bundle_id=r.id,
                    title=r.name,
                    sku=sku,
                    body=body,
                    price=price,
                    availability=r.computed_availability,
                    status=r.status,
                )
            )
        else:
            updated.append(
                [
                    r.name,
                    sku,
                    body,
                    price_param(price),
                    r.computed_availability,
                    r.status,
                    at,
                    r.entry_id,
                ]
            )
    SearchEntry.objects.bulk_create(new)
    bulk_update(SearchEntry, ENTRY_FIELDS, updated)
    refresh_documents([r.id for r in rows])
    return len(rows)
