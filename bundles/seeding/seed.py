"""Seed and delete the demo catalog: ``demo_catalog_seed`` and ``demo_catalog_delete``.

Every row is planned in Python from one ``random.Random(seed)`` (same seed, same catalog, the
same ids after a reset) and written one statement per table and chunk: PostgreSQL's ``COPY``,
an ``executemany`` elsewhere. Ids are given explicitly so each bundle's shell product, shell
variant and search entry can be written in the same pass as the bundle (a shell's SKU names
its bundle's id); the sequences are moved past them afterwards, as ``loaddata`` does.

Prices and availability come from the pure rules of ``pricing``; shells and entries mirror
them the way the engine (``bundles.engine``) and ``search.entry_values`` do. The few bundles
with a problem by design (a deleted or disabled component) then go through the production
recompute, which writes their broken status and reasons; nothing else is rewritten.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from django.db import connection, transaction
from django.utils import timezone

from bundles.models import Bundle, BundleComponent, Product, ProductVariant, SearchEntry
from bundles.seeding.catalog import (
    NextIds,
    plan_products_and_variants,
    plan_retired,
    planned_chunks,
    price_planned,
)
from bundles.seeding.loader import (
    PRODUCT_FIELDS,
    VARIANT_FIELDS,
    analyze_catalog,
    catalog_delete,
    first_free_id,
    insert_rows,
    move_sequences_past_new_ids,
    variant_row,
    write_chunk,
)
from bundles.services import bundles_recompute

Progress = Callable[[int, str], None] | None


@dataclass
class SeedResult:
    bundles: int = 0
    variants: int = 0  # the catalog's shared variants (not the retired ones, not shells)
    broken: int = 0
    bundle_ids: list[int] = field(default_factory=list)


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
        ids = NextIds(
            product=first_free_id(Product),
            variant=first_free_id(ProductVariant),
            bundle=first_free_id(Bundle),
            component=first_free_id(BundleComponent),
            entry=first_free_id(SearchEntry),
        )
        products, variants = plan_products_and_variants(rng, n_bundles, ids.product, ids.variant)
        n_broken = 0 if n_bundles == 0 else max(3, n_bundles // 100)
        broken_at = set(rng.sample(range(n_bundles), min(n_bundles, n_broken)))
        retired = plan_retired(variants, n_broken, now)
        insert_rows(
            Product,
            PRODUCT_FIELDS,
            [(p.id, p.name, p.slug, "", False, stamp, stamp) for p in products],
        )
        insert_rows(
            ProductVariant, VARIANT_FIELDS, [variant_row(v, stamp) for v in variants + retired]
        )
        # Shell products and variants come after the catalog's own (as the recompute made them).
        ids.product += len(products)
        ids.variant += len(variants) + len(retired)
        to_recompute: list[int] = []
        for start, chunk in planned_chunks(
            rng, n_bundles, batch_size, ids, variants, retired, broken_at
        ):
            for b in chunk:
                price_planned(b, now)
                if b.needs_recompute:
                    to_recompute.append(b.id)
            write_chunk(chunk, ids, stamp)
            result.bundle_ids += [b.id for b in chunk]
            done = start + len(chunk)
            _report(progress, int(done * 100 / n_bundles), f"{done}/{n_bundles} bundles")
        move_sequences_past_new_ids()
        analyze_catalog()
        if to_recompute:
            # Broken status and reasons: written by the production recompute, in one place.
            bundles_recompute(bundle_ids=to_recompute)
        # Only the seed's bundles exist (it runs on an empty or just deleted catalog).
        result.broken = Bundle.objects.filter(status=Bundle.Status.BROKEN).count()
    result.bundles = len(result.bundle_ids)
    result.variants = len(variants)
    return result


def demo_catalog_delete() -> None:
    """Delete the whole catalog and restart its id sequences at 1 (``loader.catalog_delete``):
    the new catalog gets the same ids every time (the README's examples name bundles 1, 12, 13).
    """
    catalog_delete()
