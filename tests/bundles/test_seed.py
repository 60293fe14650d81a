"""seed_demo: deterministic demo data, a few bundles broken on purpose, skip unless --reset."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.db.models import Count

from bundles.models import Bundle, BundleComponent, Product, ProductVariant, SearchEntry
from bundles.services import bundles_check

pytestmark = pytest.mark.django_db


def seed(*args: str) -> str:
    out = StringIO()
    call_command("seed_demo", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def snapshot() -> list[tuple]:
    return list(
        Bundle.objects.order_by("slug").values_list(
            "slug",
            "name",
            "status",
            "pricing_rule",
            "rule_value",
            "computed_price",
            "computed_availability",
        )
    )


def test_seed_creates_priced_indexed_bundles_of_2_to_6_components():
    seed("--bundles", "60", "--seed", "7")

    assert Bundle.objects.count() == 60
    counts = Bundle.objects.annotate(n=Count("components")).values_list("n", flat=True)
    assert min(counts) >= 2 and max(counts) <= 6
    assert SearchEntry.objects.count() == 60
    assert Product.objects.filter(is_bundle_shell=True).count() == 60
    # Variants are shared between bundles.
    distinct = BundleComponent.objects.values("variant").distinct().count()
    assert distinct < BundleComponent.objects.count()
    assert not Bundle.objects.exclude(status="broken").filter(computed_price__isnull=True).exists()


def test_seed_breaks_a_few_bundles_on_purpose_and_the_check_finds_them():
    seed("--bundles", "60")
    broken = Bundle.objects.filter(status="broken")
    assert 1 <= broken.count() <= 6
    result = bundles_check(scope="all")
    assert result["broken"] == broken.count()
    assert result["ok"] == 60 - broken.count()
    codes = {r["code"] for b in result["broken_bundles"] for r in b["reasons"]}
    assert codes <= {"component_deleted", "component_disabled"} and codes


def test_seed_is_deterministic():
    seed("--bundles", "25", "--seed", "3")
    first = snapshot()
    seed("--bundles", "25", "--seed", "3", "--reset")
    assert snapshot() == first


def test_seed_skips_when_the_catalog_has_data():
    seed("--bundles", "5")
    out = seed("--bundles", "50")
    assert "skipping" in out
    assert Bundle.objects.count() == 5


def ids() -> dict[str, list]:
    return {
        "bundles": list(Bundle.objects.order_by("pk").values_list("pk", "slug")),
        "variants": list(ProductVariant.objects.order_by("pk").values_list("pk", "sku")),
        "products": list(Product.objects.order_by("pk").values_list("pk", "slug")),
    }


def test_reset_gives_the_same_ids_every_time():
    # Given a catalog (whose ids may start anywhere: other tests used the sequences)
    seed("--bundles", "20")
    # When it is replaced with --reset, twice
    seed("--bundles", "20", "--reset")
    first = ids()
    seed("--bundles", "20", "--reset")
    # Then the ids are the same each time, starting at 1 (the README's examples name 1, 12, 13)
    assert ids() == first
    assert first["bundles"][0] == (1, "demo-bundle-000001")
    assert first["variants"][0] == (1, "DEMO-000001")
    assert first["products"][0] == (1, "demo-product-1")
