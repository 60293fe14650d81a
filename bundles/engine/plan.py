"""Planning a batch's writes: which bundles, shells, shell products and search entries differ
from what their outcomes say, decided once for both databases."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

from .evaluate import Outcome, entry_body


@dataclass(slots=True)
class Writes:
    """What one batch writes (``plan``)."""

    changed: set[int] = field(default_factory=set)
    products: list[Outcome] = field(default_factory=list)  # shell product renamed or re-flagged
    stale: list[Outcome] = field(default_factory=list)  # bundle: status, reasons and values
    values_only: list[Outcome] = field(default_factory=list)  # bundle: values and times only
    touched: list[Outcome] = field(default_factory=list)  # recomputed, unchanged: only the time
    shells: list[tuple[Outcome, bool]] = field(default_factory=list)  # (bundle, relinked?)
    rewritten: list[tuple[Outcome, str]] = field(default_factory=list)  # entry text changed
    copied: list[tuple[Outcome, bool]] = field(default_factory=list)  # (bundle, status changed?)
    documents: list[int] = field(default_factory=list)  # bundles whose tsvector is refreshed


def plan(
    outcomes: Sequence[Outcome],
    *,
    index: bool,
    force: bool = False,
    created: Collection[int] = (),
) -> Writes:
    """Decide what to write. ``force`` rewrites every bundle, shell, shell product and entry
    even where equal; ``created``: bundles whose shell was just created or re-linked, which
    count as changed and are written in full."""
    w = Writes()
    for o in outcomes:
        r = o.row
        relink = force or r.sv_product_id != r.shell_product_id
        variant_differs = r.sv_product_id != r.shell_product_id or bool(o.variant_drift)
        if variant_differs or force:
            w.shells.append((o, relink))
        product_differs = r.sp_name != r.name or not r.sp_is_shell
        if product_differs or force:
            w.products.append(o)
        stale = o.stale()
        is_created = r.id in created
        if variant_differs or product_differs or stale or o.values_changed() or is_created:
            w.changed.add(r.id)
        if force or is_created or stale:
            w.stale.append(o)  # status and reasons written too
        elif r.id in w.changed:
            # status and reasons as they were: leave them (and SQLite's status index) alone
            w.values_only.append(o)
        else:
            w.touched.append(o)
        if not index:
            continue
        body = entry_body(r, o.words)
        # The tsvector depends on title, SKU and body only.
        if force or r.entry_title != r.name or r.entry_sku != r.sv_sku or r.entry_body != body:
            w.rewritten.append((o, body))
            w.documents.append(r.id)
        elif (
            r.entry_price != o.price_scaled
            or r.entry_availability != o.availability
            or r.entry_status != o.status
        ):
            w.copied.append((o, r.entry_status != o.status))
            if r.entry_document_missing:
                w.documents.append(r.id)
    return w
