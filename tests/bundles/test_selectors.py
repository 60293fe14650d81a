"""Selectors the jobs, admin and GraphQL read through."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from bundles.errors import BundleNotFound, InvalidScope
from bundles.models import Bundle
from bundles.selectors import bundle_ids_for_scope, bundle_ids_split, bundle_ids_using_variants
from bundles.services import variant_soft_delete
from tests.bundles.jobs_support import run_burst_worker
from tests.factories import make_bundle, make_variant

pytestmark = pytest.mark.django_db


@pytest.mark.django_db(transaction=True)
@pytest.mark.redis
def test_scopes_select_all_active_or_broken_bundles(redis_conn, settings):
    settings.BUNDLES_FANOUT_DEBOUNCE_SECONDS = 0
    battery = make_variant()
    active = make_bundle(status="active")
    draft = make_bundle(status="draft")
    broken = make_bundle(components=[(battery, 1)], status="active")
    variant_soft_delete(variant_id=battery.pk)
    run_burst_worker()  # the fan-out's recompute breaks the bundle

    assert bundle_ids_for_scope(scope="all") == sorted([active.pk, draft.pk, broken.pk])
    assert bundle_ids_for_scope(scope="active") == [active.pk]
    assert bundle_ids_for_scope(scope="broken") == [broken.pk]


def test_an_id_list_scope_must_name_existing_bundles():
    bundle = make_bundle()
    assert bundle_ids_for_scope(scope=[bundle.pk, bundle.pk]) == [bundle.pk]
    with pytest.raises(BundleNotFound) as exc:
        bundle_ids_for_scope(scope=[bundle.pk, 98765, 98764])
    assert exc.value.ids == [98764, 98765]
    assert "98764, 98765" in exc.value.message


@pytest.mark.parametrize("scope", ["everything", "", ["x"]])
def test_an_unknown_scope_lists_the_valid_ones(scope):
    with pytest.raises(InvalidScope, match="'all', 'active', 'broken'"):
        bundle_ids_for_scope(scope=scope)


def test_bundles_using_variants_are_found_once_each():
    shared, other = make_variant(), make_variant()
    a = make_bundle(components=[(shared, 1), (other, 1)])
    b = make_bundle(components=[(shared, 2)])
    make_bundle()
    assert bundle_ids_using_variants(variant_ids=[shared.pk, other.pk]) == sorted([a.pk, b.pk])
    assert bundle_ids_using_variants(variant_ids=[]) == []


def test_a_dense_id_list_is_checked_in_one_read_of_its_range_and_reads_nothing_outside(
    django_assert_num_queries,
):
    # Given 700 bundles, and a selection of 600 of them plus two ids that do not exist
    call_command("seed_demo", bundles=700, reset=True, verbosity=0)
    ids = sorted(Bundle.objects.values_list("pk", flat=True))
    wanted = [*ids[50:650], ids[-1] + 1000, ids[0] - 1]
    # When they are split: one query (a range read), not one per 500
    with django_assert_num_queries(1) as captured:
        found, missing = bundle_ids_split(wanted)
    # Then the split is exact, in the given order, and the range is the selection's own
    assert found == ids[50:650] and missing == [ids[-1] + 1000, ids[0] - 1]
    assert "BETWEEN" in captured.captured_queries[0]["sql"]


def test_a_sparse_id_list_is_checked_in_chunks_not_by_reading_its_whole_range(
    django_assert_num_queries,
):
    call_command("seed_demo", bundles=700, reset=True, verbosity=0)
    ids = sorted(Bundle.objects.values_list("pk", flat=True))
    wanted = [*ids[:600], 10_000_000]  # one id far away: a range read would span millions
    with django_assert_num_queries(2) as captured:  # 601 ids, 500 a query
        found, missing = bundle_ids_split(wanted)
    assert found == ids[:600] and missing == [10_000_000]
    assert not any("BETWEEN" in q["sql"] for q in captured.captured_queries)
