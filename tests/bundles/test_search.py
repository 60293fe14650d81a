"""The search index: active bundles are found by name, component name and SKU.

Runs on SQLite (LIKE fallback) and on PostgreSQL (full-text search) alike.
"""

from __future__ import annotations

import pytest
from django.db import connection

from bundles import services
from bundles.models import Bundle, ProductVariant
from bundles.selectors import bundle_search
from tests.bundles.jobs_support import run_burst_worker
from tests.factories import make_bundle, make_variant

pytestmark = pytest.mark.django_db


@pytest.fixture
def starter_kit():
    camera = make_variant(name="Mirrorless camera", sku="CAM-100")
    battery = make_variant(name="Lithium battery", sku="BAT-200")
    return make_bundle(name="Starter kit", components=[(camera, 1), (battery, 2)])


def titles(term: str) -> list[str]:
    return [entry.title for entry in bundle_search(term=term)]


def test_active_bundle_is_found_by_its_name(starter_kit):
    assert titles("starter") == ["Starter kit"]
    assert titles("Starter kit") == ["Starter kit"]


def test_active_bundle_is_found_by_a_component_name(starter_kit):
    assert titles("battery") == ["Starter kit"]
    assert titles("mirrorless camera") == ["Starter kit"]


def test_active_bundle_is_found_by_a_component_sku_and_its_own_sku(starter_kit):
    assert titles("BAT-200") == ["Starter kit"]
    assert titles(starter_kit.shell_variant.sku) == ["Starter kit"]


def test_bundle_is_not_found_once_archived(starter_kit):
    services.bundles_set_status(bundle_ids=[starter_kit.pk], status="archived")
    assert titles("starter") == []
    assert titles("battery") == []


@pytest.mark.django_db(transaction=True)
@pytest.mark.redis
def test_draft_and_broken_bundles_are_not_found(starter_kit, redis_conn, settings):
    settings.BUNDLES_FANOUT_DEBOUNCE_SECONDS = 0
    make_bundle(name="Starter draft", status="draft")
    assert titles("starter") == ["Starter kit"]
    battery = ProductVariant.objects.get(sku="BAT-200")
    services.variant_soft_delete(variant_id=battery.pk)
    run_burst_worker()  # the fan-out's recompute breaks the bundle and syncs its entry
    assert titles("starter") == []


@pytest.mark.django_db(transaction=True)
@pytest.mark.redis
def test_archiving_through_save_hides_the_bundle_once_the_worker_ran(starter_kit, redis_conn):
    # Given an active bundle, found, with an enabled shell
    assert titles("starter") == ["Starter kit"]
    # When its status is changed with a plain save() (a shell, a script)
    kit = Bundle.objects.get(pk=starter_kit.pk)
    kit.status = Bundle.Status.ARCHIVED
    kit.save()
    run_burst_worker()
    # Then its recompute ran: search no longer finds it and its shell is disabled
    assert titles("starter") == []
    assert titles("BAT-200") == []
    shell = ProductVariant.objects.get(pk=starter_kit.shell_variant_id)
    assert shell.enabled is False
    assert Bundle.objects.get(pk=kit.pk).status == Bundle.Status.ARCHIVED


def test_unrelated_term_finds_nothing(starter_kit):
    assert titles("kettle") == []
    assert titles("   ") == []


def test_a_renamed_component_is_found_after_recompute(starter_kit):
    ProductVariant.objects.filter(sku="CAM-100").update(name="Rangefinder body")
    services.bundle_recompute(bundle_id=starter_kit.pk)
    assert titles("rangefinder") == ["Starter kit"]


def test_limit_caps_the_number_of_results():
    for i in range(4):
        make_bundle(name=f"Coffee set {i}")
    assert len(bundle_search(term="coffee", limit=2)) == 2


@pytest.mark.skipif(connection.vendor != "postgresql", reason="tsvector exists on PostgreSQL only")
def test_postgres_entries_carry_a_search_document(starter_kit):
    entry = starter_kit.search_entry
    entry.refresh_from_db()
    assert entry.document  # filled by the one UPDATE after bulk writes
