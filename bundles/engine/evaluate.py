"""Evaluating a batch: plain values from ``rows`` through the pure rules of ``pricing`` and
``integrity``, into one ``Outcome`` per bundle (what is wrong, what it should become)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from .. import integrity, pricing
from ..integrity import Issue
from .rows import (
    WORD_SEP,
    Aggregate,
    ComponentDetail,
    Row,
    load_aggregates,
    load_details,
    load_rows,
)
from .sql import (
    aware,
    money_from_scaled,
    require_supported_database,
    rule_value_from_scaled,
    scaled_from_money,
)


@dataclass(slots=True)
class Outcome:
    """One bundle as stored (``row``) and as the rules say it should be."""

    row: Row
    issues: list[Issue]
    price: Decimal | None
    availability: int
    no_saving: bool
    status: str
    status_before_broken: str
    broken_reasons: list[dict]
    words: str = ""
    unfixable: list[Issue] = field(default_factory=list)
    price_scaled: int | None = None
    variant_drift: list[str] = field(default_factory=list)

    @property
    def fixable(self) -> list[Issue]:
        return [i for i in self.issues if i.fixable]

    @property
    def shell_missing(self) -> bool:
        """Its shell product or variant must be created or re-linked before it is written."""
        return self.row.shell_product_id is None or self.row.shell_variant_id is None

    def stale(self) -> bool:
        """The stale rule (``integrity.status_is_stale``) over this row's stored values."""
        r = self.row
        stored = r.broken_reasons
        if isinstance(stored, str):  # SQLite hands JSON back as text; most bundles have none
            stored = json.loads(stored) if stored not in ("", "[]") else []
        return integrity.status_is_stale(
            stored=(r.status, r.status_before_broken, stored or []),
            evaluated=(self.status, self.status_before_broken, self.broken_reasons),
        )

    def values_changed(self) -> bool:
        """Price, availability or the no-saving flag differ from the stored ones."""
        r = self.row
        return (
            r.computed_price != self.price_scaled
            or r.computed_availability != self.availability
            or bool(r.no_saving) != self.no_saving
        )


def evaluate(
    row: Row,
    agg: Aggregate | None,
    details: list[ComponentDetail] | None,
    now: datetime,
    *,
    fixable_issues: bool = True,
) -> Outcome:
    """One bundle's outcome. Without ``fixable_issues`` the drift and shell issues (fixable,
    so they never change status or reasons) are not listed: a recompute writes them anyway."""
    n = agg.n if agg is not None else 0
    issues: list[Issue] = [] if n else integrity.no_components_issues(n)
    others: tuple[str, ...] = ()
    if details:  # only bundles with a suspect component have details
        for d in details:
            issues += integrity.component_issues(
                label=d.label,
                deleted=d.deleted,
                enabled=d.enabled,
                nested=d.nested,
                quantity=d.quantity,
            )
        others = tuple(sorted({d.currency for d in details if d.currency != row.currency}))
    result = pricing.price_from_aggregates(
        n_lines=n,
        other_currencies=others,
        raw_total=None if others or agg is None else money_from_scaled(agg.total),
        rule=row.pricing_rule,
        value=rule_value_from_scaled(row.rule_value),
        currency=row.currency,
    )
    if result.problem is not None:
        issues += integrity.price_issues(result, currency=row.currency)
    price = result.price
    price_scaled = scaled_from_money(price)
    availability = pricing.availability_from_aggregates(
        n_lines=n,
        # only a suspect component can be unusable, and suspects' details are loaded
        any_unusable=any(pricing.unusable(d.deleted, d.enabled, d.quantity) for d in details or ()),
        min_component=agg.min_available if agg is not None else 0,
        now=now,
        cap=row.availability_cap,
        valid_from=None if row.valid_from is None else aware(row.valid_from),
        valid_to=None if row.valid_to is None else aware(row.valid_to),
    )
    if fixable_issues:
        issues += integrity.drift_issues(
            stored_price=money_from_scaled(row.computed_price),
            price=price,
            stored_availability=row.computed_availability,
            availability=availability,
        )
    unfixable = [i for i in issues if not i.fixable] if issues else []
    status, before = integrity.status_after(row.status, row.status_before_broken, bool(unfixable))
    missing = row.shell_product_id is None or row.shell_variant_id is None
    variant_drift = [] if missing else _variant_drift(row, price_scaled or 0, availability, status)
    if missing or fixable_issues:
        drift = [] if missing else variant_drift + _product_drift(row)
        issues += integrity.shell_issues(missing=missing, drift=drift)
    return Outcome(
        row=row,
        issues=issues,
        price=price,
        availability=availability,
        no_saving=result.no_saving,
        status=status,
        status_before_broken=before,
        broken_reasons=[i.as_dict() for i in unfixable] if unfixable else [],
        words=agg.words if agg is not None else "",
        unfixable=unfixable,
        price_scaled=price_scaled,
        variant_drift=variant_drift,
    )


def _variant_drift(row: Row, price_scaled: int, availability: int, status: str) -> list[str]:
    """Shell variant fields that differ from what they should be, in the order messages
    name them."""
    drift = []
    if row.sv_name != row.name:
        drift.append("name")
    if row.sv_price != price_scaled:
        drift.append("price")
    if row.sv_currency != row.currency:
        drift.append("currency")
    if row.sv_stock != availability:
        drift.append("stock_on_hand")
    if row.sv_allocated != 0:
        drift.append("allocated")
    if bool(row.sv_enabled) != (status == integrity.ACTIVE):
        drift.append("enabled")
    if row.sv_deleted:
        drift.append("deleted_at")
    return drift


def _product_drift(row: Row) -> list[str]:
    drift = []
    if row.sv_product_id != row.shell_product_id:
        drift.append("product")
    if row.sp_name != row.name:
        drift.append("product name")
    if not row.sp_is_shell:
        drift.append("is_bundle_shell")
    return drift


def evaluate_batch(
    ids: Sequence[int], *, lock: bool, now: datetime, fixable_issues: bool = True
) -> list[Outcome]:
    """Evaluate these bundles (missing ids are left out), in id order: 2–3 queries."""
    require_supported_database()
    if not ids:
        return []
    rows = load_rows(ids, lock=lock)
    if not rows:
        return []
    aggregates = load_aggregates([r.id for r in rows])
    suspect = [r.id for r in rows if (a := aggregates.get(r.id)) is not None and a.n_suspect]
    details = load_details(suspect)
    return [
        evaluate(r, aggregates.get(r.id), details.get(r.id), now, fixable_issues=fixable_issues)
        for r in rows
    ]


def entry_body(row: Row, words: str) -> str:
    """A search entry's body: the bundle's name and slug, then each component's name, SKU and
    product name, in component id order, each word once."""
    found = [row.name, row.slug, *words.split(WORD_SEP)] if words else [row.name, row.slug]
    return " ".join(dict.fromkeys(filter(None, found)))
