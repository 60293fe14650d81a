"""validate_bundle_integrity: one test per code, fixing, broken status and its way back."""

from __future__ import annotations

from decimal import Decimal

import pytest

from bundles import integrity, services
from bundles.errors import BundleNotFound
from bundles.models import Bundle, BundleComponent, Product, ProductVariant, SearchEntry
from bundles.selectors import validate_bundle_integrity
from tests.factories import make_bundle, make_variant

pytestmark = pytest.mark.django_db


def load(bundle: Bundle) -> Bundle:
    return Bundle.objects.get(pk=bundle.pk)


def codes(bundle: Bundle) -> list[str]:
    return [i.code for i in validate_bundle_integrity(load(bundle))]


def fix(bundle: Bundle) -> dict:
    return services.bundles_check(scope=[bundle.pk], fix=True)


def test_a_fresh_bundle_has_no_issues():
    bundle = make_bundle()
    assert codes(bundle) == []


# --- unfixable codes -----------------------------------------------------------------------


def test_no_components():
    bundle = make_bundle(components=[], status="draft")
    issues = validate_bundle_integrity(load(bundle))
    assert [(i.code, i.fixable) for i in issues] == [("no_components", False)]


def test_component_deleted():
    v = make_variant(sku="CAM-9")
    bundle = make_bundle(components=[(v, 1)])
    ProductVariant.objects.filter(pk=v.pk).update(deleted_at="2026-01-01T00:00Z")
    issues = validate_bundle_integrity(load(bundle))
    deleted = [i for i in issues if i.code == "component_deleted"]
    assert len(deleted) == 1 and "CAM-9" in deleted[0].message and not deleted[0].fixable


def test_component_disabled():
    v = make_variant()
    bundle = make_bundle(components=[(v, 1)])
    ProductVariant.objects.filter(pk=v.pk).update(enabled=False)
    assert "component_disabled" in codes(bundle)


def test_currency_mismatch():
    v = make_variant()
    bundle = make_bundle(components=[(v, 1), (make_variant(), 1)])
    ProductVariant.objects.filter(pk=v.pk).update(currency="EUR")
    assert "currency_mismatch" in codes(bundle)


def test_non_positive_price():
    v = make_variant(price="10")
    bundle = make_bundle(components=[(v, 1)], pricing_rule="amount_off", rule_value="5")
    ProductVariant.objects.filter(pk=v.pk).update(price=Decimal("4"))  # 4 − 5 < 0
    assert "non_positive_price" in codes(bundle)


def test_nested_bundle():
    # Data that slipped past the door: another bundle's shell variant as a component.
    inner = make_bundle()
    outer = make_bundle()
    BundleComponent.objects.create(bundle=outer, variant_id=inner.shell_variant_id, quantity=1)
    assert "nested_bundle" in codes(outer)


def test_nested_bundle_is_found_even_when_the_shell_product_lost_its_flag():
    # Given another bundle's shell variant as a component, its product no longer flagged
    inner = make_bundle()
    outer = make_bundle()
    BundleComponent.objects.create(bundle=outer, variant_id=inner.shell_variant_id, quantity=1)
    Product.objects.filter(pk=inner.shell_product_id).update(is_bundle_shell=False)
    # Then it is still a nested bundle, asked by bundle and by id
    assert "nested_bundle" in codes(outer)
    assert "nested_bundle" in [i.code for i in validate_bundle_integrity(outer.pk)]
    # and the check breaks the bundle with that reason
    result = fix(outer)
    assert [b["id"] for b in result["broken_bundles"]] == [outer.pk]
    assert "nested_bundle" in [r["code"] for r in Bundle.objects.get(pk=outer.pk).broken_reasons]


def test_invalid_quantity():
    # The database refuses quantity 0 (check constraint), so the rule is asked with plain
    # values, as the engine asks it for a row loaded from a database without the constraint.
    issues = integrity.component_issues(
        label="CAM-1 (Camera)", deleted=False, enabled=True, nested=False, quantity=0
    )
    assert [(i.code, i.fixable) for i in issues] == [("invalid_quantity", False)]
    assert issues[0].message == "Component CAM-1 (Camera) has quantity 0; it must lie in 1–1000."
    assert (
        integrity.component_issues(
            label="x", deleted=False, enabled=True, nested=False, quantity=1000
        )
        == []
    )


# --- fixable codes, and fixing clears them -------------------------------------------------


def test_price_drift_is_found_and_fixing_clears_it():
    bundle = make_bundle()
    Bundle.objects.filter(pk=bundle.pk).update(computed_price=Decimal("1.00"))
    assert codes(bundle) == ["price_drift"]

    result = fix(bundle)

    assert result["fixed"] == 1
    assert codes(bundle) == []
    bundle.refresh_from_db()
    assert bundle.computed_price != Decimal("1.00")


def test_availability_drift_is_found_and_fixing_clears_it():
    bundle = make_bundle()
    Bundle.objects.filter(pk=bundle.pk).update(computed_availability=999)
    assert codes(bundle) == ["availability_drift"]
    fix(bundle)
    assert codes(bundle) == []


def test_shell_missing_is_found_and_fixing_recreates_the_shell():
    bundle = make_bundle()
    ProductVariant.objects.filter(pk=bundle.shell_variant_id).delete()  # SET_NULL on bundle
    assert codes(bundle) == ["shell_missing"]

    fix(bundle)

    bundle.refresh_from_db()
    assert bundle.shell_variant is not None
    assert bundle.shell_variant.price == bundle.computed_price
    assert codes(bundle) == []


def test_shell_out_of_sync_is_found_and_fixing_syncs_it():
    bundle = make_bundle()
    ProductVariant.objects.filter(pk=bundle.shell_variant_id).update(
        price=Decimal("1"), stock_on_hand=12345
    )
    assert codes(bundle) == ["shell_out_of_sync"]
    fix(bundle)
    assert codes(bundle) == []
    bundle.refresh_from_db()
    assert bundle.shell_variant.stock_on_hand == bundle.computed_availability


def test_check_without_fix_writes_nothing():
    bundle = make_bundle()
    Bundle.objects.filter(pk=bundle.pk).update(computed_price=Decimal("1.00"))
    result = services.bundles_check(scope=[bundle.pk], fix=False)
    assert result["needs_fix"] == 1 and result["fixed"] == 0
    assert result["broken_bundles"][0]["reasons"][0]["code"] == "price_drift"
    bundle.refresh_from_db()
    assert bundle.computed_price == Decimal("1.00")


# --- broken status -------------------------------------------------------------------------


def test_unfixable_issue_breaks_the_bundle_with_reasons_and_it_returns_when_clean():
    v = make_variant(sku="BAT-7")
    bundle = make_bundle(components=[(v, 1), (make_variant(), 1)], status="active")

    ProductVariant.objects.filter(pk=v.pk).update(enabled=False)
    result = fix(bundle)

    bundle.refresh_from_db()
    assert result["broken"] == 1
    assert bundle.status == "broken"
    assert bundle.status_before_broken == "active"
    [reason] = bundle.broken_reasons
    assert reason == {
        "code": "component_disabled",
        "message": f"Component BAT-7 ({v.name}) is disabled.",
        "fixable": False,
    }
    assert bundle.shell_variant.enabled is False  # not sellable while broken

    ProductVariant.objects.filter(pk=v.pk).update(enabled=True)
    fix(bundle)

    bundle.refresh_from_db()
    assert bundle.status == "active"
    assert bundle.status_before_broken == ""
    assert bundle.broken_reasons == []
    assert bundle.shell_variant.enabled is True


def test_a_broken_draft_returns_to_draft():
    bundle = make_bundle(components=[], status="draft")
    bundle.refresh_from_db()
    assert (bundle.status, bundle.status_before_broken) == ("broken", "draft")

    BundleComponent.objects.create(bundle=bundle, variant=make_variant(), quantity=1)
    services.bundle_recompute(bundle_id=bundle.pk)

    bundle.refresh_from_db()
    assert bundle.status == "draft"


def test_archived_bundle_keeps_its_status_but_shows_reasons():
    v = make_variant()
    bundle = make_bundle(components=[(v, 1)], status="archived")
    ProductVariant.objects.filter(pk=v.pk).update(enabled=False)
    services.bundle_recompute(bundle_id=bundle.pk)
    bundle.refresh_from_db()
    assert bundle.status == "archived"
    assert [r["code"] for r in bundle.broken_reasons] == ["component_disabled"]


# --- bulk ----------------------------------------------------------------------------------


def test_every_code_is_either_fixable_or_not():
    assert set(integrity.FIXABLE_CODES) < set(integrity.ALL_CODES)
    assert len(integrity.ALL_CODES) == 11


def test_integrity_statuses_are_the_models():
    assert (integrity.ACTIVE, integrity.ARCHIVED, integrity.BROKEN, integrity.DRAFT) == (
        Bundle.Status.ACTIVE,
        Bundle.Status.ARCHIVED,
        Bundle.Status.BROKEN,
        Bundle.Status.DRAFT,
    )


def test_validating_one_bundle_reads_a_few_queries_and_writes_nothing(
    django_assert_max_num_queries,
):
    # Given a bundle whose stored price drifted, its entry gone and its shell variant deleted
    bundle = make_bundle()
    Bundle.objects.filter(pk=bundle.pk).update(computed_price=Decimal("1.00"))
    SearchEntry.objects.filter(bundle=bundle).delete()
    ProductVariant.objects.filter(pk=bundle.shell_variant_id).delete()
    # When it is validated, then a handful of reads find every issue
    with django_assert_max_num_queries(3) as captured:
        issues = validate_bundle_integrity(bundle)
    assert [i.code for i in issues] == ["price_drift", "shell_missing"]
    assert all(q["sql"].lstrip().upper().startswith("SELECT") for q in captured.captured_queries)
    # and nothing is repaired
    assert not SearchEntry.objects.filter(bundle=bundle).exists()
    assert Bundle.objects.get(pk=bundle.pk).computed_price == Decimal("1.00")


def test_validating_an_unknown_bundle_raises_not_found():
    with pytest.raises(BundleNotFound) as exc:
        validate_bundle_integrity(424242)
    assert exc.value.ids == [424242]


def test_check_of_many_bundles_runs_a_bounded_number_of_queries(django_assert_max_num_queries):
    for _ in range(30):
        make_bundle()
    Bundle.objects.update(computed_availability=7)  # drift everywhere
    with django_assert_max_num_queries(30):
        result = services.bundles_check(scope="all", fix=True, chunk_size=500)
    assert result["checked"] == 30 and result["fixed"] == 30
