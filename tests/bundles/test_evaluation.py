"""Set-based evaluation (bundles/evaluation.py) against the per-bundle path it replaces.

The property test builds random catalogs (rules, currencies, quantities, stock and allocation,
disabled / deleted components, caps, validity windows, shells as components, drifted prices
and shells, missing shells and entries) and asserts that the set-based recompute and check
leave the same rows and return the same results as the per-bundle evaluation
(``evaluate_bundle`` / ``validate_bundle_integrity`` with ``_write_bundles`` / ``_index``).
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bundles import evaluation, pricing, services
from bundles.integrity import bundles_for_evaluation, validate_bundle_integrity
from bundles.models import Bundle, BundleComponent, Product, ProductVariant, SearchEntry

pytestmark = pytest.mark.django_db

CURRENCIES = ["USD", "USD", "EUR", "JPY", "KWD"]
NAMES = st.text(alphabet="abc xyZ-é", min_size=0, max_size=6)
MONEY = st.decimals(min_value=0, max_value=5000, places=4, allow_nan=False, allow_infinity=False)


class _Rollback(Exception):
    pass


@st.composite
def catalogs(draw):
    n_variants = draw(st.integers(1, 7))
    variants = [
        {
            "name": draw(NAMES),
            "product": draw(NAMES),
            "price": draw(MONEY),
            "currency": draw(st.sampled_from(CURRENCIES)),
            "stock": draw(st.integers(0, 60)),
            "allocated": draw(st.integers(0, 70)),
        }
        for _ in range(n_variants)
    ]
    bundles = []
    for _ in range(draw(st.integers(1, 6))):
        rule = draw(st.sampled_from(pricing.RULES))
        top = 100 if rule == pricing.PERCENT_OFF else 3000
        picks = draw(st.lists(st.integers(0, n_variants - 1), max_size=4, unique=True))
        bundles.append(
            {
                "name": draw(NAMES) or "b",
                "rule": rule,
                "value": draw(
                    st.decimals(min_value=0, max_value=top, places=draw(st.integers(0, 4)))
                ),
                "currency": draw(st.sampled_from(CURRENCIES)),
                "status": draw(st.sampled_from(["draft", "active", "archived"])),
                "cap": draw(st.none() | st.integers(0, 30)),
                "window": draw(st.sampled_from([None, "past", "future", "expired"])),
                "components": [(i, draw(st.sampled_from([1, 1, 2, 3, 7, 1000]))) for i in picks],
            }
        )
    # What happens after the catalog was computed once: data that slipped past the door.
    change = st.sampled_from(["price", "stock", "disable", "delete", "rename", "currency", "none"])
    variant_changes = draw(st.lists(st.tuples(st.integers(0, n_variants - 1), change)))
    drift = st.sampled_from(
        [
            "none",
            "price",
            "availability",
            "no_saving",
            "reasons",
            "broken",
            "shell_name",
            "shell_price",
            "shell_enabled",
            "shell_deleted",
            "shell_product_name",
            "shell_relinked",
            "shell_flag",
            "shell_variant_missing",
            "shell_product_missing",
            "entry_missing",
            "entry_body",
            "entry_price",
            "entry_availability",
            "entry_status",
            "entry_sku",
            "shell_allocated",
            "shell_stock",
            "shell_currency",
            "nest_own",
            "nest_other",
            "no_components",
        ]
    )
    bundle_drift = draw(st.lists(drift, min_size=len(bundles), max_size=len(bundles)))
    return variants, bundles, variant_changes, bundle_drift


def build(spec) -> list[int]:
    variants_spec, bundles_spec, variant_changes, bundle_drift = spec
    now = timezone.now()
    variants = []
    for i, v in enumerate(variants_spec):
        product = Product.objects.create(name=v["product"], slug=f"p-{i}")
        variants.append(
            ProductVariant.objects.create(
                product=product,
                sku=f"SKU-{i}",
                name=v["name"],
                price=v["price"],
                currency=v["currency"],
                stock_on_hand=v["stock"],
                allocated=v["allocated"],
            )
        )
    windows = {
        None: (None, None),
        "past": (now - timedelta(days=3), None),
        "future": (now + timedelta(days=3), None),
        "expired": (now - timedelta(days=3), now - timedelta(days=1)),
    }
    bundles = []
    for i, b in enumerate(bundles_spec):
        valid_from, valid_to = windows[b["window"]]
        bundle = Bundle.objects.create(
            name=b["name"],
            slug=f"b-{i}",
            status=b["status"],
            pricing_rule=b["rule"],
            rule_value=b["value"],
            currency=b["currency"],
            availability_cap=b["cap"],
            valid_from=valid_from,
            valid_to=valid_to,
        )
        BundleComponent.objects.bulk_create(
            BundleComponent(bundle=bundle, variant=variants[vi], quantity=q)
            for vi, q in b["components"]
        )
        bundles.append(bundle)
    ids = [b.pk for b in bundles]
    with _per_bundle():
        services.bundles_recompute(bundle_ids=ids)

    for vi, change in variant_changes:
        qs = ProductVariant.objects.filter(pk=variants[vi].pk)
        if change == "price":
            qs.update(price=Decimal("12.3456"))
        elif change == "stock":
            qs.update(stock_on_hand=1000, allocated=0)
        elif change == "disable":
            qs.update(enabled=False)
        elif change == "delete":
            qs.update(deleted_at=now)
        elif change == "rename":
            qs.update(name="renamed")
        elif change == "currency":
            qs.update(currency="EUR")
    for bundle, drift in zip(bundles, bundle_drift, strict=True):
        b = Bundle.objects.get(pk=bundle.pk)
        one = Bundle.objects.filter(pk=b.pk)
        if drift == "price":
            one.update(computed_price=Decimal("1.2345"))
        elif drift == "availability":
            one.update(computed_availability=b.computed_availability + 3)
        elif drift == "no_saving":
            one.update(no_saving=not b.no_saving)
        elif drift == "reasons":
            one.update(broken_reasons=[{"code": "x", "message": "old", "fixable": False}])
        elif drift == "broken":
            one.update(status="broken", status_before_broken="active")
        elif drift == "shell_name":
            ProductVariant.objects.filter(pk=b.shell_variant_id).update(name="old")
        elif drift == "shell_price":
            ProductVariant.objects.filter(pk=b.shell_variant_id).update(price=Decimal("0.5"))
        elif drift == "shell_enabled":
            ProductVariant.objects.filter(pk=b.shell_variant_id).update(enabled=False)
        elif drift == "shell_deleted":
            ProductVariant.objects.filter(pk=b.shell_variant_id).update(deleted_at=now)
        elif drift == "shell_product_name":
            Product.objects.filter(pk=b.shell_product_id).update(name="old")
        elif drift == "shell_relinked":  # the shell variant hangs under another product
            stray = Product.objects.create(name="stray", slug=f"stray-{b.pk}")
            ProductVariant.objects.filter(pk=b.shell_variant_id).update(product=stray)
        elif drift == "shell_flag":
            Product.objects.filter(pk=b.shell_product_id).update(is_bundle_shell=False)
        elif drift == "shell_variant_missing":
            one.update(shell_variant=None)
        elif drift == "shell_product_missing":
            one.update(shell_product=None)
        elif drift == "entry_missing":
            SearchEntry.objects.filter(bundle_id=b.pk).delete()
        elif drift == "entry_body":
            SearchEntry.objects.filter(bundle_id=b.pk).update(body="stale")
        elif drift == "entry_price":
            SearchEntry.objects.filter(bundle_id=b.pk).update(price=Decimal("3.5"))
        elif drift == "entry_availability":
            SearchEntry.objects.filter(bundle_id=b.pk).update(availability=99)
        elif drift == "entry_status":
            SearchEntry.objects.filter(bundle_id=b.pk).update(status="archived")
        elif drift == "entry_sku":
            SearchEntry.objects.filter(bundle_id=b.pk).update(sku="OLD")
        elif drift == "shell_allocated":
            ProductVariant.objects.filter(pk=b.shell_variant_id).update(allocated=2)
        elif drift == "shell_stock":
            ProductVariant.objects.filter(pk=b.shell_variant_id).update(stock_on_hand=55)
        elif drift == "shell_currency":
            ProductVariant.objects.filter(pk=b.shell_variant_id).update(currency="GBP")
        elif drift == "nest_own":
            BundleComponent.objects.create(bundle=b, variant_id=b.shell_variant_id, quantity=1)
        elif drift == "nest_other":
            other = bundles[(bundles.index(bundle) + 1) % len(bundles)]
            shell = Bundle.objects.get(pk=other.pk).shell_variant_id
            if shell and not BundleComponent.objects.filter(bundle=b, variant_id=shell).exists():
                BundleComponent.objects.create(bundle=b, variant_id=shell, quantity=2)
        elif drift == "no_components":
            BundleComponent.objects.filter(bundle=b).delete()
    return ids


class _per_bundle:
    """Make the batch services take their per-bundle path (the reference)."""

    def __enter__(self):
        self._saved = evaluation.supported
        evaluation.supported = lambda: False

    def __exit__(self, *exc):
        evaluation.supported = self._saved


def snapshot() -> dict:
    """Every stored value recompute and check write (timestamps aside)."""
    bundle_fields = [
        "computed_price",
        "computed_availability",
        "no_saving",
        "status",
        "status_before_broken",
        "broken_reasons",
        "shell_product_id",
        "shell_variant_id",
    ]
    variant_fields = ["sku", "product_id", "name", "price", "currency", "stock_on_hand"]
    variant_fields += ["allocated", "enabled", "deleted_at"]
    entry_fields = ["bundle_id", "title", "sku", "body", "price", "availability", "status"]
    if connection.vendor == "postgresql":
        entry_fields.append("document")
    return {
        "bundles": list(Bundle.objects.order_by("pk").values_list("pk", *bundle_fields)),
        "variants": list(ProductVariant.objects.order_by("sku").values_list(*variant_fields)),
        "products": list(
            Product.objects.order_by("slug").values_list("slug", "name", "is_bundle_shell")
        ),
        "entries": [
            tuple(str(x) for x in row)
            for row in SearchEntry.objects.order_by("bundle_id").values_list(*entry_fields)
        ],
    }


def run_both(fn) -> tuple:
    """(result, rows) of ``fn`` on the per-bundle path and on the set-based one."""
    outcomes = []
    for reference in (True, False):
        try:
            with transaction.atomic():
                if reference:
                    with _per_bundle():
                        result = fn()
                else:
                    result = fn()
                outcomes.append((result, snapshot()))
                raise _Rollback
        except _Rollback:
            pass
    return outcomes[0], outcomes[1]


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(spec=catalogs())
def test_set_based_evaluation_matches_the_per_bundle_one(spec):
    try:
        with transaction.atomic():
            ids = build(spec)
            now = timezone.now()

            # Integrity: the same issues, codes, messages and order, bundle by bundle.
            outcomes = {o.row.id: o for o in evaluation.evaluate_batch(ids, lock=False, now=now)}
            for bundle in bundles_for_evaluation().filter(pk__in=ids):
                expected = [i.as_dict() for i in validate_bundle_integrity(bundle, now=now)]
                assert [i.as_dict() for i in outcomes[bundle.pk].issues] == expected

            # Check without and with fixing, recompute with and without search: same result
            # dicts, same rows written.
            for fn in (
                lambda: services.bundles_check(scope=ids, fix=False),
                lambda: services.bundles_check(scope=ids, fix=True, chunk_size=2),
                lambda: services.bundles_recompute(bundle_ids=ids + [999999], batch_size=3),
                lambda: services.bundles_recompute(bundle_ids=ids, update_search=False),
            ):
                reference, set_based = run_both(fn)
                assert set_based == reference
            raise _Rollback
    except _Rollback:
        pass


# --- query budget per batch ----------------------------------------------------------------


def _catalog(n: int) -> list[int]:
    product = Product.objects.create(name="Parts", slug="parts")
    variants = ProductVariant.objects.bulk_create(
        ProductVariant(product=product, sku=f"V-{i}", name=f"V {i}", price=Decimal("9.99"))
        for i in range(8)
    )
    rows = Bundle.objects.bulk_create(
        Bundle(name=f"B {i}", slug=f"b-{i}", status="active", rule_value=Decimal(10))
        for i in range(n)
    )
    BundleComponent.objects.bulk_create(
        BundleComponent(bundle=b, variant=variants[(i + k) % 8], quantity=k + 1)
        for i, b in enumerate(rows)
        for k in range(3)
    )
    ids = [b.pk for b in rows]
    services.bundles_recompute(bundle_ids=ids)  # shells and entries exist from here on
    return ids


PER_BATCH = 12  # savepoint, 3 reads, ≤ 6 writes, refresh of tsvectors, release


@pytest.mark.parametrize("what", ["unchanged", "all changed", "check", "check and fix"])
def test_a_batch_costs_a_bounded_number_of_queries(what, django_assert_max_num_queries):
    ids = _catalog(1200)
    if what != "unchanged":
        ProductVariant.objects.update(price=Decimal("19.99"), stock_on_hand=40)
    calls = {
        "unchanged": lambda: services.bundles_recompute(bundle_ids=ids, batch_size=400),
        "all changed": lambda: services.bundles_recompute(bundle_ids=ids, batch_size=400),
        "check": lambda: services.bundles_check(scope=ids, chunk_size=400),
        "check and fix": lambda: services.bundles_check(scope=ids, fix=True, chunk_size=400),
    }
    # 3 batches of 400 bundles; 1 query for the ids of a scope.
    with django_assert_max_num_queries(3 * PER_BATCH + 1):
        result = calls[what]()
    if what == "all changed":
        changes = result.pop("changes")
        assert result == {"recomputed": 1200, "changed": 1200, "missing": []}
        assert len(changes) == 1200 and all("price" in c for c in changes.values())
        # (19.99 × 1 + 19.99 × 2 + 19.99 × 3) − 10 % = 107.946, half-up to cents
        assert set(Bundle.objects.values_list("computed_price", flat=True)) == {Decimal("107.95")}
    if what == "check":
        assert result["needs_fix"] == 1200 and result["checked"] == 1200


def test_query_count_per_batch_does_not_grow_with_the_batch():
    ids = _catalog(600)
    ProductVariant.objects.update(stock_on_hand=77)
    with CaptureQueriesContext(connection) as small:
        services.bundles_recompute(bundle_ids=ids[:10], batch_size=600)
    ProductVariant.objects.update(stock_on_hand=78)
    with CaptureQueriesContext(connection) as large:
        services.bundles_recompute(bundle_ids=ids, batch_size=600)
    assert len(large) == len(small) <= PER_BATCH


def test_a_component_problem_costs_one_query_more_and_names_the_component():
    ids = _catalog(20)
    ProductVariant.objects.filter(sku="V-3").update(enabled=False)
    with CaptureQueriesContext(connection) as queries:
        result = services.bundles_check(scope=ids, fix=True)
    assert len(queries) <= PER_BATCH + 1
    reasons = {r["code"]: r["message"] for b in result["broken_bundles"] for r in b["reasons"]}
    assert reasons == {"component_disabled": "Component V-3 (V 3) is disabled."}
    assert Bundle.objects.filter(status="broken").count() == result["broken"] > 0


def test_sqlite_words_follow_component_ids_whatever_order_the_rows_came_in():
    # Given the words of three components as group_concat listed them, beside their ids
    sep = evaluation._SEP
    words = sep.join(["n12", "S12", "p12", "n10", "S10", "p10", "n11", "S11", "p11"])
    # Then they are put in component id order, three words per component
    assert evaluation._words_in_id_order("12,10,11", words) == sep.join(
        ["n10", "S10", "p10", "n11", "S11", "p11", "n12", "S12", "p12"]
    )
    # and words already in id order come back as they are (one id comes back as an integer)
    in_order = sep.join(["a", "B", "c", "d", "E", "f"])
    assert evaluation._words_in_id_order("3,7", in_order) == in_order
    assert evaluation._words_in_id_order(5, "a" + sep + "B" + sep + "c") == sep.join("aBc")


def test_a_batch_pauses_the_garbage_collector_and_always_turns_it_back_on():
    import gc

    seen = []
    with evaluation._collector_paused():
        seen.append(gc.isenabled())
    assert seen == [False] and gc.isenabled()
    # a batch that fails still turns it back on
    with pytest.raises(ZeroDivisionError), evaluation._collector_paused():
        1 / 0  # noqa: B018
    assert gc.isenabled()
    # and a process that runs with the collector off keeps it off
    gc.disable()
    try:
        with evaluation._collector_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
