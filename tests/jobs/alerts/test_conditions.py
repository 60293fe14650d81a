"""The conditions that need no failing kind: a paused queue's oldest job, a skipped schedule
fire, a SIGKILLed worker (a real ``run_worker`` subprocess), and the bundles' two."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from datetime import timedelta

import pytest
from django.utils import timezone
from rq.worker import Worker

from jobs.alerts.evaluation import evaluate_alerts
from jobs.alerts.models import AlertEvent, AlertRule
from jobs.enqueue import enqueue
from jobs.models import Job, JobState, Schedule, ScheduleFire
from jobs.pause import set_paused
from jobs.scheduling.fire import fire
from tests.support import wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis]

QUIET = {"email": False, "webhook": False}


def test_a_paused_queues_oldest_job_passing_its_threshold_fires(only_rule, run_burst):
    # Given a paused queue holding a job, and a rule of 60 s on that queue
    set_paused("bundle-reindex", True)
    job = enqueue("alert_test_job", payload={}, trigger="command", queue="bundle-reindex")
    run_burst()
    job.refresh_from_db()
    assert job.state == JobState.PENDING  # the workers leave it waiting
    only_rule(
        condition="oldest_waiting",
        subject_type="queue",
        subject="bundle-reindex",
        threshold=60,
        **QUIET,
    )
    # When it is evaluated now, and once the job has waited past 60 s
    now = evaluate_alerts()
    later = evaluate_alerts(now=job.created_at + timedelta(seconds=61))

    # Then it fires only once the threshold is passed, and says the queue is paused
    assert now[0].event == "" and now[0].value < 60
    assert later[0].event == "fired" and later[0].value == pytest.approx(61, abs=0.01)
    assert "bundle-reindex (paused)" in later[0].message
    assert AlertRule.objects.get().state == "firing"


def test_a_schedule_whose_fire_was_skipped_fires(only_rule):
    # Given a schedule, and a rule on its missed fires
    schedule = Schedule.objects.get(name="nightly-consistency-check")
    only_rule(
        condition="schedule_missed",
        subject_type="schedule",
        subject=schedule.name,
        threshold=0,
        window_seconds=3600,
        **QUIET,
    )
    assert evaluate_alerts()[0].event == ""
    # When a fire arrives two hours late (beyond its grace period) and is skipped
    result = fire(schedule.name, fire_at=timezone.now() - timedelta(hours=2))
    assert "skipped" in result
    assert ScheduleFire.objects.filter(schedule=schedule, outcome="skipped").count() == 1

    # Then the rule fires, naming the schedule and why
    outcome = evaluate_alerts()[0]
    assert outcome.event == "fired" and outcome.value == 1.0
    assert "nightly-consistency-check: Fire at" in outcome.message
    assert "beyond the grace period" in outcome.message


def test_a_schedule_whose_last_job_failed_fires(only_rule):
    schedule = Schedule.objects.get(name="nightly-consistency-check")
    only_rule(condition="schedule_failed", threshold=0, **QUIET)
    job = Job.objects.create(
        kind="consistency_check",
        queue="bundle-consistency-check",
        trigger="schedule",
        state=JobState.FAILED,
        settled_at=timezone.now(),
    )
    assert evaluate_alerts()[0].event == ""
    Schedule.objects.filter(pk=schedule.pk).update(last_job=job)
    outcome = evaluate_alerts()[0]
    assert outcome.event == "fired" and f"job {job.pk} failed" in outcome.message


def test_a_sigkilled_worker_fires_dead_workers_within_a_minute(
    only_rule, start_worker, redis_conn, token
):
    # Given a live worker subprocess and the dead_workers rule
    name = f"doomed-{token[:8]}"
    worker = start_worker("--name", name, "bundle-reindex")
    wait_until(lambda: name in {w.name for w in Worker.all(connection=redis_conn)}, timeout=60)
    rule = only_rule(condition="dead_workers", threshold=0, window_seconds=900, **QUIET)
    assert evaluate_alerts()[0].value == 0.0

    # When it is SIGKILLed with its children (no chance to unregister)
    children = worker.children()
    worker.kill()
    for pid in children:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    killed_at = time.monotonic()

    # Then the rule fires within a minute, naming the worker
    def firing() -> bool:
        evaluate_alerts()
        return AlertRule.objects.get(pk=rule.pk).state == "firing"

    wait_until(firing, timeout=60, interval=1)
    elapsed = time.monotonic() - killed_at
    print(f"dead_workers fired {elapsed:.1f}s after the SIGKILL")
    assert elapsed < 60
    event = AlertEvent.objects.get(rule=rule)
    assert event.kind == "fired" and name in event.message
