"""Set-based evaluation of a batch of bundles: SQL aggregates in, plain values through the
pure rules of ``pricing``, only what changed written back in bulk.

Per batch: one query reads the bundles with their shell and search entry, one reads every
bundle's component aggregates (count, Σ price × quantity, least whole bundles a component
allows, counts of deleted / disabled / shell components, quantity and currency range, the
words of the search text), and only bundles that have a component problem get a third query
for the labels their messages name. No model instance is built per bundle or component.

The results are those of ``integrity.evaluate_bundle`` + ``services._write_bundles`` /
``_index`` (the per-bundle path, kept as the reference and for rare cases): a bundle whose
shell or search entry is missing is handed back as "slow" and the caller runs that path.

Money is read as integers of 10⁻⁴ (every money column has 4 decimal places): exact on
PostgreSQL's numeric and on SQLite, which stores decimals as floats (15 significant digits
round-trip, and these columns hold at most 14).
"""

from __future__ import annotations

import gc
import json
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from functools import lru_cache
from typing import cast

from django.db import connection, models
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from . import pricing
from .integrity import (
    AVAILABILITY_DRIFT,
    COMPONENT_DELETED,
    COMPONENT_DISABLED,
    CURRENCY_MISMATCH,
    FIXABLE_CODES,
    INVALID_QUANTITY,
    NESTED_BUNDLE,
    NO_COMPONENTS,
    NON_POSITIVE_PRICE,
    PRICE_DRIFT,
    QUANTITY_MAX,
    QUANTITY_MIN,
    SHELL_MISSING,
    SHELL_OUT_OF_SYNC,
    Issue,
    status_after,
    status_is_stale,
)
from .models import Bundle, BundleComponent, Product, ProductVariant, SearchEntry
from .search import refresh_documents

MONEY_PLACES = 4
_SCALE = 10**MONEY_PLACES
_SEP = "\x1f"  # joins component words in SQL; a name containing it would be split in two
_ACTIVE = Bundle.Status.ACTIVE.value
_ARCHIVED = Bundle.Status.ARCHIVED.value


def supported() -> bool:
    """The SQL here is written for PostgreSQL and SQLite ≥ 3.33 (``UPDATE … FROM``; and
    ``json_each``, which Django's JSONField needs anyway); other backends use the slow path."""
    if connection.vendor == "sqlite":
        return sqlite3.sqlite_version_info >= (3, 33)
    return connection.vendor == "postgresql"


def _t(model) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _scaled(expr: str) -> str:
    """SQL for ``expr`` (a decimal) as an integer number of 10⁻⁴ units."""
    if connection.vendor == "postgresql":
        return f"ROUND(({expr}) * {_SCALE})::bigint"
    return f"CAST(ROUND(({expr}) * {_SCALE}) AS INTEGER)"


def _money(scaled: int | None) -> Decimal | None:
    return None if scaled is None else Decimal(int(scaled)).scaleb(-MONEY_PLACES)


# A catalog's rules repeat a few values (10 % off, 5.00 off): each is made a Decimal once.
_rule_value = lru_cache(maxsize=4096)(_money)


def _to_scaled(amount: Decimal | None) -> int | None:
    return None if amount is None else int(amount.scaleb(MONEY_PLACES))


def _aware(value) -> datetime | None:
    """SQLite hands back naive UTC datetimes (or text); PostgreSQL aware ones."""
    if value is None:
        return None
    if not isinstance(value, datetime):
        value = parse_datetime(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


# --- reading ------------------------------------------------------------------------------


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


def _in() -> str:
    """The body of ``x IN (…)`` for ``_ids(ids)``: one parameter for the whole list."""
    if connection.vendor == "postgresql":
        return "SELECT unnest(string_to_array(%s, ',')::bigint[])"
    return "SELECT value FROM json_each(%s)"


def _ids(ids: Sequence[int]) -> list:
    # One text parameter, not one per id: psycopg's list dumper checks every element in
    # Python (a tenth of a catalog recompute's client time), and Django's SQLite cursor
    # rewrites every ``%s`` of a statement with a regular expression.
    if connection.vendor == "postgresql":
        return [",".join(map(str, map(int, ids)))]
    return [json.dumps(list(map(int, ids)))]


def _load_rows(ids: Sequence[int], *, lock: bool) -> list[Row]:
    pg = connection.vendor == "postgresql"
    b, p, v, e = _t(Bundle), _t(Product), _t(ProductVariant), _t(SearchEntry)
    sql = f"""
        SELECT b.id, b.name, b.slug, b.status, b.status_before_broken, b.pricing_rule,
               {_scaled("b.rule_value")}, b.currency, b.availability_cap, b.valid_from,
               b.valid_to, {_scaled("b.computed_price")}, b.computed_availability, b.no_saving,
               b.broken_reasons, b.shell_product_id, b.shell_variant_id,
               sp.name, sp.is_bundle_shell,
               sv.product_id, sv.sku, sv.name, {_scaled("sv.price")}, sv.currency,
               sv.stock_on_hand, sv.allocated, sv.enabled, sv.deleted_at IS NOT NULL,
               se.id, se.title, se.sku, se.body, {_scaled("se.price")}, se.availability,
               se.status, {"se.document IS NULL" if pg else "0"}
        FROM {b} b
        LEFT JOIN {p} sp ON sp.id = b.shell_product_id
        LEFT JOIN {v} sv ON sv.id = b.shell_variant_id
        LEFT JOIN {e} se ON se.bundle_id = b.id
        WHERE b.id IN ({_in()})
        ORDER BY b.id
        {"FOR UPDATE OF b" if lock and pg else ""}
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, _ids(ids))
        return [Row(*r) for r in cursor.fetchall()]


@dataclass(slots=True)
class Aggregate:
    n: int
    total: int  # Σ price × quantity, 10⁻⁴ units
    min_available: int  # least floor((stock − allocated) ÷ quantity); may be < 0
    # Components that need a closer look (``_load_details``): deleted, disabled, a shell,
    # quantity out of range, or priced in another currency than the bundle.
    n_suspect: int
    words: str  # component name, SKU and product name of each component, in id order


def _components_from(*, with_bundle: bool = False) -> str:
    # ``b2``: the bundle whose shell this component's variant is, if any (a unique index:
    # one probe per component; an EXISTS became a hash of every shell on PostgreSQL).
    # ``b`` (``with_bundle``): the component's own bundle, for its currency; it costs little,
    # its row stays in cache while its components are read.
    c, v, p, b = _t(BundleComponent), _t(ProductVariant), _t(Product), _t(Bundle)
    own = f"JOIN {b} b ON b.id = c.bundle_id" if with_bundle else ""
    return f"""
        FROM {c} c
        {own}
        JOIN {v} v ON v.id = c.variant_id
        JOIN {p} p ON p.id = v.product_id
        LEFT JOIN {b} b2 ON b2.shell_variant_id = c.variant_id
        WHERE c.bundle_id IN ({_in()})
    """


# A component that is some bundle's shell variant (its own or another's), or a variant of a
# shell product: the same test as ``integrity._is_shell_variant``.
_NESTED = "(p.is_bundle_shell OR b2.id IS NOT NULL)"


def _nested_sql() -> str:
    return f"CASE WHEN {_NESTED} THEN 1 ELSE 0 END"


# A component with nothing for ``_component_issues`` or a currency mismatch to report.
_UNSUSPECT = (
    f"v.deleted_at IS NULL AND v.enabled AND NOT {_NESTED} "
    f"AND c.quantity BETWEEN {QUANTITY_MIN} AND {QUANTITY_MAX} AND v.currency = b.currency"
)


def _load_aggregates(ids: Sequence[int]) -> dict[int, Aggregate]:
    pg = connection.vendor == "postgresql"
    from_sql = _components_from(with_bundle=True)
    sep = "chr(31)" if pg else "char(31)"
    words = f"v.name || {sep} || v.sku || {sep} || p.name"
    # The rare cases share one sum, and currencies are compared with the bundle's row by row:
    # a least and a greatest currency per bundle cost more than the bundle lookup.
    columns = [
        "COUNT(*)",
        f"SUM({_scaled('v.price')} * c.quantity)",
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
        # the same order, and ``_words_in_id_order`` reorders the words only if the ids are not
        # already in order (SQLite walks the bundle_id index, so in practice they are).
        sql = (
            f"SELECT c.bundle_id, {', '.join(columns)}, group_concat(c.id), "
            f"group_concat({words}, {sep}) {from_sql} GROUP BY c.bundle_id"
        )
    with connection.cursor() as cursor:
        cursor.execute(sql, _ids(ids))
        rows = cursor.fetchall()
    if pg:
        return {r[0]: Aggregate(*r[1:6]) for r in rows}
    return {r[0]: Aggregate(*r[1:5], _words_in_id_order(r[5], r[6])) for r in rows}  # type: ignore[call-arg]


def _words_in_id_order(ids: str, words: str) -> str:
    """Three words per component (``v.name, v.sku, p.name``), listed in the order of ``ids``
    ("12,10,11"): the same words in component id order."""
    order = list(map(int, (ids if isinstance(ids, str) else str(ids)).split(",")))
    if order == sorted(order):
        return words
    parts = words.split(_SEP)
    if len(parts) != 3 * len(order):  # a name with the separator in it: order unknown
        return words
    triples = sorted(zip(order, (parts[i : i + 3] for i in range(0, len(parts), 3)), strict=True))
    return _SEP.join(word for _, triple in triples for word in triple)


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
        return f"{self.sku} ({self.name})"


def _load_details(ids: Sequence[int]) -> dict[int, list[ComponentDetail]]:
    """Each component of these (problem) bundles, in id order: what their messages name."""
    if not ids:
        return {}
    from_sql = _components_from()
    sql = (
        "SELECT c.bundle_id, v.sku, v.name, v.currency, v.deleted_at IS NOT NULL, v.enabled, "
        f"{_nested_sql()}, c.quantity {from_sql} ORDER BY c.bundle_id, c.id"
    )
    details: dict[int, list[ComponentDetail]] = {}
    with connection.cursor() as cursor:
        cursor.execute(sql, _ids(ids))
        for r in cursor.fetchall():
            details.setdefault(r[0], []).append(ComponentDetail(*r[1:]))
    return details


# --- evaluating ---------------------------------------------------------------------------


def _issue(code: str, message: str) -> Issue:
    return Issue(code=code, message=message, fixable=code in FIXABLE_CODES)


@dataclass(slots=True)
class Outcome:
    """What ``integrity.evaluate_bundle`` says of one bundle, from plain values."""

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
    def slow(self) -> bool:
        """Needs the per-bundle writer: its shell must be created or re-linked."""
        return self.row.shell_product_id is None or self.row.shell_variant_id is None

    def stale(self) -> bool:
        """The stale rule (``integrity.status_is_stale``) over this row's stored values."""
        r = self.row
        stored = r.broken_reasons
        if isinstance(stored, str):  # SQLite hands JSON back as text; most bundles have none
            stored = json.loads(stored) if stored not in ("", "[]") else []
        return status_is_stale(
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


def _component_issues(details: list[ComponentDetail]) -> list[Issue]:
    issues = []
    for d in details:
        if d.deleted:
            issues.append(_issue(COMPONENT_DELETED, f"Component {d.label} is deleted."))
        if not d.enabled:
            issues.append(_issue(COMPONENT_DISABLED, f"Component {d.label} is disabled."))
        if d.nested:
            issues.append(
                _issue(
                    NESTED_BUNDLE,
                    f"Component {d.label} is a bundle's shell variant; bundles can't nest.",
                )
            )
        if not QUANTITY_MIN <= d.quantity <= QUANTITY_MAX:
            issues.append(
                _issue(
                    INVALID_QUANTITY,
                    f"Component {d.label} has quantity {d.quantity}; "
                    f"it must lie in {QUANTITY_MIN}–{QUANTITY_MAX}.",
                )
            )
    return issues


def _needs_details(agg: Aggregate | None) -> bool:
    return agg is not None and agg.n_suspect > 0


def evaluate(
    row: Row,
    agg: Aggregate | None,
    details: list[ComponentDetail] | None,
    now: datetime,
    *,
    fixable_issues: bool = True,
) -> Outcome:
    """``integrity.evaluate_bundle`` over plain values. Without ``fixable_issues`` the drift
    and shell issues (fixable, so they never change status or reasons) are not listed."""
    issues: list[Issue] = []
    n = agg.n if agg is not None else 0
    if not n:
        issues.append(_issue(NO_COMPONENTS, "The bundle has no components."))
    others: tuple[str, ...] = ()
    if details:
        issues += _component_issues(details)
        others = tuple(sorted({d.currency for d in details if d.currency != row.currency}))
    result = pricing.price_from_aggregates(
        n_lines=n,
        other_currencies=others,
        raw_total=None if others or agg is None else _money(agg.total),
        rule=row.pricing_rule,
        value=_rule_value(row.rule_value),  # type: ignore[arg-type]  # NOT NULL: never None
        currency=row.currency,
    )
    if result.problem == pricing.CURRENCY_MISMATCH:
        issues.append(
            _issue(
                CURRENCY_MISMATCH,
                f"Components are priced in {', '.join(result.mismatched_currencies)}, "
                f"the bundle in {row.currency}.",
            )
        )
    elif result.problem == pricing.NON_POSITIVE_PRICE:
        issues.append(
            _issue(
                NON_POSITIVE_PRICE,
                f"The rule leaves a price ≤ 0 (components total {result.total} {row.currency}).",
            )
        )
    price = result.price
    price_scaled = _to_scaled(price)
    availability = pricing.availability_from_aggregates(
        n_lines=n,
        # only a suspect component can be unusable, and suspects' details are loaded
        any_unusable=bool(details)
        and any(pricing.unusable(d.deleted, d.enabled, d.quantity) for d in details or ()),
        min_component=agg.min_available if agg is not None else 0,
        now=now,
        cap=row.availability_cap,
        valid_from=None if row.valid_from is None else _aware(row.valid_from),
        valid_to=None if row.valid_to is None else _aware(row.valid_to),
    )
    if fixable_issues and row.computed_price != price_scaled:
        issues.append(
            _issue(PRICE_DRIFT, f"Stored price {_money(row.computed_price)}, computed {price}.")
        )
    if fixable_issues and row.computed_availability != availability:
        issues.append(
            _issue(
                AVAILABILITY_DRIFT,
                f"Stored availability {row.computed_availability}, computed {availability}.",
            )
        )
    unfixable = [i for i in issues if not i.fixable] if issues else []
    status, before = status_after(row.status, row.status_before_broken, bool(unfixable))
    variant_drift: list[str] = []
    if row.shell_product_id is None or row.shell_variant_id is None:
        issues.append(_issue(SHELL_MISSING, "The bundle's shell product or variant is missing."))
    else:
        variant_drift = _variant_drift(row, price_scaled or 0, availability, status)
        if fixable_issues and (drift := variant_drift + _product_drift(row)):
            issues.append(_issue(SHELL_OUT_OF_SYNC, f"The shell differs in {', '.join(drift)}."))
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
    """Shell variant fields that differ from what they should be (``evaluate_bundle`` order)."""
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
    if bool(row.sv_enabled) != (status == _ACTIVE):
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
    if not ids:
        return []
    rows = _load_rows(ids, lock=lock)
    if not rows:
        return []
    found = [r.id for r in rows]
    aggregates = _load_aggregates(found)
    problem = [r.id for r in rows if _needs_details(aggregates.get(r.id))]
    details = _load_details(problem)
    return [
        evaluate(r, aggregates.get(r.id), details.get(r.id), now, fixable_issues=fixable_issues)
        for r in rows
    ]


# --- writing ------------------------------------------------------------------------------


def _stamp(now: datetime) -> object:
    """``now`` adapted for this database; on PostgreSQL as ISO text, which both the JSON rows
    and a ``%s`` parameter take (no isoformat per row)."""
    value = connection.ops.adapt_datetimefield_value(now)
    return value.isoformat() if isinstance(value, datetime) else value


def _price_param(price: Decimal | None) -> str | None:
    """A price as the text both databases parse back exactly (no per-row JSON ``default``)."""
    return None if price is None else str(price)


def _json_value(value: object) -> object:
    """Decimals and datetimes as the text PostgreSQL parses back exactly."""
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _bulk_update(model, fields: Sequence[str], rows: list[list]) -> None:
    """``UPDATE`` these columns of many rows (each row: values of ``fields`` then its pk).

    PostgreSQL: one ``UPDATE … FROM json_array_elements(<the rows as JSON>)``; SQLite: one
    ``executemany``. Values are already adapted to the database.
    """
    if not rows:
        return
    meta = model._meta
    qn = connection.ops.quote_name
    table, pk = qn(meta.db_table), qn(meta.pk.column)
    columns = [meta.get_field(name) for name in fields]
    with connection.cursor() as cursor:
        if connection.vendor != "postgresql":
            assignments = ", ".join(f"{qn(f.column)} = %s" for f in columns)
            cursor.executemany(f"UPDATE {table} SET {assignments} WHERE {pk} = %s", rows)
            return
        types = [f.db_type(connection) for f in columns] + [meta.pk.db_type(connection)]
        types = ["bigint" if t == "bigint" or "serial" in t else t for t in types]
        # The rows travel as one JSON array of arrays, unpacked by position: json.dumps is C
        # and the statement stays short whatever the row count (psycopg's array dumper quoted
        # every value in Python: a third of a catalog recompute's time).
        # (a jsonb column's value is already JSON text: ->> hands it to the cast as is)
        values = ", ".join(f"(e->>{i})::{kind}" for i, kind in enumerate(types))
        assignments = ", ".join(f"{qn(f.column)} = v.c{i}" for i, f in enumerate(columns))
        names = ", ".join([*(f"c{i}" for i in range(len(columns))), "pk"])
        sql = (
            f"UPDATE {table} AS t SET {assignments} "
            f"FROM (SELECT {values} FROM json_array_elements(%s::json) AS e) AS v({names}) "
            f"WHERE t.{pk} = v.pk"
        )
        cursor.execute(sql, [json.dumps(rows, default=_json_value)])


# The columns a recompute writes (the per-bundle path in services writes the same ones).
BUNDLE_FIELDS = [
    "computed_price",
    "computed_availability",
    "no_saving",
    "status",
    "status_before_broken",
    "broken_reasons",
    "last_recomputed_at",
    "updated_at",
]
# A bundle whose status and reasons stay: only its values and times.
_BUNDLE_VALUE_FIELDS = [
    "computed_price",
    "computed_availability",
    "no_saving",
    "last_recomputed_at",
    "updated_at",
]
SHELL_VARIANT_FIELDS = [
    "product",
    "name",
    "price",
    "currency",
    "stock_on_hand",
    "allocated",
    "enabled",
    "deleted_at",
    "updated_at",
]
ENTRY_FIELDS = ["title", "sku", "body", "price", "availability", "status", "indexed_at"]


@dataclass(slots=True)
class _Writes:
    """What one batch writes, decided once for both databases (``_plan``)."""

    changed: set[int] = field(default_factory=set)
    products: list[Outcome] = field(default_factory=list)  # shell product renamed or re-flagged
    stale: list[Outcome] = field(default_factory=list)  # bundle: status, reasons and values
    values_only: list[Outcome] = field(default_factory=list)  # bundle: values and times only
    touched: list[Outcome] = field(default_factory=list)  # recomputed, unchanged: only the time
    shells: list[tuple[Outcome, bool]] = field(default_factory=list)  # (bundle, relinked?)
    rewritten: list[tuple[Outcome, str]] = field(default_factory=list)  # entry text changed
    copied: list[tuple[Outcome, bool]] = field(default_factory=list)  # (bundle, status changed?)
    documents: list[int] = field(default_factory=list)  # bundles whose tsvector is refreshed


def _plan(outcomes: Sequence[Outcome], *, index: bool) -> _Writes:
    """``services._write_bundles`` (force off) and, with ``index``, ``services._index``, as
    decisions: which bundles, shells, shell products and entries differ from what they should
    be."""
    w = _Writes()
    for o in outcomes:
        r = o.row
        relink = r.sv_product_id != r.shell_product_id
        variant_differs = relink or bool(o.variant_drift)
        if variant_differs:
            w.shells.append((o, relink))
        product_differs = r.sp_name != r.name or not r.sp_is_shell
        if product_differs:
            w.products.append(o)
        stale = o.stale()
        if not (variant_differs or product_differs or stale or o.values_changed()):
            w.touched.append(o)
        else:
            w.changed.add(r.id)
            # status and reasons as they were: leave them (and SQLite's status index) alone
            (w.stale if stale else w.values_only).append(o)
        if not index:
            continue
        body = entry_body(o)
        # The tsvector depends on title, SKU and body only.
        if r.entry_title != r.name or r.entry_sku != r.sv_sku or r.entry_body != body:
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


def write(outcomes: Sequence[Outcome], *, now: datetime, index: bool) -> set[int]:
    """``services._write_bundles`` (force off) and, with ``index``, ``services._index`` for
    bundles whose shell and entry exist; returns the ids of bundles that changed.

    A shell variant, and a search entry whose text is unchanged, mirror their bundle's new
    values: SQLite copies them from the bundle rows just written (one ``UPDATE … FROM`` per
    table); PostgreSQL writes bundles, shells and entries in one statement from one JSON array.
    """
    w = _plan(outcomes, index=index)
    stamp = _stamp(now)
    index_stamp = _stamp(timezone.now()) if index else stamp
    _bulk_update(
        Product,
        ["name", "is_bundle_shell", "updated_at"],
        [[o.row.name, True, stamp, o.row.shell_product_id] for o in w.products],
    )
    if connection.vendor == "postgresql":
        _write_postgresql(w, stamp, index_stamp)
    else:
        _write_sqlite(w, stamp, index_stamp)
    _bulk_update(
        SearchEntry,
        ENTRY_FIELDS,
        [
            [
                o.row.name,
                o.row.sv_sku,
                body,
                _price_param(o.price),
                o.availability,
                o.status,
                index_stamp,
                o.row.entry_id,
            ]
            for o, body in w.rewritten
        ],
    )
    if w.documents:
        refresh_documents(w.documents)
    return w.changed


def _bundle_values(o: Outcome) -> list:
    """A written bundle's price, availability, no-saving flag, status, status before broken
    and reasons, as parameters (the first six of ``BUNDLE_FIELDS``)."""
    reasons = json.dumps(o.broken_reasons) if o.broken_reasons else "[]"
    return [
        _price_param(o.price),
        o.availability,
        o.no_saving,
        o.status,
        o.status_before_broken,
        reasons,
    ]


def _write_sqlite(w: _Writes, stamp, index_stamp) -> None:
    _bulk_update(
        Bundle,
        BUNDLE_FIELDS,
        [[*_bundle_values(o), stamp, stamp, o.row.id] for o in w.stale],
    )
    _bulk_update(
        Bundle,
        _BUNDLE_VALUE_FIELDS,
        [
            [_price_param(o.price), o.availability, o.no_saving, stamp, stamp, o.row.id]
            for o in w.values_only
        ],
    )
    if w.touched:  # recomputed, nothing to change: only the time is stamped
        touched = [o.row.id for o in w.touched]
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {_t(Bundle)} SET last_recomputed_at = %s WHERE id IN ({_in()})",
                [stamp, *_ids(touched)],
            )
    for relinked in (False, True):
        _copy_to_shells([o.row.id for o, r in w.shells if r is relinked], stamp, relink=relinked)
    entries, join = _t(SearchEntry), "t.bundle_id = b.id"
    for status_changed in (False, True):
        ids = [o.row.id for o, changed in w.copied if changed is status_changed]
        assignments = f"status = b.status, {_ENTRY_FROM_BUNDLE}" if status_changed else None
        _copy_from_bundles(entries, assignments or _ENTRY_FROM_BUNDLE, join, ids, index_stamp)


def _write_postgresql(w: _Writes, stamp, index_stamp) -> None:
    """Bundles, their shells and their entries' values in one statement: one JSON array of
    every bundle of the batch, unpacked once, feeding an UPDATE per table (PostgreSQL's
    writable CTEs). Indexed columns may be SET to the value they have: an update stays
    heap-only (HOT) as long as their values do not change."""
    shells = {o.row.id for o, _relink in w.shells}
    copied = {o.row.id for o, _status in w.copied}
    rows = [
        [
            o.row.id,
            *_bundle_values(o),
            what,
            o.row.shell_variant_id,
            o.row.shell_product_id,
            o.row.name,
            o.row.currency,
            o.row.id in shells,
            o.row.id in copied,
        ]
        for what, group in ((2, w.stale), (2, w.values_only), (1, w.touched))
        for o in group
    ]
    if not rows:
        return
    qn = connection.ops.quote_name
    db_type = {
        name: cast(models.Field, Bundle._meta.get_field(name)).db_type(connection)
        for name in ("computed_price", "computed_availability", "broken_reasons")
    }
    bundles, variants, entries = _t(Bundle), _t(ProductVariant), _t(SearchEntry)
    sql = f"""
        WITH v AS MATERIALIZED (
            SELECT (e->>0)::bigint AS pk, (e->>1)::{db_type["computed_price"]} AS price,
                   (e->>2)::{db_type["computed_availability"]} AS avail,
                   (e->>3)::boolean AS no_saving, e->>4 AS status, e->>5 AS before,
                   (e->>6)::{db_type["broken_reasons"]} AS reasons, (e->>7)::integer AS what,
                   (e->>8)::bigint AS shell_id, (e->>9)::bigint AS shell_product,
                   e->>10 AS name, e->>11 AS currency, (e->>12)::boolean AS copy_shell,
                   (e->>13)::boolean AS copy_entry
            FROM json_array_elements(%s::json) AS e
        ),
        written AS (
            UPDATE {bundles} AS t SET {qn("computed_price")} = v.price,
                   {qn("computed_availability")} = v.avail, {qn("no_saving")} = v.no_saving,
                   {qn("status")} = v.status, {qn("status_before_broken")} = v.before,
                   {qn("broken_reasons")} = v.reasons, {qn("last_recomputed_at")} = %s,
                   {qn("updated_at")} = %s
            FROM v WHERE t.id = v.pk AND v.what = 2
        ),
        stamped AS (
            UPDATE {bundles} AS t SET {qn("last_recomputed_at")} = %s FROM v
            WHERE t.id = v.pk AND v.what = 1
        ),
        shells AS (
            UPDATE {variants} AS t SET product_id = v.shell_product, name = v.name,
                   price = COALESCE(v.price, 0), currency = v.currency, stock_on_hand = v.avail,
                   allocated = 0, enabled = (v.status = '{_ACTIVE}'), deleted_at = NULL,
                   updated_at = %s
            FROM v WHERE t.id = v.shell_id AND v.copy_shell
        )
        UPDATE {entries} AS t SET price = v.price, availability = v.avail, status = v.status,
               indexed_at = %s
        FROM v WHERE t.bundle_id = v.pk AND v.copy_entry
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, [json.dumps(rows), stamp, stamp, stamp, stamp, index_stamp])


def _copy_from_bundles(table: str, assignments: str, join: str, ids: list[int], stamp) -> None:
    """``UPDATE table AS t SET assignments FROM bundles b WHERE join``, for these bundles."""
    if not ids:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} AS t SET {assignments} FROM {_t(Bundle)} AS b "
            f"WHERE {join} AND b.id IN ({_in()})",
            [stamp, *_ids(ids)],
        )


# What a shell variant mirrors (``services._write_bundles``): SHELL_VARIANT_FIELDS, in SQL.
# SQLite rewrites the entries of every index whose column is SET, even to the same value, so
# the indexed columns (a variant's product, an entry's status) are only SET when they change.
_SHELL_FROM_BUNDLE = (
    "name = b.name, price = COALESCE(b.computed_price, 0), currency = b.currency, "
    "stock_on_hand = b.computed_availability, allocated = 0, "
    f"enabled = (b.status = '{_ACTIVE}'), deleted_at = NULL, updated_at = %s"
)
_ENTRY_FROM_BUNDLE = (
    "price = b.computed_price, availability = b.computed_availability, indexed_at = %s"
)


def _copy_to_shells(bundle_ids: list[int], stamp, *, relink: bool) -> None:
    assignments = (
        f"product_id = b.shell_product_id, {_SHELL_FROM_BUNDLE}" if relink else _SHELL_FROM_BUNDLE
    )
    _copy_from_bundles(
        _t(ProductVariant), assignments, "t.id = b.shell_variant_id", bundle_ids, stamp
    )


def entry_body(o: Outcome) -> str:
    """``search.entry_values``' body from the aggregated words (same words, same order)."""
    words = [o.row.name, o.row.slug, *o.words.split(_SEP)] if o.words else [o.row.name, o.row.slug]
    return " ".join(dict.fromkeys(filter(None, words)))


# --- the two batch services' cores --------------------------------------------------------


@contextmanager
def _collector_paused() -> Iterator[None]:
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


@dataclass
class RecomputeBatch:
    found: list[int]
    changed: int
    slow: list[int]  # found, but for the per-bundle path (shell or entry to create)
    # bundle id -> what changed, compactly: {"price": (old, new), "availability": (...), ...}
    changes: dict[int, dict] = field(default_factory=dict)


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


def recompute_batch(ids: Sequence[int], *, update_search: bool) -> RecomputeBatch:
    """Recompute these bundles set-based (inside the caller's transaction, rows locked)."""
    with _collector_paused():
        return _recompute_batch(ids, update_search=update_search)


def _recompute_batch(ids: Sequence[int], *, update_search: bool) -> RecomputeBatch:
    now = timezone.now()
    outcomes = evaluate_batch(ids, lock=True, now=now, fixable_issues=False)
    fast, slow = [], []
    for o in outcomes:
        if o.slow or (update_search and o.row.entry_id is None):
            slow.append(o.row.id)
        else:
            fast.append(o)
    changed = write(fast, now=now, index=update_search)
    changes = {}
    for o in fast:
        if o.row.id in changed:
            diff = change_of(
                old=(_money(o.row.computed_price), o.row.computed_availability, o.row.status),
                new=(o.price, o.availability, o.status),
                currency=o.row.currency,
            )
            if diff:
                changes[o.row.id] = diff
    return RecomputeBatch(
        found=[o.row.id for o in outcomes], changed=len(changed), slow=slow, changes=changes
    )


def check_batch(ids: Sequence[int], *, fix: bool, result: dict) -> list[int]:
    """``services._check_chunk`` set-based: counts into ``result``; with ``fix`` writes what
    needs writing. Returns ids to fix that need the per-bundle path (shell or entry missing)."""
    with _collector_paused():
        return _check_batch(ids, fix=fix, result=result)


def _check_batch(ids: Sequence[int], *, fix: bool, result: dict) -> list[int]:
    now = timezone.now()
    outcomes = evaluate_batch(ids, lock=fix, now=now)
    to_fix, slow = [], []
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
                {"id": o.row.id, "name": o.row.name, "reasons": [i.as_dict() for i in remaining]}
            )
        if fix and needs_writing:
            if o.slow or o.row.entry_id is None:
                slow.append(o.row.id)
            else:
                to_fix.append(o)
    if to_fix:
        write(to_fix, now=now, index=True)
    result["checked"] += len(outcomes)
    return slow
