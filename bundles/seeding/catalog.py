"""The demo catalog, planned in plain Python values (no model instances, no queries).

Every name, price, stock level, pricing rule and status comes from one ``random.Random(seed)``:
the same seed plans the same catalog, with the same ids after a reset. Prices and availability
come from the pure rules of ``bundles.pricing``. ``bundles.seeding.loader`` writes the plan.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import NamedTuple

from bundles import pricing

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
class NextIds:
    """Where each table's new ids start, and the next free one as rows are planned."""

    product: int
    variant: int
    bundle: int
    component: int
    entry: int


def plan_products_and_variants(
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


def plan_retired(variants: list[PlannedVariant], n_broken: int, now: datetime) -> list:
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


def plan_bundle(
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


def price_planned(bundle: PlannedBundle, now: datetime) -> None:
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


def planned_chunks(
    rng: random.Random,
    n_bundles: int,
    batch_size: int,
    ids: NextIds,
    variants: list,
    retired: list,
    broken_at: set[int],
) -> Iterator[tuple[int, list[PlannedBundle]]]:
    """Bundles in chunks of ``batch_size``, planned as they are written (memory stays flat)."""
    for start in range(0, n_bundles, batch_size):
        chunk = []
        for i in range(start, min(n_bundles, start + batch_size)):
            chunk.append(plan_bundle(rng, i, ids.bundle, variants, retired, i in broken_at))
            ids.bundle += 1
        yield start, chunk
