"""Catalog-scale flows with real worker processes: coalesced recompute batches (issue 9)."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.db import transaction
from django.urls import reverse

from bundles import services
from bundles.models import Bundle, BundleComponent, ProductVariant
from jobs.models import SETTLED_STATES, Job, JobState
from jobs.selectors import jobs_for_target
from tests.bundles.jobs_support import jobs, wait_until
from tests.factories import make_variant

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis]


def catalog(n: int, variants: list[ProductVariant], prefix: str) -> list[int]:
    """n active bundles, each of one shared variant (quantity 1) and one own-ish one, with
    shells and search entries built by a recompute (as the catalog would be in production)."""
    rows = Bundle.objects.bulk_create(
        Bundle(name=f"{prefix} {i}", slug=f"{prefix}-{i}", status="active", rule_value=Decimal(0))
        for i in range(n)
    )
    BundleComponent.objects.bulk_create(
        BundleComponent(bundle=b, variant=v, quantity=1)
        for i, b in enumerate(rows)
        for v in (variants[0], variants[1 + i % (len(variants) - 1)])
    )
    ids = [b.pk for b in rows]
    services.bundles_recompute(bundle_ids=ids)
    return ids


def all_settled() -> bool:
    return not Job.objects.exclude(state__in=SETTLED_STATES).exists()


def test_one_committed_change_recomputes_1000_bundles_in_a_handful_of_linked_batch_jobs(
    redis_conn, start_worker, client
):
    # Given 1,000 bundles using one variant, and bin/run's workers for the two queues involved
    shared = make_variant(price="10.00", stock=1000)
    others = [make_variant(price="1.00", stock=1000) for _ in range(10)]
    ids = catalog(1000, [shared, *others], "kit")
    Job.objects.all().delete()
    start_worker("bundle-bulk-operation")
    start_worker("bundle-recompute")

    # When the shared variant's price change is committed
    with transaction.atomic():
        variant = ProductVariant.objects.get(pk=shared.pk)
        variant.price = Decimal("20.00")
        variant.save()

    # Then every bundle gets its new price (20 + 1), through at most 5 ledger rows
    wait_until(
        lambda: Bundle.objects.filter(pk__in=ids, computed_price=Decimal("21.00")).count() == 1000,
        timeout=120,
    )
    wait_until(all_settled)
    assert Job.objects.count() <= 5
    assert jobs("fanout").count() == 1
    batches = list(jobs("recompute_batch"))
    assert {b.state for b in batches} == {JobState.COMPLETED}
    assert sorted(i for b in batches for i in b.payload["bundle_ids"]) == sorted(ids)
    # each batch says what changed per bundle
    changes = {k: v for b in batches for k, v in b.result["changes"].items()}
    assert changes[str(ids[0])]["price"] == ["11.00", "21.00"]
    assert len(changes) == 1000

    # and each bundle's jobs (what its admin page lists) include the batch that recomputed it
    batch_of = {i: str(b.pk) for b in batches for i in b.payload["bundle_ids"]}
    for bundle_id in ids:
        listed = {str(j.pk) for j in jobs_for_target(target_type="bundle", target_id=bundle_id)}
        assert batch_of[bundle_id] in listed
    admin = get_user_model().objects.create_superuser("boss", "boss@example.com", "pw-12345678")
    client.force_login(admin)
    for bundle_id in (ids[0], ids[500], ids[-1]):
        page = client.get(reverse("admin:bundles_bundle_change", args=[bundle_id]))
        assert page.status_code == 200
        assert batch_of[bundle_id] in page.content.decode()

    # and the jobs list searched by one bundle's SKU finds its batch
    sku = Bundle.objects.select_related("shell_variant").get(pk=ids[700]).shell_variant.sku
    listing = client.get(reverse("admin:jobs_job_changelist"), {"q": sku})
    assert listing.status_code == 200
    assert batch_of[ids[700]] in listing.content.decode()


def test_a_burst_of_200_saves_of_different_variants_makes_a_handful_of_batches(
    redis_conn, start_worker, settings
):
    settings.BUNDLES_FANOUT_DEBOUNCE_SECONDS = 1  # the default
    # Given 200 variants, each in two bundles of its own, and workers as bin/run starts them
    variants = [make_variant(price="5.00", stock=100) for _ in range(200)]
    pairs = {}
    for n, variant in enumerate(variants):
        rows = Bundle.objects.bulk_create(
            Bundle(name=f"b{n}-{k}", slug=f"b{n}-{k}", status="active", rule_value=Decimal(0))
            for k in range(2)
        )
        BundleComponent.objects.bulk_create(
            BundleComponent(bundle=b, variant=variant, quantity=k + 1) for k, b in enumerate(rows)
        )
        pairs[variant.pk] = [b.pk for b in rows]
    all_ids = [i for ids in pairs.values() for i in ids]
    services.bundles_recompute(bundle_ids=all_ids)
    Job.objects.all().delete()
    start_worker("bundle-bulk-operation")
    start_worker("bundle-recompute")

    # When all 200 get a new price within about a second (one save each, each committed)
    started = time.monotonic()
    for variant in variants:
        variant = ProductVariant.objects.get(pk=variant.pk)
        variant.price = Decimal("7.00")
        variant.save()
    burst = time.monotonic() - started

    # Then every bundle is right (7 × 1 and 7 × 2)
    def right() -> bool:
        prices = dict(Bundle.objects.filter(pk__in=all_ids).values_list("pk", "computed_price"))
        return all(
            prices[a] == Decimal("7.00") and prices[b] == Decimal("14.00")
            for a, b in pairs.values()
        )

    wait_until(right, timeout=120)
    wait_until(all_settled)
    # through a handful of batch jobs (and fan-outs), not 400 recomputes
    batches = jobs("recompute_batch").count()
    fanouts = jobs("fanout").count()
    print(f"\n200 saves in {burst:.2f}s -> {fanouts} fan-outs, {batches} batches")
    assert batches <= 6
    assert fanouts <= burst + 3
    assert not jobs("recompute").exists()
