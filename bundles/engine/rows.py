"""Reading a batch: its bundles with shell and search entry, its component aggregates, and
for the few bundles with a suspect component, each component's details.

One query reads the bundles, one every bundle's component aggregates (count, Σ price ×
quantity, least whole bundles a component allows, how many components need a closer look,
the words of the search text); only bundles with a suspect component get a third query for
the labels their messages name. No model instance is built per bundle or component.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.db import connection

from ..integrity import QUANTITY_MAX, QUANTITY_MIN, component_label
from ..models import Bundle, BundleComponent, Product, ProductVariant, SearchEntry
from .sql import id_list_params, id_list_sql, is_postgresql, scaled_money_sql, table

WORD_SEP = "\x1f"  # joins component words in SQL; a name containing it would be split in two


@dataclass(slots=True)
class Row:
    """A bundle with its shell and search entry, as plain values (money in 10⁻⁴ units)."""

    id: int
    name: str
    slug: str
    status: str
    status_before_broken: str
    pricing_rule: str
    rule_value: int
    currency: str
    availability_cap: int | None
    valid_from: object
    valid_to: object
    computed_price: int | None
    computed_availability: int
    no_saving: bool
    broken_reasons: object
    shell_product_id: int | None
    shell_variant_id: int | None
    sp_name: str | None
    sp_is_shell: bool
    sv_product_id: int | None
    sv_sku: str | None
    sv_name: str | None
    sv_price: int | None
    sv_currency: str | None
    sv_stock: int | None
    sv_allocated: int | None
    sv_enabled: bool
    sv_deleted: bool
    entry_id: int | None
    entry_title: str | None
    entry_sku: str | None
    entry_body: str | None
    entry_price: int | None
    entry_availability: int | None
    entry_status: str | None
    entry_document_missing: bool


def load_rows(ids: Sequence[int], *, lock: bool) -> list[Row]:
    """These bundles (missing ids left out), in id order; ``lock`` takes their row locks on
    PostgreSQL, so concurrent recomputes of a bundle run one after the other and the last
    writer computed from the newest data (SQLite serialises writers anyway)."""
    pg = is_postgresql()
    b, p, v, e = table(Bundle), table(Product), table(ProductVariant), table(SearchEntry)
    money = scaled_money_sql
    sql = f"""
        SELECT b.id, b.name, b.slug, b.status, b.status_before_broken, b.pricing_rule,
               {money("b.rule_value")}, b.currency, b.availability_cap, b.valid_from,
               b.valid_to, {money("b.computed_price")}, b.computed_availability, b.no_saving,
               b.broken_reasons, b.shell_product_id, b.shell_variant_id,
               sp.name, sp.is_bundle_shell,
               sv.product_id, sv.sku, sv.name, {money("sv.price")}, sv.currency,
               sv.stock_on_hand, sv.allocated, sv.enabled, sv.deleted_at IS NOT NULL,
               se.id, se.title, se.sku, se.body, {money("se.price")}, se.availability,
               se.status, {"se.document IS NULL" if pg else "0"}
        FROM {b} b
        LEFT JOIN {p} sp ON sp.id = b.shell_product_id
        LEFT JOIN {v} sv ON sv.id = b.shell_variant_id
        LEFT JOIN {e} se ON se.bundle_id = b.id
        WHERE b.id IN ({id_list_sql()})
        ORDER BY b.id
        {"FOR UPDATE OF b" if lock and pg else ""}
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, id_list_params(ids))
        return [Row(*r) for r in cursor.fetchall()]


@dataclass(slots=True)
class Aggregate:
    n: int
    total: int  # Σ price × quantity, 10⁻⁴ units
    min_available: int  # least floor((stock − allocated) ÷ quantity); may be < 0
    # Components that need a closer look (``load_details``): deleted, disabled, a shell,
    # quantity out of range, or priced in another currency than the bundle.
    n_suspect: int
    words: str  # component name, SKU and product name of each component, in id order


def _components_from(*, with_bundle: bool = False) -> str:
    # ``b2``: the bundle whose shell this component's variant is, if any (a unique index:
    # one probe per component; an EXISTS became a hash of every shell on PostgreSQL).
    # ``b`` (``with_bundle``): the component's own bundle, for its currency; it costs little,
    # its row stays in cache while its components are read.
    c, v, p, b = table(BundleComponent), table(ProductVariant), table(Product), table(Bundle)
    own = f"JOIN {b} b ON b.id = c.bundle_id" if with_bundle else ""
    return f"""
        FROM {c} c
        {own}
        JOIN {v} v ON v.id = c.variant_id
        JOIN {p} p ON p.id = v.product_id
        LEFT JOIN {b} b2 ON b2.shell_variant_id = c.variant_id
        WHERE c.bundle_id IN ({id_list_sql()})
    """


# A component that is some bundle's shell variant (its own or another's), or a variant of a
# shell product: nested bundles, whatever the shell product's flag says.
_NESTED = "(p.is_bundle_shell OR b2.id IS NOT NULL)"

# A component with nothing for ``integrity.component_issues`` or a currency mismatch to report.
_UNSUSPECT = (
    f"v.deleted_at IS NULL AND v.enabled AND NOT {_NESTED} "
    f"AND c.quantity BETWEEN {QUANTITY_MIN} AND {QUANTITY_MAX} AND v.currency = b.currency"
)


def load_aggregates(ids: Sequence[int]) -> dict[int, Aggregate]:
    """Each bundle's component aggregates (bundles without components are left out)."""
    pg = is_postgresql()
    from_sql = _components_from(with_bundle=True)
    sep = "chr(31)" if pg else "char(31)"
    words = f"v.name || {sep} || v.sku || {sep} || p.name"
    # The rare cases share one sum, and currencies are compared with the bundle's row by row:
    # a least and a greatest currency per bundle cost more than the bundle lookup.
    columns = [
        "COUNT(*)",
        f"SUM({scaled_money_sql('v.price')} * c.quantity)",
        "MIN(CASE WHEN c.quantity >= 1 THEN (v.stock_on_hand - v.allocated) / c.quantity"
        " ELSE 0 END)",
        f"SUM(CASE WHEN {_UNSUSPECT} THEN 0 ELSE 1 END)",
    ]
    if pg:
        sql = (
            f"SELECT c.bundle_id, {', '.join(columns)}, "
            f"string_agg({words}, {sep} ORDER BY c.id) {from_sql} GROUP BY c.bundle_id"
        )
    else:
        # SQLite < 3.44 has no ORDER BY inside group_concat, so the component ids are
        # concatenated beside the words: every aggregate of a group steps through its rows in
        # the same order, and ``words_in_id_order`` reorders the words only if the ids are not
        # already in order (SQLite walks the bundle_id index, so in practice they are).
        sql = (
            f"SELECT c.bundle_id, {', '.join(columns)}, group_concat(c.id), "
            f"group_concat({words}, {sep}) {from_sql} GROUP BY c.bundle_id"
        )
    with connection.cursor() as cursor:
        cursor.execute(sql, id_list_params(ids))
        rows = cursor.fetchall()
    if pg:
        return {r[0]: Aggregate(*r[1:6]) for r in rows}
    return {r[0]: Aggregate(r[1], r[2], r[3], r[4], words_in_id_order(r[5], r[6])) for r in rows}


def words_in_id_order(ids: str | int, words: str) -> str:
    """Three words per component (``v.name, v.sku, p.name``), listed in the order of ``ids``
    ("12,10,11"): the same words in component id order."""
    order = list(map(int, (ids if isinstance(ids, str) else str(ids)).split(",")))
    if order == sorted(order):
        return words
    parts = words.split(WORD_SEP)
    if len(parts) != 3 * len(order):  # a name with the separator in it: order unknown
        return words
    triples = sorted(zip(order, (parts[i : i + 3] for i in range(0, len(parts), 3)), strict=True))
    return WORD_SEP.join(word for _, triple in triples for word in triple)


@dataclass(slots=True)
class ComponentDetail:
    sku: str
    name: str
    currency: str
    deleted: bool
    enabled: bool
    nested: bool
    quantity: int

    @property
    def label(self) -> str:
        return component_label(self.sku, self.name)


def load_details(ids: Sequence[int]) -> dict[int, list[ComponentDetail]]:
    """Each component of these (suspect) bundles, in id order: what their messages name."""
    if not ids:
        return {}
    sql = (
        "SELECT c.bundle_id, v.sku, v.name, v.currency, v.deleted_at IS NOT NULL, v.enabled, "
        f"CASE WHEN {_NESTED} THEN 1 ELSE 0 END, c.quantity {_components_from()} "
        "ORDER BY c.bundle_id, c.id"
    )
    details: dict[int, list[ComponentDetail]] = {}
    with connection.cursor() as cursor:
        cursor.execute(sql, id_list_params(ids))
        for r in cursor.fetchall():
            details.setdefault(r[0], []).append(ComponentDetail(*r[1:]))
    return details
