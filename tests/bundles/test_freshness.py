"""Bundle freshness: a component change not yet applied shows as a growing staleness on the
System → Jobs strip, in /metrics and in /health/, and returns to ~0 once a worker applied it."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.db import transaction
from django.urls import reverse
from prometheus_client.parser import text_string_to_metric_families

from bundles import freshness
from bundles.models import Bundle, ProductVariant
from jobs.models import Job, JobState
from jobs.services import queue_pause, queue_resume
from tests.bundles.jobs_support import run_burst_worker, wait_until
from tests.factories import make_bundle, make_variant
from tests.support import grant

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis]

BULK, RECOMPUTE = "bundle-bulk-operation", "bundle-recompute"


@pytest.fixture(autouse=True)
def no_fanout_debounce(settings):
    settings.BUNDLES_FANOUT_DEBOUNCE_SECONDS = 0


@pytest.fixture
def operator(client):
    user = grant(get_user_model().objects.create_user("op", is_staff=True), "jobs.view_job")
    client.force_login(user)
    return user


def scraped_staleness(client) -> dict[str, float]:
    text = client.get("/metrics").content.decode()
    [family] = [
        f for f in text_string_to_metric_families(text) if f.name == "bundles_staleness_seconds"
    ]
    return {s.labels["queue"]: s.value for s in family.samples}


def strip_pill(client) -> str:
    html = client.get(reverse("admin:jobs_job_overview")).content.decode()
    [pill] = re.findall(r'<span class="job-pill (?:ok|warn|bad)"[^>]*data-probe>([^<]+)<', html)
    return pill


def health_staleness(client) -> str:
    return client.get("/health/", HTTP_ACCEPT="application/json").json()["checks"][
        "bundles_staleness"
    ]


def test_a_change_held_in_a_paused_bulk_queue_grows_stale_everywhere_then_returns_to_zero(
    client, operator, settings
):
    # Given a bundle using a battery, and the fan-out queue paused
    settings.BUNDLES_STALENESS_HEALTH_SECONDS = 2
    battery = make_variant(price="10.00")
    bundle = make_bundle(components=[(battery, 1)])
    queue_pause(queue=BULK)
    assert freshness.staleness_seconds() == 0
    assert strip_pill(client) == "bundles up to date"
    assert health_staleness(client) == "ok"

    # When the battery's price change is committed: its fan-out waits in the paused queue
    with transaction.atomic():
        battery = ProductVariant.objects.get(pk=battery.pk)
        battery.price = Decimal("20.00")
        battery.save()
    fanout = Job.objects.get(kind="fanout")
    assert fanout.state == JobState.PENDING

    # Then the staleness grows on the bulk queue, in /metrics, on the strip and in /health/
    first = scraped_staleness(client)
    assert first[RECOMPUTE] == 0
    wait_until(lambda: scraped_staleness(client)[BULK] > first[BULK] + 1, timeout=10)
    assert re.fullmatch(r"bundles \d+s behind", strip_pill(client))
    wait_until(lambda: health_staleness(client) != "ok", timeout=10)
    assert BULK in health_staleness(client) and "limit 2s" in health_staleness(client)
    assert fanout.state == Job.objects.get(pk=fanout.pk).state == JobState.PENDING

    # When the queue is resumed and a worker runs the fan-out and its batch
    queue_resume(queue=BULK)
    run_burst_worker()

    # Then the change is applied and every figure is back to ~0
    assert Bundle.objects.get(pk=bundle.pk).computed_price == Decimal("20.00")
    assert scraped_staleness(client) == {BULK: 0.0, RECOMPUTE: 0.0}
    assert strip_pill(client) == "bundles up to date"
    assert health_staleness(client) == "ok"


def test_a_batch_waiting_after_its_fanout_counts_from_the_fanouts_change(client, operator):
    # Given a fan-out that ran and opened a recompute batch, which waits (its queue paused)
    battery = make_variant(price="10.00")
    make_bundle(components=[(battery, 1)])
    queue_pause(queue=RECOMPUTE)
    with transaction.atomic():
        battery = ProductVariant.objects.get(pk=battery.pk)
        battery.price = Decimal("11.00")
        battery.save()
    run_burst_worker()
    fanout = Job.objects.get(kind="fanout", state=JobState.COMPLETED)
    batch = Job.objects.get(kind="recompute_batch", state=JobState.PENDING)
    # Then the recompute queue's staleness dates from the change (the fan-out), not the batch
    oldest = freshness.oldest_unapplied_change()
    assert oldest == {BULK: None, RECOMPUTE: fanout.created_at}
    assert batch.created_at > fanout.created_at


def test_consistency_results_are_metrics(client, operator):
    # Given a broken bundle and a completed check with its counts
    broken = make_bundle(components=[(make_variant(), 1)])
    Bundle.objects.filter(pk=broken.pk).update(status=Bundle.Status.BROKEN)
    Job.objects.create(
        queue="bundle-consistency-check",
        kind="consistency_check",
        trigger="schedule",
        state=JobState.COMPLETED,
        result={"checked": 40, "ok": 37, "broken": 3, "fixed": 2, "errors": 0},
        settled_at="2026-12-01T02:00:05Z",
    )
    # When
    text = client.get("/metrics").content.decode()
    got = {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples}
    # Then
    assert got["bundles_broken"] == 1
    assert (got["bundles_check_last_checked"], got["bundles_check_last_broken"]) == (40, 3)
    assert got["bundles_check_last_fixed"] == 2
    assert got["bundles_check_last_timestamp_seconds"] == 1796090405.0
