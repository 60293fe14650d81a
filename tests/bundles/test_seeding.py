"""bundles.seeding: the set-based demo catalog is consistent, equals what the per-bundle seed
wrote, costs a bounded number of statements per chunk, and changes nothing on bad input.

Runs on SQLite and on PostgreSQL (COPY, explicit ids, sequences moved past them).
"""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import IntegrityError
from django.db.models import Case, F, Value, When

from bundles.integrity import FIXABLE_CODES
from bundles.models import Bundle, BundleComponent, Product, ProductVariant, SearchEntry
from bundles.search import uses_postgres_fts
from bundles.seeding import demo_catalog_delete, demo_catalog_seed
from bundles.selectors import bundle_search
from bundles.services import bundle_create, bundles_check, bundles_recompute

pytestmark = pytest.mark.django_db

# sha256 of ``canonical_dump()`` after the per-bundle seed (seed_demo before it was set-based,
# commit 01a8444) ran ``seed_demo --bundles N --seed S --reset``; the same on SQLite and
# PostgreSQL. Sizes: (150, 11) → 175 products, 228 variants, 599 components;
# (240, 42) → 280 products, 363 variants, 967 components.
PER_BUNDLE_SEED_DIGESTS = {
    (150, 11): "5cc3669b5772ab029a1ef8e93bdfbbe157d3835bdce896f343edafde344fa97c",
    (240, 42): "fa560b0eacc3d29bddebdd469b7360ff720cf6a1890894e29695f6b5c10b8b70",
}


def seed(*args: str) -> str:
    out = StringIO()
    call_command("seed_demo", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def _norm(value):
    if isinstance(value, Decimal):
        return str(value.quantize(Decimal("0.0001")))
    if hasattr(value, "tzinfo"):  # timestamps differ run to run; whether one is set does not
        return "set"
    return value


def canonical_dump() -> dict[str, list[list]]:
    """Every catalog row by id, every column but timestamps and the tsvector."""
    tables = {
        "products": Product.objects.values_list(
            "pk", "name", "slug", "description", "is_bundle_shell"
        ),
        "variants": ProductVariant.objects.values_list(
            "pk",
            "product_id",
            "sku",
            "name",
            "price",
            "currency",
            "stock_on_hand",
            "allocated",
            "enabled",
            "deleted_at",
        ),  # fmt: skip
        "bundles": Bundle.objects.values_list(
            "pk",
            "name",
            "slug",
            "status",
            "status_before_broken",
            "pricing_rule",
            "rule_value",
            "currency",
            "availability_cap",
            "valid_from",
            "valid_to",
            "computed_price",
            "computed_availability",
            "no_saving",
            "broken_reasons",
            "shell_product_id",
            "shell_variant_id",
            "last_recomputed_at",
        ),  # fmt: skip
        "components": BundleComponent.objects.values_list(
            "pk", "bundle_id", "variant_id", "quantity"
        ),
        "entries": SearchEntry.objects.values_list(
            "pk", "bundle_id", "title", "sku", "body", "price", "availability", "status"
        ),
    }
    return {
        name: [[_norm(v) for v in row] for row in qs.order_by("pk")] for name, qs in tables.items()
    }


def digest(dump: dict) -> str:
    return hashlib.sha256(json.dumps(dump, sort_keys=True, default=str).encode()).hexdigest()


@pytest.mark.parametrize(("bundles", "seed_value"), sorted(PER_BUNDLE_SEED_DIGESTS))
def test_seed_writes_exactly_the_rows_the_per_bundle_seed_wrote(bundles, seed_value):
    # Given the digest of what the old seed (rows, then the per-bundle recompute) wrote
    # When the set-based seed writes the same size and seed, ids restarted
    seed("--bundles", str(bundles), "--seed", str(seed_value), "--reset")
    dump = canonical_dump()
    # Then every row, id and derived value is the same
    assert len(dump["bundles"]) == bundles
    assert digest(dump) == PER_BUNDLE_SEED_DIGESTS[(bundles, seed_value)]


def derived_state() -> dict[str, tuple]:
    """What a recompute derives, per bundle slug: bundle fields, shell and search entry."""
    state = {}
    bundles = Bundle.objects.select_related("shell_product", "shell_variant", "search_entry")
    for b in bundles:
        p, v, e = b.shell_product, b.shell_variant, b.search_entry
        state[b.slug] = (
            b.status,
            b.status_before_broken,
            b.broken_reasons,
            b.computed_price,
            b.computed_availability,
            b.no_saving,
            (p.name, p.slug, p.is_bundle_shell, v.product_id == p.pk),
            (v.sku, v.name, v.price, v.currency, v.stock_on_hand, v.allocated, v.enabled),
            v.deleted_at,
            (e.title, e.sku, e.body, e.price, e.availability, e.status),
            e.document if uses_postgres_fts() else None,
        )
    return state


def forget_derived_values() -> list[int]:
    """The catalog as the old seed left it before its recompute: no shells, no entries, no
    computed values, each bundle in the status it was created with."""
    SearchEntry.objects.all().delete()
    shells = list(Bundle.objects.values_list("shell_product_id", "shell_variant_id"))
    Bundle.objects.update(
        shell_product=None,
        shell_variant=None,
        computed_price=None,
        computed_availability=0,
        no_saving=False,
        status=Case(
            When(status=Bundle.Status.BROKEN, then=F("status_before_broken")),
            default=F("status"),
        ),
        status_before_broken=Value(""),
        broken_reasons=[],
        last_recomputed_at=None,
    )
    ProductVariant.objects.filter(pk__in=[v for _, v in shells]).delete()
    Product.objects.filter(pk__in=[p for p, _ in shells]).delete()
    return list(Bundle.objects.order_by("pk").values_list("pk", flat=True))


def test_seeded_values_equal_what_the_production_recompute_derives():
    # Given a seeded catalog (several chunks)
    seed("--bundles", "180", "--seed", "5", "--batch-size", "50")
    seeded = derived_state()
    # When shells, entries and computed values are dropped and the recompute derives them
    ids = forget_derived_values()
    bundles_recompute(bundle_ids=ids)
    # Then it derives exactly what the seed wrote (tsvector included on PostgreSQL)
    assert derived_state() == seeded
    assert sum(1 for s in seeded.values() if s[0] == Bundle.Status.BROKEN) >= 1


def test_a_seeded_catalog_passes_the_integrity_check_but_for_the_bundles_broken_on_purpose():
    # Given a seeded catalog of several chunks
    seed("--bundles", "400", "--seed", "9", "--batch-size", "120")
    with_reasons = Bundle.objects.exclude(broken_reasons=[])
    # When the whole catalog is checked
    result = bundles_check(scope="all")
    # Then nothing drifted and no shell or entry is off: every bundle is ok, except the ones
    # broken on purpose, for that reason only
    assert result["checked"] == 400
    assert result["errors"] == 0 and result["needs_fix"] == 0 and result["fixed"] == 0
    assert result["broken"] == with_reasons.count() >= 4
    assert result["ok"] == 400 - result["broken"]
    codes = {r["code"] for b in result["broken_bundles"] for r in b["reasons"]}
    assert codes <= {"component_deleted", "component_disabled"} and codes
    assert not codes & FIXABLE_CODES
    # and a fix finds nothing to fix
    assert bundles_check(scope="all", fix=True)["fixed"] == 0


def test_seeded_bundles_are_found_by_search_on_either_database():
    seed("--bundles", "60", "--seed", "2")
    bundle = Bundle.objects.filter(status=Bundle.Status.ACTIVE).order_by("pk").first()
    component = bundle.components.order_by("pk").first().variant
    assert bundle.pk in {e.bundle_id for e in bundle_search(term=component.sku)}
    if uses_postgres_fts():
        assert not SearchEntry.objects.filter(document__isnull=True).exists()


def test_seeding_costs_a_bounded_number_of_statements_per_chunk(django_assert_max_num_queries):
    # 1,000 bundles in 10 chunks: a handful of statements each (one INSERT or COPY per table,
    # one tsvector UPDATE), plus a fixed few (ids, sequences, statistics, the broken ones'
    # recompute); never one per bundle.
    with django_assert_max_num_queries(10 * 6 + 45):
        result = demo_catalog_seed(n_bundles=1000, seed=1, batch_size=100)
    assert result.bundles == 1000
    assert BundleComponent.objects.count() >= 2000


def test_new_rows_after_a_seed_get_fresh_ids():
    # Given a seeded catalog whose ids were given explicitly
    seed("--bundles", "30")
    highest = Bundle.objects.order_by("-pk").values_list("pk", flat=True).first()
    parts = list(ProductVariant.objects.filter(sku__startswith="DEMO-0").order_by("pk")[:2])
    # When a bundle is created the ordinary way
    created = bundle_create(name="After the seed", components=[(parts[0].pk, 1), (parts[1].pk, 2)])
    # Then the sequences had moved past the seed's ids (no collision)
    assert created.pk == highest + 1
    assert created.shell_variant_id and created.search_entry


def test_without_reset_ids_continue_after_the_ones_used_before():
    # Given a catalog deleted by hand (no --reset): its ids are not reused
    seed("--bundles", "10")
    before = Bundle.objects.order_by("-pk").values_list("pk", flat=True).first()
    SearchEntry.objects.all().delete()
    Bundle.objects.all().delete()
    BundleComponent.objects.all().delete()
    ProductVariant.objects.all().delete()
    Product.objects.all().delete()
    # When it is seeded again
    seed("--bundles", "10")
    # Then the new ids start after the old ones
    assert Bundle.objects.order_by("pk").values_list("pk", flat=True).first() == before + 1
    assert bundles_check(scope="all")["needs_fix"] == 0


def test_a_seed_that_fails_half_way_changes_nothing():
    # Given a product that holds the slug the seed's first product needs (no variants, so
    # the seed does not skip)
    Product.objects.create(name="In the way", slug="demo-product-1")
    # When the seed runs
    with pytest.raises(IntegrityError):
        demo_catalog_seed(n_bundles=50, seed=1)
    # Then nothing of it was written
    assert Product.objects.count() == 1
    assert not Bundle.objects.exists() and not ProductVariant.objects.exists()
    assert not SearchEntry.objects.exists()


@pytest.mark.parametrize("args", [["--bundles", "-1"], ["--batch-size", "0"]])
def test_bad_sizes_are_refused_and_change_nothing(args):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError):
        seed(*args)
    with pytest.raises(ValueError):
        demo_catalog_seed(n_bundles=-1)
    assert not Bundle.objects.exists() and not Product.objects.exists()


def test_reset_restarts_the_ids_even_when_the_catalog_is_already_empty():
    # Given sequences moved on by a catalog deleted by hand
    seed("--bundles", "5")
    Bundle.objects.all().delete()
    # When seeding with --reset
    seed("--bundles", "5", "--reset")
    # Then ids start at 1 again
    assert Bundle.objects.order_by("pk").values_list("pk", flat=True).first() == 1


def test_delete_empties_the_catalog_and_restarts_ids():
    seed("--bundles", "15")
    demo_catalog_delete()
    assert not Product.objects.exists() and not SearchEntry.objects.exists()
    seed("--bundles", "15")
    assert Bundle.objects.order_by("pk").values_list("pk", flat=True).first() == 1
