"""The demo catalog's SQL bulk loaders: one statement per table and chunk, explicit ids.

PostgreSQL's ``COPY``, an ``executemany`` elsewhere; no signals, like ``bulk_create``. Ids are
given explicitly so each bundle's shell product, shell variant and search entry are written in
the same pass as the bundle (a shell's SKU names its bundle's id); the sequences are moved past
them afterwards, as ``loaddata`` does. Shells and entries mirror the planned values the way
``integrity`` and ``search.entry_values`` say.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from decimal import Decimal

from django.core.management.color import no_style
from django.db import connection, models, transaction

from bundles.integrity import shell_sku, shell_slug
from bundles.models import Bundle, BundleComponent, Product, ProductVariant, SearchEntry
from bundles.search import entry_values, refresh_documents
from bundles.seeding.catalog import CURRENCY, NextIds, PlannedBundle, PlannedVariant

CATALOG_MODELS = (SearchEntry, BundleComponent, Bundle, ProductVariant, Product)


def first_free_id(model: type[models.Model]) -> int:
    """The id after both the table's highest and what its sequence handed out last."""
    meta = model._meta
    qn = connection.ops.quote_name
    table, pk = meta.db_table, meta.pk.column
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT MAX({qn(pk)}) FROM {qn(table)}")
        highest = cursor.fetchone()[0] or 0
        handed_out = 0
        if connection.vendor == "postgresql":
            cursor.execute("SELECT pg_get_serial_sequence(%s, %s)", [table, pk])
            sequence = cursor.fetchone()[0]
            if sequence:
                cursor.execute(f"SELECT last_value, is_called FROM {sequence}")  # noqa: S608
                last, called = cursor.fetchone()
                handed_out = last if called else last - 1
        elif connection.vendor == "sqlite":
            cursor.execute("SELECT seq FROM sqlite_sequence WHERE name = %s", [table])
            row = cursor.fetchone()
            handed_out = row[0] if row else 0
    return max(highest, handed_out) + 1


def _column(model: type[models.Model], name: str) -> str:
    field = model._meta.get_field(name)
    assert isinstance(field, models.Field), f"{model.__name__}.{name} is not a column"
    return field.column


def insert_rows(model: type[models.Model], fields: Sequence[str], rows: list[tuple]) -> None:
    """Insert rows (values already adapted to the database, in ``fields`` order) in one
    statement: PostgreSQL's COPY, an ``executemany`` elsewhere. No signals, like bulk_create."""
    if not rows:
        return
    meta = model._meta
    # A NOT NULL column nobody fills would fail at the database; say which, here.
    missing = [f.name for f in meta.concrete_fields if f.attname not in fields and not f.null]
    if missing:
        raise ValueError(f"{meta.label} rows leave out {', '.join(missing)}")
    qn = connection.ops.quote_name
    columns = ", ".join(qn(_column(model, name)) for name in fields)
    table = qn(meta.db_table)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with (
                connection.wrap_database_errors,
                cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy,
            ):
                for row in rows:
                    copy.write_row(row)
            return
        placeholders = ", ".join(["%s"] * len(fields))
        cursor.executemany(f"INSERT INTO {table} ({columns}) VALUES ({placeholders})", rows)


PRODUCT_FIELDS = (
    "id",
    "name",
    "slug",
    "description",
    "is_bundle_shell",
    "created_at",
    "updated_at",
)
VARIANT_FIELDS = (
    "id",
    "product_id",
    "sku",
    "name",
    "price",
    "currency",
    "stock_on_hand",
    "allocated",
    "enabled",
    "deleted_at",
    "created_at",
    "updated_at",
)
BUNDLE_FIELDS = (
    "id",
    "name",
    "slug",
    "status",
    "status_before_broken",
    "pricing_rule",
    "rule_value",
    "currency",
    "availability_cap",
    "computed_price",
    "computed_availability",
    "no_saving",
    "broken_reasons",
    "last_recomputed_at",
    "shell_product_id",
    "shell_variant_id",
    "created_at",
    "updated_at",
)
COMPONENT_FIELDS = ("id", "bundle_id", "variant_id", "quantity")
ENTRY_FIELDS = (
    "id",
    "bundle_id",
    "title",
    "sku",
    "body",
    "price",
    "availability",
    "status",
    "indexed_at",
)


def variant_row(v: PlannedVariant, stamp: object) -> tuple:
    deleted = connection.ops.adapt_datetimefield_value(v.deleted_at)
    return (
        v.id, v.product.id, v.sku, v.name, v.price, CURRENCY, v.stock_on_hand, v.allocated,
        v.enabled, deleted, stamp, stamp,
    )  # fmt: skip


def write_chunk(chunk: list[PlannedBundle], ids: NextIds, stamp: object) -> None:
    products, variants, bundles, components, entries = [], [], [], [], []
    empty_reasons = json.dumps([])
    for b in chunk:
        product_id, variant_id = ids.product, ids.variant
        ids.product += 1
        ids.variant += 1
        price = b.computed_price
        # The shell mirrors the bundle as the engine writes it (``engine.write``).
        products.append((product_id, b.name, shell_slug(b.id), "", True, stamp, stamp))
        sku = shell_sku(b.id)
        variants.append(
            (
                variant_id, product_id, sku, b.name, price if price is not None else Decimal(0),
                CURRENCY, b.computed_availability, 0, b.status == Bundle.Status.ACTIVE, None,
                stamp, stamp,
            )
        )  # fmt: skip
        bundles.append(
            (
                b.id, b.name, b.slug, b.status, "", b.pricing_rule, b.rule_value, CURRENCY,
                b.availability_cap, price, b.computed_availability, b.no_saving,
                empty_reasons, stamp, product_id, variant_id, stamp, stamp,
            )
        )  # fmt: skip
        for c in b.components:
            components.append((ids.component, b.id, c.variant.id, c.quantity))
            ids.component += 1
        entry = entry_values(b, b.components, sku=sku)  # a PlannedBundle is an EntrySource
        entries.append(
            (
                ids.entry, b.id, entry["title"], entry["sku"], entry["body"], entry["price"],
                entry["availability"], entry["status"], stamp,
            )
        )  # fmt: skip
        ids.entry += 1
    insert_rows(Product, PRODUCT_FIELDS, products)
    insert_rows(ProductVariant, VARIANT_FIELDS, variants)
    insert_rows(Bundle, BUNDLE_FIELDS, bundles)
    insert_rows(BundleComponent, COMPONENT_FIELDS, components)
    insert_rows(SearchEntry, ENTRY_FIELDS, entries)
    refresh_documents([b.id for b in chunk])  # PostgreSQL's tsvector: one UPDATE per chunk


def move_sequences_past_new_ids() -> None:
    # SQLite's AUTOINCREMENT follows explicit ids by itself; PostgreSQL's sequences do not.
    statements = connection.ops.sequence_reset_sql(no_style(), list(CATALOG_MODELS))
    with connection.cursor() as cursor:
        for sql in statements:
            cursor.execute(sql)


def analyze_catalog() -> None:
    """PostgreSQL: statistics of the tables as they were (empty) make the recompute's joins
    nested loops over sequential scans: minutes at 100,000 bundles instead of a second."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        for model in CATALOG_MODELS:
            cursor.execute(f"ANALYZE {connection.ops.quote_name(model._meta.db_table)}")


def catalog_delete() -> None:
    """Delete the whole catalog and restart its id sequences at 1.

    Plain DELETEs: no per-row signals (which would schedule jobs) and no collector. Then the
    new catalog gets the same ids every time (the README's examples name bundles 1, 12, 13).
    """
    sequences = [{"table": m._meta.db_table, "column": m._meta.pk.column} for m in CATALOG_MODELS]
    with transaction.atomic(), connection.cursor() as cursor:
        for model in CATALOG_MODELS:
            cursor.execute(f"DELETE FROM {connection.ops.quote_name(model._meta.db_table)}")
        for sql in connection.ops.sequence_reset_by_name_sql(no_style(), sequences):
            cursor.execute(sql)
