"""The demo catalog, written set-based: ``demo_catalog_seed`` and ``demo_catalog_delete``.

Every row is planned in Python from one ``random.Random(seed)`` (same seed, same catalog, the
same ids after a reset) and written one statement per table and chunk: PostgreSQL's ``COPY``,
an ``executemany`` elsewhere. Ids are given explicitly so each bundle's shell product, shell
variant and search entry can be written in the same pass as the bundle (a shell's SKU names
its bundle's id); the sequences are moved past them afterwards, as ``loaddata`` does.

Prices and availability come from the pure rules of ``pricing``; shells and entries mirror
them the way ``integrity.evaluate_bundle`` and ``search.entry_values`` say. The few bundles
with a problem by design (a deleted or disabled component) then go through the production
recompute, which writes their broken status and reasons; nothing else is rewritten.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import NamedTuple, cast

from django.core.management.color import no_style
from django.db import connection, models, transaction
from django.utils import timezone

from . import pricing
from .integrity import shell_sku, shell_slug
from .models import Bundle, BundleComponent, Product, ProductVariant, SearchEntry
from .search import entry_values, refresh_documents
from .services import bundles_recompute

ADJECTIVES = [
    "Compact",
    "Deluxe",
    "Everyday",
    "Family",
    "Travel",
    "Outdoor",
    "Studio",
    "Starter",
    "Premium",
    "Classic",
    "Urban",
    "Weekend",
    "Pro",
    "Eco",
    "Smart",
    "Ultimate",
]
NOUNS = [
    "Camera",
    "Battery",
    "Tripod",
    "Backpack",
    "Lens",
    "Charger",
    "Headphones",
    "Speaker",
    "Lamp",
    "Kettle",
    "Mug",
    "Blanket",
    "Tent",
    "Bottle",
    "Notebook",
    "Keyboard",
    "Mouse",
    "Cable",
    "Stand",
    "Case",
    "Filter",
    "Brush",
    "Grinder",
    "Scale",
]
VARIANT_TRAITS = ["Black", "White", "Red", "Blue", "Small", "Large", "XL", "Mini", "v2", "Plus"]
THEMES = ["Starter", "Explorer", "Creator", "Home office", "Coffee", "Camping", "Gift", "Travel"]
CURRENCY = "USD"
CATALOG_MODELS = (SearchEntry, BundleComponent, Bundle, ProductVariant, Product)

Progress = Callable[[int, str], None] | None


# --- the plan: plain values, no model instances ------------------------------------------


@dataclass(slots=True)
class PlannedProduct:
    id: int
    name: str
    slug: str


@dataclass(slots=True)
class PlannedVariant:
    id: int
    product: PlannedProduct
    sku: str
    name: str
    price: Decimal
    stock_on_hand: int
    allocated: int
    enabled: bool = True
    deleted_at: datetime | None = None


class PlannedComponent(NamedTuple):
    variant: PlannedVariant
    quantity: int


@dataclass(slots=True)
class PlannedBundle:
    """A bundle and what is derived from it. ``entry_values`` reads these attribute names."""

    id: int
    name: str
    slug: str
    status: str
    pricing_rule: str
    rule_value: Decimal
    availability_cap: int | None
    components: list[PlannedComponent]
    computed_price: Decimal | None = None
    computed_availability: int = 0
    no_saving: bool = False
    # A problem by design (deleted / disabled component, no price): the recompute writes it.
    needs_recompute: bool = False


@dataclass
class SeedResult:
    bundles: int = 0
    variants: int = 0  # the catalog's shared variants (not the retired ones, not shells)
    broken: int = 0
    bundle_ids: list[int] = field(default_factory=list)


def _first_free_id(model: type[models.Model]) -> int:
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


def _plan_products_and_variants(
    rng: random.Random, n_bundles: int, product_id: int, variant_id: int
) -> tuple[list[PlannedProduct], list[PlannedVariant]]:
    # Variants are shared: about one per two bundles, between 40 and 20,000.
    n_variants = min(20_000, max(40, n_bundles // 2))
    n_products = max(10, n_variants // 3)
    products = [
        PlannedProduct(
            id=product_id + i,
            name=f"{rng.choice(ADJECTIVES)} {rng.choice(NOUNS)} {i + 1}",
            slug=f"demo-product-{i + 1}",
        )
        for i in range(n_products)
    ]
    variants = []
    for i in range(n_variants):
        product = products[i % n_products]
        stock = rng.randint(0, 400)
        trait = rng.choice(VARIANT_TRAITS)
        price = Decimal(rng.randint(199, 24999)) / 100
        variants.append(
            PlannedVariant(
                id=variant_id + i,
                product=product,
                sku=f"DEMO-{i + 1:06d}",
                name=f"{product.name} {trait}",
                price=price,
                stock_on_hand=stock,
                allocated=rng.randint(0, min(stock, 20)),
            )
        )
    return products, variants


def _plan_retired(variants: list[PlannedVariant], n_broken: int, now: datetime) -> list:
    """Components that break a bundle on purpose: even ones deleted, odd ones disabled."""
    next_id = variants[-1].id + 1
    retired = []
    for j in range(min(n_broken, 10)):
        product = variants[j].product
        retired.append(
            PlannedVariant(
                id=next_id + j,
                product=product,
                sku=f"DEMO-RETIRED-{j + 1:03d}",
                name=f"{product.name} (retired {j + 1})",
                price=Decimal("9.99"),
                stock_on_hand=50,
                allocated=0,
                enabled=j % 2 == 0,
                deleted_at=now if j % 2 == 0 else None,
            )
        )
    return retired


def _plan_bundle(
    rng: random.Random, i: int, bundle_id: int, variants: list, retired: list, broken: bool
) -> PlannedBundle:
    picked = rng.sample(range(len(variants)), rng.randint(2, 6))
    lines = [PlannedComponent(variants[k], rng.choice((1, 1, 1, 2, 2, 3))) for k in picked]
    if broken:
        lines[-1] = PlannedComponent(retired[i % len(retired)], 1)
    total = sum(c.variant.price * c.quantity for c in lines)
    roll = rng.random()
    if roll < 0.6:
        rule, value = pricing.PERCENT_OFF, Decimal(rng.choice((0, 5, 10, 15, 20, 25)))
    elif roll < 0.85:
        rule = pricing.AMOUNT_OFF
        value = (total * Decimal(rng.randint(5, 20)) / 100).quantize(Decimal("0.01"))
    else:
        # Mostly a real saving; now and then not (allowed, flagged no_saving).
        factor = Decimal(rng.choice((70, 80, 90, 95, 105)))
        rule, value = pricing.FIXED_PRICE, (total * factor / 100).quantize(Decimal("0.01"))
    status_roll = rng.random()
    status = "active" if status_roll < 0.85 else "draft" if status_roll < 0.95 else "archived"
    theme = rng.choice(THEMES)
    name = f"{theme} {rng.choice(NOUNS).lower()} bundle {i + 1}"
    cap = rng.randint(5, 50) if rng.random() < 0.1 else None
    return PlannedBundle(
        id=bundle_id,
        name=name,
        slug=f"demo-bundle-{i + 1:06d}",
        status=status,
        pricing_rule=rule,
        rule_value=value,
        availability_cap=cap,
        components=lines,
    )


def _price(bundle: PlannedBundle, now: datetime) -> None:
    """Computed price, availability and flags by the pure rules, over the same aggregates the
    set-based recompute reads (every component is in the catalog's one currency)."""
    lines = bundle.components
    unusable = any(c.variant.deleted_at is not None or not c.variant.enabled for c in lines)
    result = pricing.price_from_aggregates(
        n_lines=len(lines),
        other_currencies=(),
        raw_total=sum((c.variant.price * c.quantity for c in lines), Decimal(0)),
        rule=bundle.pricing_rule,
        value=bundle.rule_value,
        currency=CURRENCY,
    )
    bundle.computed_price = result.price
    bundle.no_saving = result.no_saving
    bundle.computed_availability = pricing.availability_from_aggregates(
        n_lines=len(lines),
        any_unusable=unusable,
        min_component=min(
            (c.variant.stock_on_hand - c.variant.allocated) // c.quantity for c in lines
        ),
        now=now,
        cap=bundle.availability_cap,
    )
    bundle.needs_recompute = result.problem is not None or unusable


# --- writing ------------------------------------------------------------------------------


def _insert(model: type[models.Model], fields: Sequence[str], rows: list[tuple]) -> None:
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
    columns = ", ".join(qn(cast(models.Field, meta.get_field(name)).column) for name in fields)
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


def _variant_row(v: PlannedVariant, stamp) -> tuple:
    deleted = connection.ops.adapt_datetimefield_value(v.deleted_at)
    return (
        v.id, v.product.id, v.sku, v.name, v.price, CURRENCY, v.stock_on_hand, v.allocated,
        v.enabled, deleted, stamp, stamp,
    )  # fmt: skip


@dataclass
class _Ids:
    """Where each table's new ids start, and the next free one as rows are planned."""

    product: int
    variant: int
    bundle: int
    component: int
    entry: int


def _write_chunk(chunk: list[PlannedBundle], ids: _Ids, stamp) -> None:
    products, variants, bundles, components, entries = [], [], [], [], []
    empty_reasons = json.dumps([])
    for b in chunk:
        product_id, variant_id = ids.product, ids.variant
        ids.product += 1
        ids.variant += 1
        price = b.computed_price
        # The shell mirrors the bundle as ``integrity.evaluate_bundle``'s shell_fields say.
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
        # duck-typed: reads these fields only
        entry = entry_values(b, b.components, sku=sku)  # type: ignore[arg-type]
        entries.append(
            (
                ids.entry, b.id, entry["title"], entry["sku"], entry["body"], entry["price"],
                entry["availability"], entry["status"], stamp,
            )
        )  # fmt: skip
        ids.entry += 1
    _insert(Product, PRODUCT_FIELDS, products)
    _insert(ProductVariant, VARIANT_FIELDS, variants)
    _insert(Bundle, BUNDLE_FIELDS, bundles)
    _insert(BundleComponent, COMPONENT_FIELDS, components)
    _insert(SearchEntry, ENTRY_FIELDS, entries)
    refresh_documents([b.id for b in chunk])  # PostgreSQL's tsvector: one UPDATE per chunk


def _report(progress: Progress, pct: int, message: str) -> None:
    if progress is not None:
        progress(pct, message)


def demo_catalog_seed(
    *, n_bundles: int, seed: int = 42, batch_size: int = 2000, progress: Progress = None
) -> SeedResult:
    """Write a deterministic demo catalog of ``n_bundles`` bundles in one transaction.

    About one variant per two bundles (40–20,000), 2–6 components each, 85 % active, 10 %
    draft, 5 % archived, and about 1 % broken on purpose (a deleted or disabled component).
    Every bundle is priced, has its shell and search entry, and passes the integrity check
    (the broken ones only for the reason they were made broken).
    """
    if n_bundles < 0:
        raise ValueError("n_bundles must be ≥ 0")
    if batch_size < 1:
        raise ValueError("batch_size must be ≥ 1")
    rng = random.Random(seed)
    now = timezone.now()
    stamp = connection.ops.adapt_datetimefield_value(now)
    result = SeedResult()
    with transaction.atomic():
        ids = _Ids(
            product=_first_free_id(Product),
            variant=_first_free_id(ProductVariant),
            bundle=_first_free_id(Bundle),
            component=_first_free_id(BundleComponent),
            entry=_first_free_id(SearchEntry),
        )
        products, variants = _plan_products_and_variants(rng, n_bundles, ids.product, ids.variant)
        n_broken = 0 if n_bundles == 0 else max(3, n_bundles // 100)
        broken_at = set(rng.sample(range(n_bundles), min(n_bundles, n_broken)))
        retired = _plan_retired(variants, n_broken, now)
        _insert(
            Product,
            PRODUCT_FIELDS,
            [(p.id, p.name, p.slug, "", False, stamp, stamp) for p in products],
        )
        _insert(
            ProductVariant, VARIANT_FIELDS, [_variant_row(v, stamp) for v in variants + retired]
        )
        # Shell products and variants come after the catalog's own (as the recompute made them).
        ids.product += len(products)
        ids.variant += len(variants) + len(retired)
        to_recompute: list[int] = []
        for start, chunk in _planned_chunks(
            rng, n_bundles, batch_size, ids, variants, retired, broken_at
        ):
            for b in chunk:
                _price(b, now)
                if b.needs_recompute:
                    to_recompute.append(b.id)
            _write_chunk(chunk, ids, stamp)
            result.bundle_ids += [b.id for b in chunk]
            done = start + len(chunk)
            _report(progress, int(done * 100 / n_bundles), f"{done}/{n_bundles} bundles")
        _move_sequences_past_new_ids()
        if connection.vendor == "postgresql":
            # Statistics of the tables as they were (empty) make the recompute's joins nested
            # loops over sequential scans: minutes at 100,000 bundles instead of a second.
            with connection.cursor() as cursor:
                for model in CATALOG_MODELS:
                    cursor.execute(f"ANALYZE {connection.ops.quote_name(model._meta.db_table)}")
        if to_recompute:
            # Broken status and reasons: written by the production recompute, in one place.
            bundles_recompute(bundle_ids=to_recompute)
        # Only the seed's bundles exist (it runs on an empty or just deleted catalog).
        result.broken = Bundle.objects.filter(status=Bundle.Status.BROKEN).count()
    result.bundles = len(result.bundle_ids)
    result.variants = len(variants)
    return result


def _planned_chunks(
    rng: random.Random,
    n_bundles: int,
    batch_size: int,
    ids: _Ids,
    variants: list,
    retired: list,
    broken_at: set[int],
) -> Iterator[tuple[int, list[PlannedBundle]]]:
    """Bundles in chunks of ``batch_size``, planned as they are written (memory stays flat)."""
    for start in range(0, n_bundles, batch_size):
        chunk = []
        for i in range(start, min(n_bundles, start + batch_size)):
            chunk.append(_plan_bundle(rng, i, ids.bundle, variants, retired, i in broken_at))
            ids.bundle += 1
        yield start, chunk


def _move_sequences_past_new_ids() -> None:
    # SQLite's AUTOINCREMENT follows explicit ids by itself; PostgreSQL's sequences do not.
    statements = connection.ops.sequence_reset_sql(no_style(), list(CATALOG_MODELS))
    with connection.cursor() as cursor:
        for sql in statements:
            cursor.execute(sql)


def demo_catalog_delete() -> None:
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
