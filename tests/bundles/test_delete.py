"""Deleting variants: hard delete of a used variant is refused; soft delete breaks bundles."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from bundles import services
from bundles.errors import BundleError, VariantInUseError
from bundles.models import Bundle, BundleComponent, ProductVariant
from jobs.models import Job, JobState
from tests.bundles.jobs_support import jobs, run_burst_worker
from tests.factories import make_bundle, make_variant

pytestmark = pytest.mark.django_db


def test_hard_delete_of_a_used_variant_names_the_bundles_and_deletes_nothing():
    battery = make_variant(sku="BAT-1")
    kit = make_bundle(name="Starter kit", components=[(battery, 2)])
    travel = make_bundle(name="Travel kit", components=[(battery, 1), (make_variant(), 1)])
    components_before = BundleComponent.objects.count()

    with pytest.raises(VariantInUseError) as exc:
        services.variant_hard_delete(variant_id=battery.pk)

    assert "Starter kit" in exc.value.message and "Travel kit" in exc.value.message
    assert "BAT-1" in exc.value.message
    assert {b.pk for b in exc.value.bundles} == {kit.pk, travel.pk}
    assert exc.value.code == "variant_in_use"
    assert ProductVariant.objects.filter(pk=battery.pk, deleted_at__isnull=True).exists()
    assert BundleComponent.objects.count() == components_before


def test_the_database_protects_a_used_variant_too():
    from django.db.models import ProtectedError

    battery = make_variant()
    make_bundle(components=[(battery, 1)])
    with pytest.raises(ProtectedError):
        battery.delete()


def test_hard_delete_of_an_unused_variant_deletes_it():
    spare = make_variant()
    services.variant_hard_delete(variant_id=spare.pk)
    assert not ProductVariant.objects.filter(pk=spare.pk).exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.redis
def test_soft_delete_breaks_the_bundles_using_it_in_the_background(redis_conn, settings):
    settings.BUNDLES_FANOUT_DEBOUNCE_SECONDS = 0
    battery = make_variant(sku="BAT-2")
    kit = make_bundle(name="Starter kit", components=[(battery, 1), (make_variant(), 1)])
    other = make_bundle()

    # When the variant is soft-deleted
    with CaptureQueriesContext(connection) as request:
        broken_ids = services.variant_soft_delete(variant_id=battery.pk)

    # Then the request names the affected bundles, recomputes nothing itself, and leaves jobs
    assert broken_ids == [kit.pk]
    assert not any("UPDATE" in q["sql"] and "bundles_bundle" in q["sql"] for q in request)
    assert Bundle.objects.get(pk=kit.pk).status == Bundle.Status.ACTIVE
    assert jobs("fanout").get().payload["variant_ids"] == [battery.pk]
    assert jobs("consistency_check").get().payload["scope"] == "broken"

    # When a worker runs them, then the bundle is broken, visibly
    run_burst_worker()
    kit.refresh_from_db()
    assert kit.status == Bundle.Status.BROKEN
    assert kit.status_before_broken == Bundle.Status.ACTIVE
    assert [r["code"] for r in kit.broken_reasons] == ["component_deleted"]
    assert "BAT-2" in kit.broken_reasons[0]["message"]
    assert kit.computed_availability == 0 and kit.shell_variant.enabled is False
    other.refresh_from_db()
    assert other.status == Bundle.Status.ACTIVE
    assert ProductVariant.objects.get(pk=battery.pk).deleted_at is not None
    assert not Job.objects.exclude(state=JobState.COMPLETED).exists()


def test_a_shell_variant_cannot_be_deleted_directly():
    kit = make_bundle()
    with pytest.raises(BundleError) as exc:
        services.variant_hard_delete(variant_id=kit.shell_variant_id)
    assert exc.value.code == "shell_variant"
    with pytest.raises(BundleError):
        services.variant_soft_delete(variant_id=kit.shell_variant_id)


def test_deleting_an_unknown_variant_is_a_clear_error():
    with pytest.raises(BundleError, match="No variant with id 999999"):
        services.variant_hard_delete(variant_id=999999)


@pytest.mark.django_db(transaction=True)
@pytest.mark.redis
def test_soft_delete_asks_for_its_jobs_itself_once_with_or_without_the_receivers(
    redis_conn, admin_user
):
    from bundles import signals

    battery, other = make_variant(sku="BAT-3"), make_variant(sku="BAT-4")
    make_bundle(components=[(battery, 1)])
    make_bundle(components=[(other, 1)])

    # When one variant is soft-deleted with the receivers connected (as always)
    services.variant_soft_delete(variant_id=battery.pk, requested_by=admin_user)
    # Then one fan-out and one broken-scope check were asked for, by the service, for the user
    fanout = jobs("fanout").get()
    check = jobs("consistency_check").get()
    assert fanout.payload["variant_ids"] == [battery.pk]
    assert {fanout.trigger, check.trigger} == {"admin"}
    assert fanout.requested_by == check.requested_by == admin_user
    assert "BAT-3 deleted" in fanout.reason

    # And with no receivers at all, the service still asks for them (it relies on no signal)
    signals.disconnect()
    try:
        services.variant_soft_delete(variant_id=other.pk)
    finally:
        signals.connect()
    fanout.refresh_from_db()
    assert fanout.payload["variant_ids"] == sorted([battery.pk, other.pk])  # joined the open one
    assert jobs("consistency_check").count() == 1  # deduped: one pending broken-scope check
    assert check.__class__.objects.get(pk=check.pk).merged_count == 1


def test_soft_deleting_a_deleted_variant_again_asks_for_nothing_more(
    django_capture_on_commit_callbacks,
):
    battery = make_variant()
    kit = make_bundle(components=[(battery, 1)])
    assert services.variant_soft_delete(variant_id=battery.pk) == [kit.pk]
    before = Job.objects.count()
    assert services.variant_soft_delete(variant_id=battery.pk) == [kit.pk]
    assert Job.objects.count() == before
