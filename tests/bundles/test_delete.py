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
