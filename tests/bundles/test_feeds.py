"""Feeds: a catalog changed with QuerySet.update() reaches its bundles through the feed service
and ``manage.py variants_changed``."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db.models import F
from django.utils.timezone import now

from bundles import engine, feeds
from bundles.errors import InvalidJobOptions, VariantNotFound
from bundles.fanout import variants_changed
from bundles.models import Bundle, ProductVariant
from jobs.models import Job, JobState
from tests.bundles.jobs_support import jobs, run_burst_worker
from tests.factories import make_bundle, make_variant

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis]


@pytest.fixture(autouse=True)
def no_fanout_debounce(settings):
    settings.BUNDLES_FANOUT_DEBOUNCE_SECONDS = 0


@pytest.fixture
def imported(redis_conn):
    """Three bundles over four variants whose stock an import then changed with update()."""
    variants = [make_variant(price="10.00", stock=10) for _ in range(4)]
    kits = [
        make_bundle(components=[(variants[0], 1), (variants[1], 1)]),
        make_bundle(components=[(variants[1], 2)]),
        make_bundle(components=[(variants[3], 1)]),
    ]
    Job.objects.all().delete()
    ProductVariant.objects.filter(pk__in=[v.pk for v in variants[:3]]).update(stock_on_hand=4)
    assert Job.objects.count() == 0  # update() told nobody
    return variants, kits


def availability(kits) -> list[int]:
    return [Bundle.objects.get(pk=k.pk).computed_availability for k in kits]


def test_the_feed_service_recomputes_the_bundles_using_the_changed_variants(imported):
    variants, kits = imported
    (job,) = feeds.variants_changed_feed(
        variant_ids=[v.pk for v in variants[:3]], reason="supplier feed"
    )
    assert job.kind == "fanout" and job.reason == "supplier feed"
    run_burst_worker()
    assert availability(kits) == [4, 2, 10]  # the third bundle's variant did not change
    (batch,) = jobs("recompute_batch")
    assert batch.state == JobState.COMPLETED
    assert sorted(batch.payload["bundle_ids"]) == sorted([kits[0].pk, kits[1].pk])
    assert batch.result["changes"][str(kits[1].pk)]["availability"] == [5, 2]


def test_the_feed_service_refuses_unknown_or_bad_ids_and_records_nothing(imported):
    variants, _kits = imported
    with pytest.raises(VariantNotFound) as raised:
        feeds.variants_changed_feed(variant_ids=[variants[0].pk, 999_999])
    assert raised.value.ids == [999_999] and "999999" in raised.value.message
    for bad in ([], ["x"], [0], [True]):
        with pytest.raises(InvalidJobOptions):
            feeds.variants_changed_feed(variant_ids=bad)
    assert Job.objects.count() == 0


def test_the_command_takes_ids(imported):
    variants, kits = imported
    out = StringIO()
    call_command("variants_changed", "--ids", f"{variants[0].pk},{variants[1].pk}", stdout=out)
    assert jobs("fanout").get().payload["variant_ids"] == [variants[0].pk, variants[1].pk]
    run_burst_worker()
    assert availability(kits) == [4, 2, 10]


def test_the_command_reads_a_file_and_runs_with_sync(imported, tmp_path):
    variants, kits = imported
    feed = tmp_path / "changed.txt"
    feed.write_text(f"# supplier feed\n{variants[0].pk}\n{variants[1].pk}, {variants[2].pk}\n")
    call_command("variants_changed", "--file", str(feed), "--sync", stdout=StringIO())
    assert availability(kits) == [4, 2, 10]
    assert jobs("recompute_batch").get().state == JobState.COMPLETED


def test_the_command_refuses_unknown_ids_and_a_missing_file(imported, tmp_path):
    with pytest.raises(CommandError, match="No variant with id 999999"):
        call_command("variants_changed", "--ids", "999999", stdout=StringIO())
    with pytest.raises(CommandError, match="Cannot read"):
        call_command("variants_changed", "--file", str(tmp_path / "nope.txt"), stdout=StringIO())
    with pytest.raises(CommandError, match="not a valid variant id"):
        call_command("variants_changed", "--ids", "abc", stdout=StringIO())
    assert Job.objects.count() == 0


@pytest.fixture
def big_feed(redis_conn, settings, tmp_path):
    """A feed file naming 12,000 variants an import changed (28,000 bundles use them and
    2,000 more). A fan-out of those 2,000 is open already (the cap is 5,000 here): the feed
    fills it up to the feed's own size and opens a second fan-out for the rest."""
    settings.BUNDLES_FANOUT_MAX_VARIANTS = 5000
    call_command("seed_demo", bundles=28_000, reset=True, stdout=StringIO())
    components = ProductVariant.objects.filter(product__is_bundle_shell=False)
    ids = list(components.order_by("pk").values_list("pk", flat=True))
    assert len(ids) >= 14_000
    ProductVariant.objects.filter(pk__in=ids[:14_000]).update(price=F("price") + 1, stock_on_hand=7)
    variants_changed(variant_ids=ids[12_000:14_000])  # pending, sent to RQ
    feed = tmp_path / "feed.txt"
    feed.write_text("\n".join(map(str, ids[:12_000])))
    return feed


def wrong_bundles() -> int:
    """Bundles whose stored values differ from a fresh evaluation."""
    ids = list(Bundle.objects.order_by("pk").values_list("pk", flat=True))
    bad = 0
    for start in range(0, len(ids), 2000):
        outcomes = engine.evaluate_batch(ids[start : start + 2000], lock=False, now=now())
        bad += sum(1 for o in outcomes if o.values_changed() or o.stale())
    return bad


def test_a_feed_bigger_than_one_fanout_runs_every_fanout_with_sync(big_feed):
    assert wrong_bundles() > 10_000  # the import changed nearly every bundle
    out = StringIO()
    call_command("variants_changed", "--file", str(big_feed), "--sync", stdout=out)
    fanouts = jobs("fanout")
    assert fanouts.count() == 2
    assert set(fanouts.values_list("state", flat=True)) == {JobState.COMPLETED}
    assert out.getvalue().count("completed.") == 2  # the command ran and reports both
    assert wrong_bundles() == 0


def test_a_feed_bigger_than_one_fanout_reaches_every_bundle_through_workers(big_feed):
    out = StringIO()
    call_command("variants_changed", "--file", str(big_feed), stdout=out)
    fanouts = jobs("fanout")
    assert fanouts.count() == 2
    for fanout in fanouts:
        assert str(fanout.pk) in out.getvalue()  # announced, every one
    run_burst_worker()
    assert set(fanouts.values_list("state", flat=True)) == {JobState.COMPLETED}
    assert wrong_bundles() == 0
