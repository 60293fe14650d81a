"""Schedules (rows of jobs.Schedule): idempotent registration with rq-scheduler, next runs in
UTC, firing, run now."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from io import StringIO

import django_rq
import pytest
from django.core.management import call_command

from jobs.models import Job, JobState, JobTrigger, Schedule
from jobs.registry import all_kinds
from jobs.request_functions import get_request
from jobs.scheduling.cron import next_run
from jobs.scheduling.fire import fire
from jobs.scheduling.listing import list_schedules
from jobs.scheduling.run_now import run_now
from jobs.scheduling.scheduler import get_scheduler
from jobs.scheduling.sync import FIRE_FUNC, register_schedules, registered_runs, schedule_queue
from tests.support import grant, schedules_from

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis]

TEST_SCHEDULES = [
    {
        "id": "test-every-minute",
        "cron": "* * * * *",
        "request": "tests.noop",
        "kwargs": {"token": "from-schedule", "dedup_key": "schedule:test-every-minute"},
        "description": "Test schedule",
    },
    {"id": "relay-and-reconcile", "cron": "* * * * *", "kind": "relay", "payload": {}},
]


@pytest.fixture
def test_schedules():
    with schedules_from(TEST_SCHEDULES):
        yield


def scheduled_ids(redis_conn) -> list[str]:
    return sorted(m.decode() for m in redis_conn.zrange("rq:scheduler:scheduled_jobs", 0, -1))


def test_scheduler_started_three_times_registers_each_schedule_once(redis_conn, settings):
    # When
    for _ in range(3):
        call_command("run_scheduler", "--register-only")
    # Then
    expected = sorted(f"schedule-{s['id']}" for s in settings.JOBS_SCHEDULES)
    assert scheduled_ids(redis_conn) == expected
    assert len(list(get_scheduler().get_jobs())) == len(settings.JOBS_SCHEDULES)


def test_registered_next_runs_are_the_cron_times_in_utc(redis_conn, settings):
    # When
    before = datetime.now(UTC)
    register_schedules()
    runs = registered_runs()
    # Then every schedule's next run is exactly its cron's next time in UTC
    for item in settings.JOBS_SCHEDULES:
        expected = next_run(item["cron"], after=before)
        assert abs((runs[item["id"]] - expected).total_seconds()) < 1, item["id"]
    nightly = runs["nightly-consistency-check"]
    assert (nightly.hour, nightly.minute) == (2, 0)
    weekly = runs["weekly-maintenance"]
    assert (weekly.weekday(), weekly.hour, weekly.minute) == (6, 3, 0)  # Sunday 03:00
    assert nightly.tzinfo == UTC


def test_next_run_is_computed_in_utc():
    wednesday_noon = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)
    assert next_run("0 2 * * *", after=wednesday_noon) == datetime(2026, 7, 2, 2, 0, tzinfo=UTC)
    assert next_run("0 3 * * 0", after=wednesday_noon) == datetime(2026, 7, 5, 3, 0, tzinfo=UTC)


def test_schedules_removed_from_settings_are_unregistered(redis_conn):
    # Given the test schedules were registered
    with schedules_from(TEST_SCHEDULES):
        register_schedules()
    assert "schedule-test-every-minute" in scheduled_ids(redis_conn)
    # When the deployment drops one and the scheduler restarts
    with schedules_from(TEST_SCHEDULES[1:]):
        register_schedules()
    # Then
    assert scheduled_ids(redis_conn) == ["schedule-relay-and-reconcile"]


@pytest.mark.usefixtures("test_schedules")
def test_an_entry_stored_with_another_function_path_is_registered_again(redis_conn):
    # Given an entry registered before ``fire`` moved (its job hash names the old path)
    scheduler = get_scheduler()
    register_schedules(scheduler)
    rq_id = "schedule-test-every-minute"
    [stale] = [job for job in scheduler.get_jobs() if job.id == rq_id]
    stale.func_name = "jobs.schedules.fire"
    stale.save()
    # When the scheduler syncs
    register_schedules(scheduler)
    # Then the entry calls the function that exists, and is still there once
    [job] = [job for job in scheduler.get_jobs() if job.id == rq_id]
    assert job.func_name == FIRE_FUNC == "jobs.scheduling.fire.fire"
    assert scheduled_ids(redis_conn).count(rq_id) == 1


@pytest.mark.usefixtures("test_schedules")
def test_a_due_schedule_enqueues_its_job_which_runs(redis_conn, run_burst):
    # Given a registered schedule that is due now (its score is the fire time it runs for)
    scheduler = get_scheduler()
    register_schedules(scheduler)
    due = datetime.now(UTC).timestamp() - 1
    redis_conn.zadd(
        "rq:scheduler:scheduled_jobs",
        {"schedule-test-every-minute": due, "schedule-relay-and-reconcile": due},
    )
    # When the scheduler ticks and a worker runs what it queued
    call_command("run_scheduler", "--burst")
    run_burst()  # fire() runs on the kind's queue and enqueues the ledger job, which runs too
    # Then the schedule's job ran, recorded with trigger "schedule"
    job = Job.objects.get(schedule_id="test-every-minute")
    assert job.trigger == JobTrigger.SCHEDULE
    assert job.kind == "test_noop"
    assert job.state == JobState.COMPLETED
    # the relay schedule leaves no ledger row
    assert Job.objects.count() == 1
    # and both are registered again for their next minute
    runs = registered_runs(scheduler)
    assert runs["test-every-minute"] > datetime.now(UTC) - timedelta(seconds=1)
    assert scheduled_ids(redis_conn) == [
        "schedule-relay-and-reconcile",
        "schedule-test-every-minute",
    ]


@pytest.mark.usefixtures("test_schedules")
def test_run_now_enqueues_once_and_records_who_asked(redis_conn, django_user_model):
    # Given
    user = django_user_model.objects.create_user("ops", password="x", is_staff=True)
    user = grant(user, "jobs.run_schedule", "jobs.view_job")
    # When pressed twice before the job starts
    first = run_now("test-every-minute", user)
    second = run_now("test-every-minute", user)
    # Then
    assert first.pk == second.pk
    assert first.trigger == JobTrigger.ADMIN
    assert first.requested_by == user
    assert Job.objects.get().merged_count == 1
    listed = {s["id"]: s for s in list_schedules()}
    assert listed["test-every-minute"]["last_job"].pk == first.pk
    assert listed["test-every-minute"]["next_run"].tzinfo is not None


def test_each_configured_schedule_fires_its_request(redis_conn, settings):
    # Schedules name request functions (bundles/requests.py registers them, autodiscovered);
    # each makes a job of the kind its request declares, with its arguments in the payload.
    kinds = {k.name for k in all_kinds()}
    for item in settings.JOBS_SCHEDULES:
        request = get_request(item["request"])  # raises UnknownRequest
        if item["request"] == "jobs.relay":
            assert fire(item["id"]) == {"relayed": 0, "reconciled": 0}
            continue
        if request.kind not in kinds:
            pytest.fail(f"schedule {item['id']}: kind {request.kind!r} is not registered")
        fire(item["id"])
        job = Job.objects.get(schedule_id=item["id"])
        assert job.kind == request.kind
        assert item["kwargs"].items() <= job.payload.items()
        assert job.trigger == JobTrigger.SCHEDULE


def test_a_disabled_schedule_stays_off_across_scheduler_restarts_and_never_fires(redis_conn):
    from jobs.scheduling.store import schedule_set_enabled

    # Given the test schedules are registered, then one is disabled in the admin
    with schedules_from(TEST_SCHEDULES):
        register_schedules()
        schedule_set_enabled(schedule_id="test-every-minute", enabled=False)
        # When the scheduler restarts (registers again)
        register_schedules()
        # Then the disabled schedule is not registered, and a run queued earlier does nothing
        assert "schedule-test-every-minute" not in scheduled_ids(redis_conn)
        assert "schedule-relay-and-reconcile" in scheduled_ids(redis_conn)
        assert fire("test-every-minute") == {"skipped": "schedule disabled"}
        assert not Job.objects.filter(kind="test_noop").exists()
        # And enabling it registers it again
        schedule_set_enabled(schedule_id="test-every-minute", enabled=True)
        assert "schedule-test-every-minute" in scheduled_ids(redis_conn)


@pytest.mark.usefixtures("test_schedules")
def test_run_now_runs_a_disabled_schedules_job_because_the_operator_asked(
    redis_conn, django_user_model
):
    from jobs.scheduling.store import schedule_set_enabled

    # Given a schedule an operator disabled
    user = django_user_model.objects.create_user("ops", password="x", is_staff=True)
    # the relay's request re-sends and settles jobs: it needs jobs.retry_job
    user = grant(user, "jobs.run_schedule", "jobs.view_job", "jobs.retry_job")
    register_schedules()
    schedule_set_enabled(schedule_id="test-every-minute", enabled=False)
    # When someone presses "run now"
    job = run_now("test-every-minute", user)
    # Then its job is enqueued all the same (only the cron skips a disabled schedule)
    assert isinstance(job, Job)
    assert job.kind == "test_noop"
    assert job.schedule_id == "test-every-minute"
    assert job.requested_by == user
    assert Job.objects.get(pk=job.pk).dispatched_at is not None
    # and the schedule stays disabled: the cron does not fire it
    assert fire("test-every-minute") == {"skipped": "schedule disabled"}
    assert "schedule-test-every-minute" not in scheduled_ids(redis_conn)
    # A disabled relay schedule runs too, and like always answers None (no ledger row)
    schedule_set_enabled(schedule_id="relay-and-reconcile", enabled=False)
    assert run_now("relay-and-reconcile", user) is None
    assert Job.objects.count() == 1


def test_scheduler_loop_started_three_times_keeps_each_schedule_once(redis_conn, settings):
    # Given every schedule registered and due at once
    call_command("run_scheduler", "--register-only", stdout=StringIO())
    expected = sorted(f"schedule-{s['id']}" for s in settings.JOBS_SCHEDULES)
    for start in range(3):
        redis_conn.zadd("rq:scheduler:scheduled_jobs", dict.fromkeys(expected, 0))
        # When the scheduler starts for real: registration, then its loop (one pass)
        call_command("run_scheduler", "--burst", stdout=StringIO())
        # Then each schedule is registered once, due again in the future
        assert scheduled_ids(redis_conn) == expected, f"start {start + 1}"
        runs = registered_runs()
        assert all(at > datetime.now(UTC) - timedelta(seconds=1) for at in runs.values())
    # and each pass queued every schedule's run once
    queued = [
        rq_id
        for name in {schedule_queue(s.request) for s in Schedule.objects.all()}
        for rq_id in django_rq.get_queue(name).get_job_ids()
    ]
    assert sorted(queued) == sorted(expected * 3)
    assert len(list(get_scheduler().get_jobs())) == len(settings.JOBS_SCHEDULES)
