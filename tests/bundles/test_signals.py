"""Signals: which catalog saves become which jobs (ledger rows + RQ jobs), and which don't."""

from __future__ import annotations

import time
from datetime import timedelta
from decimal import Decimal

import django_rq
import pytest
from django.core import serializers
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rq.worker import Worker

from bundles.models import Bundle, BundleComponent, Product, ProductVariant
from jobs.models import SETTLED_STATES, Job, JobState
from tests.bundles.jobs_support import (
    jobs,
    rq_queued,
    run_burst_worker,
    wait_until,
)
from tests.factories import make_bundle, make_variant

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis]


@pytest.fixture(autouse=True)
def no_fanout_debounce(settings):
    """Fan-outs go to RQ at once here; the debounce has tests of its own."""
    settings.BUNDLES_FANOUT_DEBOUNCE_SECONDS = 0


@pytest.fixture
def catalog(redis_conn):
    """Two variants, two bundles using the first; no jobs yet (creation enqueues nothing)."""
    camera = make_variant(name="Camera", price="100.00", stock=10)
    battery = make_variant(name="Battery", price="10.00", stock=50)
    kit = make_bundle(name="Starter kit", components=[(camera, 1), (battery, 2)])
    solo = make_bundle(name="Camera only", components=[(camera, 1)])
    assert Job.objects.count() == 0
    return {"camera": camera, "battery": battery, "kit": kit, "solo": solo}


def fresh(variant: ProductVariant) -> ProductVariant:
    return ProductVariant.objects.get(pk=variant.pk)


# --- variants -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("price", Decimal("120.00")),
        ("currency", "EUR"),
        ("stock_on_hand", 3),
        ("allocated", 2),
        ("enabled", False),
        ("deleted_at", timezone.now()),
    ],
)
def test_a_relevant_variant_change_enqueues_one_fanout_job(catalog, field, value):
    # Given a variant loaded from the database
    camera = fresh(catalog["camera"])
    # When one field bundles depend on changes
    setattr(camera, field, value)
    camera.save()
    # Then one fan-out job is recorded for that variant and handed to RQ
    fanout = jobs("fanout").get()
    assert fanout.payload["variant_ids"] == [camera.pk]
    assert fanout.trigger == "signal"
    assert fanout.queue == "bundle-bulk-operation"
    assert field in fanout.reason
    assert rq_queued("bundle-bulk-operation") == 1
    # and no recompute yet: finding the bundles is the fan-out's work, not the request's
    assert not jobs("recompute").exists()


def test_a_variant_save_makes_no_per_bundle_queries(catalog):
    # Given a variant used by one bundle, and another used by 20
    lonely = make_variant(price="5.00")
    make_bundle(components=[(lonely, 1)])
    popular = make_variant(price="5.00")
    for _ in range(20):
        make_bundle(components=[(popular, 1)])

    def queries_for_price_change(variant) -> list[str]:
        variant = fresh(variant)
        variant.price = Decimal("6.00")
        with CaptureQueriesContext(connection) as captured:
            variant.save()
        # (not the paused-queue mirror's once-per-Redis re-sync: a fixed cost, not per bundle)
        return [q["sql"] for q in captured.captured_queries if "jobs_queuepause" not in q["sql"]]

    # When each gets a new price (each opening a fan-out: the first one is started by then)
    lonely_sql = queries_for_price_change(lonely)
    jobs("fanout").update(state=JobState.RUNNING)
    popular_sql = queries_for_price_change(popular)
    # Then the request did the same work for both, and never read the components table
    assert len(popular_sql) == len(lonely_sql)
    assert not any("bundles_bundlecomponent" in sql for sql in popular_sql)
    assert jobs("fanout").count() == 2


def test_a_save_that_changes_nothing_relevant_enqueues_nothing(catalog):
    camera = fresh(catalog["camera"])
    # A plain re-save, the same price written differently, and only a timestamp
    camera.save()
    camera.price = "100.0"
    camera.save()
    camera.save(update_fields=["updated_at"])
    product = Product.objects.get(pk=camera.product_id)
    product.description = "Not shown in search"
    product.save()
    assert Job.objects.count() == 0
    assert rq_queued() == 0


def test_update_fields_that_skip_the_changed_field_enqueue_nothing(catalog):
    camera = fresh(catalog["camera"])
    camera.price = Decimal("1.00")
    camera.save(update_fields=["sku"])  # the price did not reach the database
    assert Job.objects.count() == 0


def test_a_new_variant_enqueues_nothing(redis_conn):
    variant = make_variant(price="9.00")
    variant.save()  # saving the same new instance again: nothing changed since creation
    assert Job.objects.count() == 0


def test_saving_the_same_instance_twice_reports_the_change_once(catalog):
    camera = fresh(catalog["camera"])
    camera.price = Decimal("101.00")
    camera.save()
    camera.save()
    fanout = jobs("fanout").get()
    assert fanout.merged_count == 0


def test_a_burst_of_saves_merges_into_one_pending_fanout(catalog):
    # Given no worker running, when one variant is saved 50 times with different stock
    camera = fresh(catalog["camera"])
    for stock in range(1, 51):
        camera.stock_on_hand = stock
        camera.save()
    # Then one pending fan-out job holds all 50 requests and RQ has it once
    fanout = jobs("fanout").get()
    assert fanout.state == JobState.PENDING
    assert fanout.merged_count == 49
    assert rq_queued("bundle-bulk-operation") == 1


def test_a_new_fanout_goes_to_its_queue_at_once_marked_with_its_debounce_window(catalog, settings):
    from rq.registry import ScheduledJobRegistry

    settings.BUNDLES_FANOUT_DEBOUNCE_SECONDS = 1
    camera = fresh(catalog["camera"])
    before = time.time()
    camera.price = Decimal("101.00")
    camera.save()
    camera.price = Decimal("102.00")
    camera.save()
    fanout = jobs("fanout").get()
    assert fanout.merged_count == 1
    assert fanout.dispatched_at is not None
    # On its queue already, not in RQ's scheduler (whole seconds, polled once a second): the
    # worker that takes it waits out the window itself
    queue = django_rq.get_queue("bundle-bulk-operation")
    assert queue.job_ids == [fanout.rq_job_id]
    assert ScheduledJobRegistry(queue=queue).get_job_ids() == []
    not_before = queue.fetch_job(fanout.rq_job_id).meta["not_before"]
    assert before + 1 <= not_before <= time.time() + 1


def test_a_worker_holding_a_debounced_fanout_claims_it_only_after_the_window_and_merges_meanwhile(
    catalog, settings, start_worker
):
    # Given a 2 s debounce (the longest a worker waits out itself) and a worker process
    settings.BUNDLES_FANOUT_DEBOUNCE_SECONDS = 2
    queue = django_rq.get_queue("bundle-bulk-operation")
    # already listening when the change comes: a worker still starting up after the window
    # (a loaded machine) would rightly take the fan-out at once, and there is nothing to merge
    start_worker()
    wait_until(lambda: any(w.get_state() == "idle" for w in Worker.all(queue=queue)), timeout=60)
    camera = fresh(catalog["camera"])
    camera.price = Decimal("101.00")
    camera.save()
    fanout = jobs("fanout").get()
    # When the worker has taken the fan-out off the queue (it is waiting out the window)
    wait_until(lambda: fanout.rq_job_id in queue.started_job_registry.get_job_ids())
    held_at = timezone.now()
    # and another variant changes meanwhile
    battery = fresh(catalog["battery"])
    battery.price = Decimal("11.00")
    battery.save()
    wait_until(lambda: not Job.objects.exclude(state__in=SETTLED_STATES).exists())
    # Then that change merged into the held fan-out (one fan-out for both), which a worker
    # claimed only once the window was over, and both changes reached the bundles
    fanout.refresh_from_db()
    assert jobs("fanout").count() == 1
    assert fanout.merged_count == 1
    assert fanout.payload["variant_ids"] == sorted([camera.pk, battery.pk])
    assert fanout.started_at - fanout.dispatched_at >= timedelta(seconds=2)
    assert held_at < fanout.started_at
    assert fanout.state == JobState.COMPLETED
    kit = Bundle.objects.get(pk=catalog["kit"].pk)
    assert kit.computed_price == Decimal("123.00")  # 101 + 2 × 11


def test_variants_changed_merges_the_variant_lists_of_a_pending_fanout(catalog):
    from bundles.fanout import variants_changed

    (first,) = variants_changed(variant_ids=[catalog["camera"].pk, catalog["battery"].pk])
    (again,) = variants_changed(variant_ids=[catalog["battery"].pk, catalog["camera"].pk])
    assert again.pk == first.pk
    assert again.merged_count == 1
    assert again.payload["variant_ids"] == sorted([catalog["camera"].pk, catalog["battery"].pk])
    assert variants_changed(variant_ids=[]) == []


def test_a_rolled_back_price_change_leaves_no_ledger_row_and_no_rq_job(catalog):
    camera = fresh(catalog["camera"])
    with pytest.raises(RuntimeError), transaction.atomic():
        camera.price = Decimal("1.00")
        camera.save()
        assert jobs("fanout").count() == 1  # written inside the transaction...
        raise RuntimeError("the request failed")
    # ...and gone with it; RQ never heard of it
    assert Job.objects.count() == 0
    assert rq_queued() == 0
    # Saving the instance again after the rollback still counts as a change
    camera.save()
    assert jobs("fanout").count() == 1


def test_a_shell_variant_saved_directly_enqueues_no_fanout(catalog):
    shell = ProductVariant.objects.get(pk=catalog["kit"].shell_variant_id)
    shell.price = Decimal("1.00")
    shell.stock_on_hand = 0
    shell.save()
    assert Job.objects.count() == 0


def test_recomputes_that_sync_shell_variants_cause_no_fanouts(catalog):
    # Given a price change and its fan-out and recomputes run by a real worker
    camera = fresh(catalog["camera"])
    camera.price = Decimal("150.00")
    camera.save()
    run_burst_worker()
    # Then the shells were updated, yet the only fan-out is the one the price change made
    kit = Bundle.objects.select_related("shell_variant").get(pk=catalog["kit"].pk)
    assert kit.shell_variant.price == kit.computed_price
    assert jobs("fanout").count() == 1
    assert set(jobs("recompute_batch").values_list("state", flat=True)) == {JobState.COMPLETED}


def test_fixture_loads_enqueue_nothing(catalog):
    camera = fresh(catalog["camera"])
    camera.price = Decimal("77.00")
    data = serializers.serialize("json", [camera])
    for obj in serializers.deserialize("json", data):
        obj.save()  # raw=True, like loaddata
    assert ProductVariant.objects.get(pk=camera.pk).price == Decimal("77.00")
    assert Job.objects.count() == 0


# --- renames: search text ------------------------------------------------------------------


@pytest.mark.parametrize(("field", "value"), [("name", "Mirrorless body"), ("sku", "CAM-NEW")])
def test_renaming_a_variant_enqueues_a_reindex_only_fanout(catalog, field, value):
    # Given a variant bundles use, when its name or SKU changes
    camera = fresh(catalog["camera"])
    setattr(camera, field, value)
    camera.save()
    # Then one fan-out for it asks for reindexes only; the request found no bundles itself
    fanout = jobs("fanout").get()
    assert fanout.payload["variant_ids"] == [camera.pk]
    assert fanout.payload["reindex_only"] is True
    assert field in fanout.reason
    assert not jobs("recompute").exists() and not jobs("reindex").exists()


def test_a_rename_merged_with_a_price_change_still_recomputes(catalog):
    camera = fresh(catalog["camera"])
    camera.name = "Mirrorless body"
    camera.save()
    camera.price = Decimal("101.00")
    camera.save()
    # the price change gets a recomputing fan-out (which reindexes too) next to the rename's
    recomputing = [f for f in jobs("fanout") if "reindex_only" not in f.payload]
    assert [f.payload["variant_ids"] for f in recomputing] == [[camera.pk]]


def test_a_renamed_variant_is_found_under_its_new_name_once_the_worker_ran(catalog):
    from bundles.selectors import bundle_search

    # Given the kit's camera renamed and its SKU changed
    camera = fresh(catalog["camera"])
    camera.name = "Rangefinder body"
    camera.sku = "RF-1"
    camera.save()
    # When a worker runs the fan-out
    run_burst_worker()
    # Then both bundles using it are reindexed (no recompute) and found by the new words
    found = {e.bundle_id for e in bundle_search(term="rangefinder")}
    assert found == {catalog["kit"].pk, catalog["solo"].pk}
    assert {e.bundle_id for e in bundle_search(term="RF-1")} == found
    assert sorted(j.payload["bundle_ids"][0] for j in jobs("reindex")) == sorted(found)
    assert not jobs("recompute").exists()
    assert jobs("fanout").get().result["reindexes_enqueued"] == 2
    assert not Job.objects.exclude(state=JobState.COMPLETED).exists()


def test_renaming_a_product_reindexes_the_bundles_using_its_variants(catalog):
    from bundles.selectors import bundle_search

    # Given the battery's product renamed
    product = Product.objects.get(pk=catalog["battery"].product_id)
    product.name = "Powercell range"
    product.save()
    fanout = jobs("fanout").get()
    assert fanout.payload["product_ids"] == [product.pk]
    assert fanout.payload["reindex_only"] is True
    assert fanout.target_type == "product"
    # When the worker runs, then only the kit (which uses the battery) is found by it
    run_burst_worker()
    assert [e.bundle_id for e in bundle_search(term="powercell")] == [catalog["kit"].pk]
    assert not jobs("recompute").exists()


def test_a_product_rename_burst_makes_one_fanout(catalog):
    product = Product.objects.get(pk=catalog["battery"].product_id)
    for n in range(5):
        product.name = f"Battery line {n}"
        product.save()
    assert jobs("fanout").get().merged_count == 4


def test_shell_products_and_shell_variants_renamed_enqueue_nothing(catalog):
    kit = Bundle.objects.select_related("shell_product", "shell_variant").get(pk=catalog["kit"].pk)
    # Saved directly (the recompute itself writes them without signals)
    kit.shell_product.name = "Renamed shell"
    kit.shell_product.save()
    kit.shell_variant.name = "Renamed shell variant"
    kit.shell_variant.save()
    assert Job.objects.count() == 0


def test_renaming_a_bundle_syncs_its_shell_without_loops(catalog):
    # Given a bundle renamed: a reindex; then a recompute that renames its shell product
    kit = Bundle.objects.get(pk=catalog["kit"].pk)
    kit.name = "Starter kit 2"
    kit.rule_value = Decimal("5")
    kit.save()
    run_burst_worker()
    kit = Bundle.objects.select_related("shell_product", "shell_variant").get(pk=kit.pk)
    assert kit.shell_product.name == "Starter kit 2" == kit.shell_variant.name
    # Then the shell's renames made no fan-out
    assert not jobs("fanout").exists()
    assert jobs("recompute").count() == 1


# --- safety violations ----------------------------------------------------------------------


@pytest.mark.parametrize("how", ["disable", "soft_delete"])
def test_disabling_or_deleting_a_component_enqueues_a_broken_scope_check_with_fix(catalog, how):
    camera = fresh(catalog["camera"])
    if how == "disable":
        camera.enabled = False
    else:
        camera.deleted_at = timezone.now()
    camera.save()
    check = jobs("consistency_check").get()
    assert check.payload == {"scope": "broken", "fix": True, "notify_admins": False}
    assert check.queue == "bundle-consistency-check"
    assert jobs("fanout").count() == 1  # the recomputes still happen


def test_a_burst_of_component_deletions_makes_one_broken_scope_check(catalog):
    for variant in (catalog["camera"], catalog["battery"]):
        variant = fresh(variant)
        variant.enabled = False
        variant.save()
    check = jobs("consistency_check").get()
    assert check.merged_count == 1


def test_disabling_a_variant_no_bundle_uses_enqueues_no_check(redis_conn):
    loose = fresh(make_variant())
    loose.enabled = False
    loose.save()
    assert not jobs("consistency_check").exists()


def test_re_enabling_a_component_enqueues_no_check(catalog):
    camera = fresh(catalog["camera"])
    camera.enabled = False
    camera.save()
    Job.objects.all().delete()
    camera.enabled = True
    camera.save()
    assert not jobs("consistency_check").exists()
    assert jobs("fanout").count() == 1


# --- components and bundles -----------------------------------------------------------------


def test_adding_a_component_enqueues_that_bundles_recompute(catalog):
    extra = make_variant(price="3.00")
    BundleComponent.objects.create(bundle=catalog["kit"], variant=extra, quantity=1)
    recompute = jobs("recompute").get()
    assert recompute.payload["bundle_id"] == catalog["kit"].pk
    assert recompute.dedup_key == f"recompute:{catalog['kit'].pk}"
    assert recompute.target_type == "bundle"
    assert recompute.target_id == str(catalog["kit"].pk)
    assert recompute.target_label == "Starter kit"
    assert rq_queued("bundle-recompute") == 1


def test_changing_a_component_quantity_enqueues_a_recompute_and_a_no_op_save_does_not(catalog):
    component = BundleComponent.objects.get(bundle=catalog["kit"], variant=catalog["battery"])
    component.save()
    assert Job.objects.count() == 0
    component.quantity = 3
    component.save()
    assert jobs("recompute").get().payload["bundle_id"] == catalog["kit"].pk


def test_deleting_a_component_enqueues_a_recompute(catalog):
    BundleComponent.objects.get(bundle=catalog["kit"], variant=catalog["battery"]).delete()
    assert jobs("recompute").get().payload["bundle_id"] == catalog["kit"].pk


def test_deleting_a_whole_bundle_enqueues_no_recompute_for_its_components(catalog):
    Bundle.objects.get(pk=catalog["kit"].pk).delete()
    assert not jobs("recompute").exists()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("pricing_rule", "amount_off"),
        ("rule_value", Decimal("5")),
        ("currency", "EUR"),
        ("availability_cap", 2),
        ("valid_from", timezone.now()),
        ("valid_to", timezone.now() + timezone.timedelta(days=3)),
        ("status", "archived"),
        ("status", "draft"),
    ],
)
def test_a_pricing_or_status_change_of_a_bundle_enqueues_its_recompute(catalog, field, value):
    kit = Bundle.objects.get(pk=catalog["kit"].pk)
    setattr(kit, field, value)
    kit.save()
    recompute = jobs("recompute").get()
    assert recompute.payload["bundle_id"] == kit.pk
    assert field in recompute.reason


def test_renaming_a_bundle_enqueues_a_reindex_not_a_recompute(catalog):
    kit = Bundle.objects.get(pk=catalog["kit"].pk)
    kit.name = "Starter kit 2"
    kit.save()
    assert not jobs("recompute").exists()
    assert jobs("reindex").get().payload == {"bundle_ids": [kit.pk]}


def test_a_bundle_save_changing_nothing_relevant_enqueues_nothing(catalog):
    kit = Bundle.objects.get(pk=catalog["kit"].pk)
    kit.save()
    kit.rule_value = "0.0000"
    kit.save()
    assert Job.objects.count() == 0


def test_pricing_change_and_component_change_in_one_admin_save_make_one_recompute(catalog):
    # Like an admin change form with an inline: the bundle and a component saved together
    with transaction.atomic():
        kit = Bundle.objects.get(pk=catalog["kit"].pk)
        kit.rule_value = Decimal("10")
        kit.save()
        component = kit.components.get(variant=catalog["battery"])
        component.quantity = 4
        component.save()
    recompute = jobs("recompute").get()
    assert recompute.merged_count == 1
    assert rq_queued("bundle-recompute") == 1


def test_an_unsaved_edit_after_a_save_in_a_transaction_is_still_seen_later(catalog):
    camera = fresh(catalog["camera"])
    with transaction.atomic():
        camera.price = Decimal("101.00")
        camera.save()
        camera.price = Decimal("102.00")  # edited, not saved, before the commit
    Job.objects.all().delete()
    camera.save()  # now 102 reaches the database: that is a change
    assert jobs("fanout").count() == 1
