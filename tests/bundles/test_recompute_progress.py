"""A recompute's progress is written outside its transaction: others see it at once, and a
cancel asked meanwhile does not wait for the recompute to commit."""

from __future__ import annotations

import contextlib
import threading
from decimal import Decimal

import pytest
from django.db import connections

from bundles.models import Bundle, ProductVariant
from bundles.services import bundle_recompute
from jobs.context import JobCancelled, JobContext
from jobs.models import Job, JobState
from jobs.services import job_cancel
from tests.factories import make_bundle, make_variant

pytestmark = pytest.mark.django_db(transaction=True)

# How long the look from outside may take before it counts as blocked by the recompute.
BLOCKED_AFTER = 3.0


def _running_job() -> Job:
    return Job.objects.create(
        queue="bundle-recompute",
        kind="bundles.recompute",
        payload={},
        trigger="admin",
        state=JobState.RUNNING,
        attempts=1,
        max_attempts=3,
        worker_name="w@host:1",
        rq_job_id="rq-1",
    )


def test_recompute_progress_is_seen_and_a_cancel_goes_through_while_it_runs():
    # Given a bundle to recompute as a running job's step
    camera = make_variant(price="100.00")
    kit = make_bundle(components=[(camera, 1)])
    ProductVariant.objects.filter(pk=camera.pk).update(price=Decimal("80.00"))
    job = _running_job()
    ctx = JobContext(job)
    outside: dict = {}

    def look_from_outside() -> None:  # another connection: an admin page, a cancel
        try:
            outside["progress"] = Job.objects.values_list("progress", flat=True).get(pk=job.pk)
            job_cancel(job_id=job.pk)
            outside["cancelled"] = True
        finally:
            connections.close_all()

    def progress(pct: int, message: str) -> None:
        ctx.set_progress(pct, message)
        if "thread" not in outside:
            outside["thread"] = threading.Thread(target=look_from_outside, daemon=True)
            outside["thread"].start()
            outside["thread"].join(timeout=BLOCKED_AFTER)

    # When it reports its first step, someone looks and asks to cancel
    with contextlib.suppress(JobCancelled):
        bundle_recompute(bundle_id=kit.pk, progress=progress)
    blocked = outside["thread"].is_alive()
    outside["thread"].join(timeout=60)
    # Then they saw the step at once and their cancel did not wait for the recompute
    assert not blocked, f"the cancel waited more than {BLOCKED_AFTER}s for the recompute"
    assert outside.get("progress") == 25
    assert outside.get("cancelled") is True
    assert Job.objects.get(pk=job.pk).cancel_requested is True
    # and the recompute itself was done
    assert Bundle.objects.get(pk=kit.pk).computed_price == Decimal("80.00")
