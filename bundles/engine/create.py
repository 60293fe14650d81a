"""Creating what a bundle's write needs and lacks: its shell product and variant (re-linking
an orphaned one that carries its slug or SKU), and its search entry. Rare (a bundle inserted
in bulk, a shell deleted by hand): a few bulk statements per batch, then the engine reads
those bundles again and writes them like any other."""

from __future__ import annotations

from collections.abc import Sequence

from ..integrity import ACTIVE, shell_sku, shell_slug
from ..models import Bundle, Product, ProductVariant, SearchEntry
from ..search import refresh_documents
from .evaluate import Outcome, entry_body
from .write import bulk_update


def create_missing_shells(outcomes: Sequence[Outcome]) -> set[int]:
    """Give these bundles (``Outcome.shell_missing``) a shell product and variant, with the
    outcome's values; returns their ids."""
    if not outcomes:
        return set()
    rows = {o.row.id: o.row for o in outcomes}
    product_of = {
        i: r.shell_product_id for i, r in rows.items() if r.shell_product_id is not None
    }  # completed below for the rest (``need_product``)
    need_product = {shell_slug(i): r for i, r in rows.items() if r.shell_product_id is None}
    if need_product:
        found = dict(Product.objects.filter(slug__in=need_product).values_list("slug", "pk"))
        new = [
            Product(name=r.name, slug=slug, is_bundle_shell=True)
            for slug, r in need_product.items()
            if slug not in found
        ]
        Product.objects.bulk_create(new)
        found.update((p.slug, p.pk) for p in new)
        product_of.update((r.id, found[slug]) for slug, r in need_product.items())
    variant_of = {
        i: r.shell_variant_id for i, r in rows.items() if r.shell_variant_id is not None
    }  # completed below for the rest (``need_variant``)
    need_variant = {shell_sku(o.row.id): o for o in outcomes if o.row.shell_variant_id is None}
    if need_variant:
        found_variants = dict(
            ProductVariant.objects.filter(sku__in=need_variant).values_list("sku", "pk")
        )
        new_variants = [
            ProductVariant(
                product_id=product_of[o.row.id],
                sku=sku,
                name=o.row.name,
                price=o.price if o.price is not None else 0,
                currency=o.row.currency,
                stock_on_hand=o.availability,
                allocated=0,
                enabled=o.status == ACTIVE,
                deleted_at=None,
            )
            for sku, o in need_variant.items()
            if sku not in found_variants
        ]
        ProductVariant.objects.bulk_create(new_variants)
        found_variants.update((v.sku, v.pk) for v in new_variants)
        variant_of.update((o.row.id, found_variants[sku]) for sku, o in need_variant.items())
    bulk_update(
        Bundle,
        ["shell_product", "shell_variant"],
        [[product_of[i], variant_of[i], i] for i in rows],
    )
    return set(rows)


def create_missing_entries(outcomes: Sequence[Outcome]) -> None:
    """Give these bundles (no search entry yet) an entry with the outcome's values."""
    if not outcomes:
        return
    SearchEntry.objects.bulk_create(
        SearchEntry(
            bundle_id=o.row.id,
            title=o.row.name,
            sku=o.row.sv_sku or shell_sku(o.row.id),
            body=entry_body(o.row, o.words),
            price=o.price,
            availability=o.availability,
            status=o.status,
        )
        for o in outcomes
    )
    refresh_documents([o.row.id for o in outcomes])
