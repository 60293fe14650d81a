"""Deterministic demo catalog: ``seed_demo --bundles N [--seed S] [--reset]``.

Rows are written with ``bulk_create`` in batches; prices, availability, shells and search
entries are then filled by the bulk recompute, exactly as in production. A few bundles are
broken on purpose (a deleted or disabled component) so the integrity check has work.
"""

from __future__ import annotations

import random
import sys
import time
from decimal import Decimal

from django.core.management.base import BaseCommand, CommandError
from django.core.management.color import no_style
from django.db import connection, transaction

from bundles.models import Bundle, BundleComponent, Product, ProductVariant, SearchEntry
from bundles.services import bundles_recompute

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


def _batches(items: list, size: int):
    for start in range(0, len(items), size):
        yield items[start : start + size]


class Command(BaseCommand):
    help = "Create a deterministic demo catalog of N bundles (skips if bundles exist)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--bundles", type=int, default=200, help="how many bundles")
        parser.add_argument("--seed", type=int, default=42, help="random seed (deterministic)")
        parser.add_argument(
            "--reset",
            action="store_true",
            help="delete the whole catalog (bundles, products, variants, index) first",
        )
        parser.add_argument("--batch-size", type=int, default=2000)

    def handle(self, *args, bundles: int, seed: int, reset: bool, batch_size: int, **options):
        if bundles < 0:
            raise CommandError("--bundles must be ≥ 0")
        if batch_size < 1:
            raise CommandError("--batch-size must be ≥ 1")
        verbosity = options.get("verbosity", 1)
        if Bundle.objects.exists() or ProductVariant.objects.exists():
            if not reset:
                self.stdout.write(
                    f"Catalog already has {Bundle.objects.count()} bundles; skipping "
                    "(use --reset to replace it)."
                )
                return
            self._reset()
        started = time.monotonic()
        rng = random.Random(seed)
        variants = self._create_variants(rng, bundles, batch_size)
        bundle_ids = self._create_bundles(rng, bundles, variants, batch_size)
        created_at = time.monotonic()

        # Progress is news, not an error: stdout, in the terminal's own colour.
        def progress(pct: int, message: str) -> None:
            if verbosity >= 2 or (verbosity >= 1 and pct % 10 == 0 and sys.stdout.isatty()):
                self.stdout.write(f"\r  recompute {pct:3d}% {message}   ", ending="")
                self.stdout.flush()

        result = bundles_recompute(bundle_ids=bundle_ids, batch_size=500, progress=progress)
        if verbosity >= 1 and sys.stdout.isatty():
            self.stdout.write("")
        done = time.monotonic()
        broken = Bundle.objects.filter(status=Bundle.Status.BROKEN).count()
        self.stdout.write(
            self.style.SUCCESS(
                f"Seeded {len(bundle_ids)} bundles over {len(variants)} variants "
                f"({broken} broken on purpose) in {done - started:.1f}s "
                f"(insert {created_at - started:.1f}s, recompute {done - created_at:.1f}s; "
                f"{result['recomputed']} recomputed)."
            )
        )

    def _reset(self) -> None:
        # Plain DELETEs: no per-row signals (which would schedule jobs) and no collector. Then
        # the id sequences restart at 1, so the new catalog has the same ids every time (the
        # README's examples name bundles 1, 12 and 13).
        models = (SearchEntry, BundleComponent, Bundle, ProductVariant, Product)
        sequences = [{"table": m._meta.db_table, "column": m._meta.pk.column} for m in models]
        with transaction.atomic(), connection.cursor() as cursor:
            for model in models:
                cursor.execute(f"DELETE FROM {connection.ops.quote_name(model._meta.db_table)}")
            for sql in connection.ops.sequence_reset_by_name_sql(no_style(), sequences):
                cursor.execute(sql)
        self.stdout.write("Catalog deleted (--reset).")

    def _create_variants(self, rng: random.Random, n_bundles: int, batch_size: int) -> list:
        # Variants are shared: about one per two bundles, between 40 and 20,000.
        n_variants = min(20_000, max(40, n_bundles // 2))
        n_products = max(10, n_variants // 3)
        products = [
            Product(
                name=f"{rng.choice(ADJECTIVES)} {rng.choice(NOUNS)} {i + 1}",
                slug=f"demo-product-{i + 1}",
            )
            for i in range(n_products)
        ]
        for batch in _batches(products, batch_size):
            Product.objects.bulk_create(batch)
        variants = []
        for i in range(n_variants):
            product = products[i % n_products]
            stock = rng.randint(0, 400)
            variants.append(
                ProductVariant(
                    product=product,
                    sku=f"DEMO-{i + 1:06d}",
                    name=f"{product.name} {rng.choice(VARIANT_TRAITS)}",
                    price=Decimal(rng.randint(199, 24999)) / 100,
                    currency="USD",
                    stock_on_hand=stock,
                    allocated=rng.randint(0, min(stock, 20)),
                )
            )
        for batch in _batches(variants, batch_size):
            ProductVariant.objects.bulk_create(batch)
        return variants

    def _create_bundles(
        self, rng: random.Random, n_bundles: int, variants: list, batch_size: int
    ) -> list[int]:
        from django.utils import timezone

        # A few bundles get an extra component that is soft-deleted or disabled: broken on
        # purpose, so the integrity check and the admin have something to show.
        n_broken = 0 if n_bundles == 0 else max(3, n_bundles // 100)
        broken_at = set(rng.sample(range(n_bundles), min(n_bundles, n_broken)))
        now = timezone.now()
        retired = []
        for j in range(min(n_broken, 10)):
            product = variants[j].product
            retired.append(
                ProductVariant(
                    product=product,
                    sku=f"DEMO-RETIRED-{j + 1:03d}",
                    name=f"{product.name} (retired {j + 1})",
                    price=Decimal("9.99"),
                    stock_on_hand=50,
                    enabled=j % 2 == 0,  # even: deleted, odd: disabled
                    deleted_at=now if j % 2 == 0 else None,
                )
            )
        ProductVariant.objects.bulk_create(retired)

        ids: list[int] = []
        for start in range(0, n_bundles, batch_size):
            rows, parts = [], []
            for i in range(start, min(n_bundles, start + batch_size)):
                picked = rng.sample(range(len(variants)), rng.randint(2, 6))
                lines = [(variants[k], rng.choice((1, 1, 1, 2, 2, 3))) for k in picked]
                if i in broken_at:
                    lines[-1] = (retired[i % len(retired)], 1)
                total = sum(v.price * q for v, q in lines)
                roll = rng.random()
                if roll < 0.6:
                    rule, value = "percent_off", Decimal(rng.choice((0, 5, 10, 15, 20, 25)))
                elif roll < 0.85:
                    rule = "amount_off"
                    value = (total * Decimal(rng.randint(5, 20)) / 100).quantize(Decimal("0.01"))
                else:
                    # Mostly a real saving; now and then not (allowed, flagged no_saving).
                    factor = Decimal(rng.choice((70, 80, 90, 95, 105)))
                    rule, value = "fixed_price", (total * factor / 100).quantize(Decimal("0.01"))
                status_roll = rng.random()
                status = (
                    "active"
                    if status_roll < 0.85
                    else "draft"
                    if status_roll < 0.95
                    else "archived"
                )
                theme = rng.choice(THEMES)
                rows.append(
                    Bundle(
                        name=f"{theme} {rng.choice(NOUNS).lower()} bundle {i + 1}",
                        slug=f"demo-bundle-{i + 1:06d}",
                        status=status,
                        pricing_rule=rule,
                        rule_value=value,
                        availability_cap=rng.randint(5, 50) if rng.random() < 0.1 else None,
                    )
                )
                parts.append(lines)
            with transaction.atomic():
                Bundle.objects.bulk_create(rows)
                BundleComponent.objects.bulk_create(
                    [
                        BundleComponent(bundle=b, variant=v, quantity=q)
                        for b, lines in zip(rows, parts, strict=True)
                        for v, q in lines
                    ],
                    batch_size=batch_size,
                )
            ids += [b.pk for b in rows]
        return ids
