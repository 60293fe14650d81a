"""Services: create (rules at the door), recompute one and many, reindex, status."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from bundles import services
from bundles.errors import BundleError, BundleNotFound
from bundles.models import Bundle, BundleComponent, Product, ProductVariant, SearchEntry
from tests.factories import make_bundle, make_variant

pytestmark = pytest.mark.django_db


def raw_bundles(n: int, variants: list[ProductVariant], prefix: str = "raw") -> list[int]:
    """n active bundles inserted in bulk, as an import would: no shell, no price yet."""
    rows = Bundle.objects.bulk_create(
        Bundle(name=f"{prefix} {i}", slug=f"{prefix}-{i}", status="active", rule_value=Decimal(10))
        for i in range(n)
    )
    BundleComponent.objects.bulk_create(
        BundleComponent(bundle=b, variant=variants[(i + k) % len(variants)], quantity=k + 1)
        for i, b in enumerate(rows)
        for k in range(2)
    )
    return [b.pk for b in rows]


# --- create --------------------------------------------------------------------------------


def test_create_prices_the_bundle_and_builds_its_shell_and_search_entry():
    camera = make_variant(name="Camera", price="100.05", stock=10)
    battery = make_variant(name="Battery", price="9.99", stock=7, allocated=1)

    bundle = services.bundle_create(
        name="Starter kit",
        components=[(camera.pk, 1), (battery.pk, 2)],
        rule_value=Decimal("10"),
        status="active",
    )

    assert bundle.computed_price == Decimal("108.03")
    assert bundle.computed_availability == 3
    assert bundle.slug == "starter-kit"
    shell = bundle.shell_variant
    assert shell.product == bundle.shell_product and shell.product.is_bundle_shell
    assert (shell.price, shell.stock_on_hand, shell.enabled) == (Decimal("108.03"), 3, True)
    entry = SearchEntry.objects.get(bundle=bundle)
    assert entry.title == "Starter kit" and entry.sku == shell.sku and "Battery" in entry.body


def test_a_draft_bundles_shell_is_not_enabled():
    bundle = make_bundle(status="draft")
    assert bundle.shell_variant.enabled is False


@pytest.mark.parametrize(
    ("components", "code"),
    [
        (lambda v: [(v.pk, 0)], "invalid_quantity"),
        (lambda v: [(v.pk, 1001)], "invalid_quantity"),
        (lambda v: [(v.pk, 1), (v.pk, 2)], "duplicate_variant"),
        (lambda v: [(999_999, 1)], "variant_not_found"),
    ],
)
def test_create_refuses_bad_components_and_writes_nothing(components, code):
    v = make_variant()
    before = (Bundle.objects.count(), Product.objects.count(), ProductVariant.objects.count())
    with pytest.raises(BundleError) as exc:
        services.bundle_create(name="Bad", components=components(v))
    assert exc.value.code == code
    after = (Bundle.objects.count(), Product.objects.count(), ProductVariant.objects.count())
    assert after == before


def test_a_shell_variant_can_never_be_a_component():
    inner = make_bundle()
    with pytest.raises(BundleError, match="can't contain a bundle") as exc:
        services.bundle_create(name="Outer", components=[(inner.shell_variant_id, 1)])
    assert exc.value.code == "nested_bundle"


def test_an_active_bundle_needs_a_component():
    with pytest.raises(BundleError) as exc:
        services.bundle_create(name="Empty", components=[], status="active")
    assert exc.value.code == "no_components"
    assert not Bundle.objects.exists()


def test_create_refuses_percent_above_100_and_other_currencies():
    v = make_variant()
    with pytest.raises(BundleError) as exc:
        services.bundle_create(name="X", components=[(v.pk, 1)], rule_value=Decimal("101"))
    assert exc.value.code == "invalid_rule"
    with pytest.raises(BundleError) as exc:
        services.bundle_create(name="X", components=[(v.pk, 1)], currency="EUR")
    assert exc.value.code == "currency_mismatch"


# --- recompute one -------------------------------------------------------------------------


def test_recompute_follows_a_stock_change_into_bundle_shell_and_index():
    v = make_variant(stock=10)
    bundle = make_bundle(components=[(v, 2)])
    assert bundle.computed_availability == 5
    ProductVariant.objects.filter(pk=v.pk).update(stock_on_hand=4)

    result = services.bundle_recompute(bundle_id=bundle.pk)

    assert result["changed"] is True and result["availability"] == 2
    bundle.refresh_from_db()
    assert bundle.shell_variant.stock_on_hand == 2
    assert SearchEntry.objects.get(bundle=bundle).availability == 2
    assert services.bundle_recompute(bundle_id=bundle.pk)["changed"] is False


def test_recompute_reports_progress_in_the_original_steps():
    bundle = make_bundle()
    seen = []
    services.bundle_recompute(bundle_id=bundle.pk, progress=lambda pct, msg: seen.append(pct))
    assert seen == [25, 50, 75, 100]


def test_recompute_of_a_vanished_bundle_raises_not_found():
    with pytest.raises(BundleNotFound) as exc:
        services.bundle_recompute(bundle_id=424242)
    assert exc.value.ids == [424242]


def test_recompute_result_shape():
    bundle = make_bundle()
    result = services.bundle_recompute(bundle_id=bundle.pk, force=True, update_search=False)
    assert set(result) == {"bundle_id", "price", "availability", "status", "changed"}
    assert result["price"] == "30.00"  # two components of 10.00 × 1 and × 2


# --- recompute many ------------------------------------------------------------------------


def test_recompute_of_500_bundles_runs_a_bounded_number_of_queries(
    django_assert_max_num_queries,
):
    # Given 500 bulk-inserted bundles (no shells, no prices, no index entries)
    variants = [make_variant(stock=100 + i) for i in range(10)]
    ids = raw_bundles(500, variants)

    # When they are recomputed in one batch, then the query count is a constant (a handful
    # of bulk statements), not one or more per bundle.
    with django_assert_max_num_queries(60):
        result = services.bundles_recompute(bundle_ids=ids, batch_size=500)
    changes = result.pop("changes")
    assert result == {"recomputed": 500, "changed": 500, "missing": []}
    assert len(changes) == 500  # each with its old -> new price and availability
    assert SearchEntry.objects.count() == 500
    assert not Bundle.objects.filter(shell_variant__isnull=True).exists()

    # And again after every component's stock changed.
    ProductVariant.objects.filter(pk__in=[v.pk for v in variants]).update(stock_on_hand=3)
    with django_assert_max_num_queries(60):
        result = services.bundles_recompute(bundle_ids=ids, batch_size=500)
    assert result["changed"] == 500
    # quantities 1 and 2 of a stock of 3: min(3, 1) whole bundles
    assert set(Bundle.objects.values_list("computed_availability", flat=True)) == {1}


def test_recompute_query_count_does_not_grow_with_bundle_count():
    variants = [make_variant() for _ in range(10)]
    few_ids = raw_bundles(5, variants, prefix="few")
    many_ids = raw_bundles(400, variants, prefix="many")

    with CaptureQueriesContext(connection) as few:
        services.bundles_recompute(bundle_ids=few_ids)
    with CaptureQueriesContext(connection) as many:
        services.bundles_recompute(bundle_ids=many_ids)

    # 80× the bundles: the only difference is bulk statements split at the driver's
    # parameter limit (SQLite: 999 per statement), never a query per bundle.
    assert len(many) < len(few) + 25
    assert len(many) < 60


def test_recompute_many_reports_missing_ids_and_progress():
    bundle = make_bundle()
    seen = []
    result = services.bundles_recompute(
        bundle_ids=[bundle.pk, 777777], progress=lambda pct, msg: seen.append(pct)
    )
    assert result["missing"] == [777777] and result["recomputed"] == 1
    assert seen[-1] == 100


# --- reindex -------------------------------------------------------------------------------


def test_reindex_rebuilds_a_lost_entry():
    bundle = make_bundle(name="Coffee kit")
    SearchEntry.objects.all().delete()
    assert services.bundles_reindex(bundle_ids=[bundle.pk]) == 1
    assert SearchEntry.objects.get(bundle=bundle).title == "Coffee kit"


def test_reindex_all_counts_entries():
    for _ in range(3):
        make_bundle()
    assert services.bundles_reindex() == 3
    assert services.bundles_reindex(bundle_ids=[]) == 0


# --- status --------------------------------------------------------------------------------


def test_set_status_activates_and_refuses_a_bundle_without_components():
    draft = make_bundle(status="draft")
    empty = Bundle.objects.create(name="Empty", slug="empty", status="draft")

    result = services.bundles_set_status(bundle_ids=[draft.pk, empty.pk], status="active")

    assert result["updated"] == 1
    assert [e["id"] for e in result["errors"]] == [empty.pk]
    draft.refresh_from_db()
    assert draft.status == "active" and draft.shell_variant.enabled is True
    assert SearchEntry.objects.get(bundle=draft).status == "active"


def test_archive_disables_the_shell():
    bundle = make_bundle(status="active")
    services.bundles_set_status(bundle_ids=[bundle.pk], status="archived")
    bundle.refresh_from_db()
    assert bundle.status == "archived" and bundle.shell_variant.enabled is False


def test_broken_is_not_a_status_to_set():
    bundle = make_bundle()
    with pytest.raises(BundleError):
        services.bundles_set_status(bundle_ids=[bundle.pk], status="broken")


# --- the stale rule, as the check uses it ------------------------------------------------------


def test_check_writes_a_bundle_whose_stored_broken_status_is_stale():
    # Given a bundle with nothing wrong, stored as broken with an old reason
    bundle = make_bundle(name="Healed")
    Bundle.objects.filter(pk=bundle.pk).update(
        status=Bundle.Status.BROKEN,
        status_before_broken=Bundle.Status.ACTIVE,
        broken_reasons=[{"code": "component_deleted", "message": "old", "fixable": False}],
    )
    # When checked without fixing, it is not "ok": it needs a fix
    looked = services.bundles_check(scope=[bundle.pk], fix=False)
    assert (looked["ok"], looked["needs_fix"], looked["broken"]) == (0, 1, 0)
    bundle.refresh_from_db()
    assert bundle.status == Bundle.Status.BROKEN  # left alone
    # When checked with fixing, it returns to the status it had, its reasons cleared
    fixed = services.bundles_check(scope=[bundle.pk], fix=True)
    assert (fixed["ok"], fixed["fixed"]) == (0, 1)
    bundle.refresh_from_db()
    assert bundle.status == Bundle.Status.ACTIVE and bundle.broken_reasons == []


def test_check_writes_a_bundle_whose_status_before_broken_is_stale():
    bundle = make_bundle(name="Leftover")
    Bundle.objects.filter(pk=bundle.pk).update(status_before_broken=Bundle.Status.DRAFT)
    looked = services.bundles_check(scope=[bundle.pk], fix=False)
    assert (looked["ok"], looked["needs_fix"]) == (0, 1)
    services.bundles_check(scope=[bundle.pk], fix=True)
    bundle.refresh_from_db()
    assert bundle.status == Bundle.Status.ACTIVE and bundle.status_before_broken == ""


def test_a_recompute_that_changes_nothing_stamps_its_time_and_touches_nothing_else():
    # Given a bundle that is right, and one whose price a component change moved
    right, moved = make_bundle(), make_bundle()
    before = {b.pk: Bundle.objects.get(pk=b.pk) for b in (right, moved)}
    ProductVariant.objects.filter(pk=moved.components.first().variant_id).update(
        price=Decimal("99.00")
    )
    # When both are recomputed (set-based)
    result = services.bundles_recompute(bundle_ids=[right.pk, moved.pk])
    # Then both carry the new recompute time, only the moved one changed
    after = {b.pk: Bundle.objects.get(pk=b.pk) for b in (right, moved)}
    assert result["changed"] == 1 and set(result["changes"]) == {str(moved.pk)}
    for pk in (right.pk, moved.pk):
        assert after[pk].last_recomputed_at > before[pk].last_recomputed_at
    assert after[right.pk].updated_at == before[right.pk].updated_at
    assert after[moved.pk].updated_at > before[moved.pk].updated_at
    assert after[right.pk].computed_price == before[right.pk].computed_price


def test_recomputing_one_bundle_is_a_handful_of_queries(django_assert_max_num_queries):
    # Given a bundle whose component's stock changed (one bundle is a batch of one)
    v = make_variant(stock=10)
    bundle = make_bundle(components=[(v, 2)])
    ProductVariant.objects.filter(pk=v.pk).update(stock_on_hand=4)
    # When it is recomputed: savepoint, 2 reads, the bundle, its shell, its entry, release
    with django_assert_max_num_queries(8):
        assert services.bundle_recompute(bundle_id=bundle.pk)["changed"] is True
    # and again with nothing to change: only its time is stamped
    with django_assert_max_num_queries(6):
        assert services.bundle_recompute(bundle_id=bundle.pk)["changed"] is False
