"""Test data for the catalog: small factory functions (bundles go through the real service)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from decimal import Decimal

from bundles import services
from bundles.models import Bundle, Product, ProductVariant

_seq = itertools.count(1)


def make_product(*, name: str | None = None) -> Product:
    n = next(_seq)
    return Product.objects.create(name=name or f"Product {n}", slug=f"product-{n}")


def make_variant(
    *,
    name: str | None = None,
    sku: str | None = None,
    price: str | Decimal = "10.00",
    currency: str = "USD",
    stock: int = 100,
    allocated: int = 0,
    enabled: bool = True,
    product: Product | None = None,
) -> ProductVariant:
    n = next(_seq)
    product = product or make_product(name=f"{name or 'Product'} {n}")
    return ProductVariant.objects.create(
        product=product,
        sku=sku or f"SKU-{n:05d}",
        name=name or f"Variant {n}",
        price=Decimal(str(price)),
        currency=currency,
        stock_on_hand=stock,
        allocated=allocated,
        enabled=enabled,
    )


def make_bundle(
    *,
    components: Sequence[tuple[ProductVariant, int]] | None = None,
    name: str | None = None,
    status: str = "active",
    pricing_rule: str = "percent_off",
    rule_value: str | Decimal = "0",
    currency: str = "USD",
    availability_cap: int | None = None,
) -> Bundle:
    """A bundle created through ``bundle_create`` (shell, price and search entry included)."""
    if components is None:
        components = [(make_variant(currency=currency), 1), (make_variant(currency=currency), 2)]
    n = next(_seq)
    return services.bundle_create(
        name=name or f"Bundle {n}",
        components=[(v.pk, q) for v, q in components],
        pricing_rule=pricing_rule,
        rule_value=Decimal(str(rule_value)),
        currency=currency,
        status=status,
        availability_cap=availability_cap,
    )
