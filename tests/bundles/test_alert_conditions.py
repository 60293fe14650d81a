"""The bundles' alert conditions, through the real flow: a variant's price change waiting in a
paused bulk-operation queue makes bundle staleness fire; a consistency check leaving a broken
bundle makes check_broken fire."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from bundles import requests
from bundles.models import ProductVariant
from jobs.alerts.evaluation import evaluate_alerts
from jobs.alerts.models import AlertRule
from jobs.maintenance.relay import relay
from jobs.models import Job, JobState
from jobs.pause import set_paused
from tests.bundles.jobs_support import run_burst_worker
from tests.factories import make_bundle, make_variant

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis]

QUIET = {"email": False, "webhook": False, "cooldown_seconds": 0}


@pytest.fixture(autouse=True)
def no_fanout_debounce(settings):
    settings.BUNDLES_FANOUT_DEBOUNCE_SECONDS = 0


@pytest.fixture
def only_rule(redis_conn):
    AlertRule.objects.all().delete()
    return lambda **fields: AlertRule.objects.create(name="test-rule", **QUIET, **fields)


def test_a_change_waiting_in_a_paused_fanout_queue_fires_staleness_until_applied(only_rule):
    # Given a bundle, the bulk-operation queue paused, and a 10-minute staleness rule
    variant = make_variant(name="Camera")
    make_bundle(name="Kit", components=[(variant, 1)])
    run_burst_worker()
    only_rule(condition="bundle_staleness", threshold=600)
    set_paused("bundle-bulk-operation", True)

    # When the variant's price changes (the signal records a fan-out that cannot run)
    variant.price = Decimal("123.00")
    variant.save()
    run_burst_worker()
    fanout = Job.objects.get(kind="fanout")
    assert fanout.state == JobState.PENDING
    soon = evaluate_alerts()
    later = evaluate_alerts(now=fanout.created_at + timedelta(seconds=601))

    # Then staleness grows with the wait and fires past 10 minutes
    assert soon[0].event == "" and soon[0].value < 600
    assert later[0].event == "fired" and later[0].value == pytest.approx(601, abs=0.01)
    assert "fanout" in later[0].message

    # When the queue resumes and the workers apply the change, it resolves
    set_paused("bundle-bulk-operation", False)
    relay(grace_seconds=0)  # what the maintenance pass does for a job held while paused
    run_burst_worker()
    assert (
        not Job.objects.filter(kind__in=["fanout", "recompute_batch"])
        .exclude(state=JobState.COMPLETED)
        .exists()
    )
    done = evaluate_alerts(now=timezone.now() + timedelta(seconds=601))
    assert done[0].event == "resolved" and done[0].value == 0.0
    assert ProductVariant.objects.get(pk=variant.pk).price == Decimal("123.00")


def test_a_check_that_leaves_a_broken_bundle_fires_check_broken(only_rule):
    # Given a bundle whose component was deleted behind its back, and the rule
    gone = make_variant(name="Gone")
    make_bundle(name="Broken kit", components=[(gone, 1)])
    ProductVariant.objects.filter(pk=gone.pk).update(deleted_at=timezone.now())
    only_rule(condition="check_broken", threshold=0, window_seconds=3600)
    assert evaluate_alerts()[0].value is None  # no check yet: nothing to measure

    # When the consistency check runs on a real worker
    job = requests.bundles_check_enqueue(scope="all", fix=True, trigger="command")
    run_burst_worker()
    job.refresh_from_db()
    assert job.state == JobState.COMPLETED and job.result["broken"] == 1

    # Then the rule fires with the check's counts
    outcome = evaluate_alerts()[0]
    assert outcome.event == "fired" and outcome.value == 1.0
    assert f"check {job.pk}: checked 1, broken 1" in outcome.message
