"""Schedules carry the permission of the work they ask for: a schedule-only user cannot create,
edit, enable, run or fire (through a row they last changed) a request outside their
permissions; arguments are validated by the request when the schedule is saved."""

from __future__ import annotations

import importlib
from datetime import timedelta

import pytest
from django.apps import apps as django_apps
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission, User
from django.utils import timezone

from jobs.errors import JobError, JobPermissionDenied
from jobs.maintenance.prune import prune_settled_jobs
from jobs.models import Job, Schedule
from jobs.request_functions import get_request
from jobs.scheduling.fire import fire
from jobs.scheduling.run_now import run_now
from jobs.scheduling.store import schedule_create, schedule_set_enabled, schedule_update
from jobs.scheduling.validation import ScheduleError

pytestmark = [pytest.mark.django_db]

SCHEDULE_ONLY = ("jobs.view_job", "jobs.add_schedule", "jobs.change_schedule", "jobs.run_schedule")
BOTH = (*SCHEDULE_ONLY, "bundles.change_bundle", "jobs.delete_job")
FIELDS = ("cron", "timezone", "request", "arguments", "enabled", "grace_seconds", "changed_by_id")


def user_with(*perms: str) -> User:
    user = User.objects.create_user(username=f"u{User.objects.count()}", is_staff=True)
    for dotted in perms:
        app_label, codename = dotted.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    return User.objects.get(pk=user.pk)


def snapshot(name: str) -> dict:
    row = Schedule.objects.get(name=name)
    return {f: getattr(row, f) for f in FIELDS}


def refusals(user: User) -> list[str]:
    return list(
        LogEntry.objects.filter(user=user, change_message__startswith="Refused")
        .order_by("pk")
        .values_list("change_message", flat=True)
    )


@pytest.fixture
def scheduler_only():
    return user_with(*SCHEDULE_ONLY)


# --- the generic jobs.enqueue request is gone -------------------------------------------------


def test_no_schedule_can_ask_for_any_kind_and_payload_through_jobs_enqueue():
    superuser = User.objects.create_superuser("root", password=None)
    with pytest.raises(ScheduleError) as caught:
        schedule_create(
            user=superuser,
            name="archive-all",
            cron="* * * * *",
            request="jobs.enqueue",
            arguments={"kind": "bulk_operation", "payload": {"operation": "archive"}},
        )
    assert caught.value.field == "request"
    assert not Schedule.objects.filter(name="archive-all").exists()


def test_every_registered_request_declares_the_permission_its_work_needs():
    assert get_request("bundles.check").permissions == ("bundles.change_bundle",)
    assert set(get_request("bundles.maintenance").permissions) == {
        "bundles.change_bundle",
        "jobs.delete_job",
    }
    assert get_request("bundles.reindex").permissions == ("bundles.change_bundle",)


def test_the_migration_disables_schedules_that_used_jobs_enqueue():
    row = Schedule.objects.create(
        name="old-enqueue",
        cron="* * * * *",
        request="jobs.enqueue",
        arguments={"kind": "bulk_operation", "payload": {"operation": "archive"}},
    )
    migration = importlib.import_module("jobs.migrations.0014_schedule_request_permissions")
    migration.disable_generic_enqueue_schedules(django_apps, None)
    row.refresh_from_db()
    assert row.enabled is False
    assert "jobs.enqueue" in row.description


# --- each write door of the service, refused for the schedule-only user -----------------------


def test_schedule_only_user_cannot_create_a_schedule_for_work_they_may_not_do(scheduler_only):
    with pytest.raises(JobPermissionDenied, match="bundles.change_bundle"):
        schedule_create(
            user=scheduler_only,
            name="my-check",
            cron="* * * * *",
            request="bundles.check",
            arguments={"scope": "all", "fix": True},
        )
    assert not Schedule.objects.filter(name="my-check").exists()
    assert len(refusals(scheduler_only)) == 1


def test_schedule_only_user_cannot_edit_the_weekly_maintenance_and_nothing_changes(
    scheduler_only,
):
    before = snapshot("weekly-maintenance")
    for changes in ({"cron": "* * * * *"}, {"arguments": {"retention_days": 1}}):
        with pytest.raises(JobPermissionDenied, match="jobs.delete_job"):
            schedule_update(schedule_id="weekly-maintenance", user=scheduler_only, **changes)
    assert snapshot("weekly-maintenance") == before
    assert len(refusals(scheduler_only)) == 2


def test_schedule_only_user_cannot_enable_or_disable_the_nightly_check(scheduler_only):
    before = snapshot("nightly-consistency-check")
    with pytest.raises(JobPermissionDenied):
        schedule_set_enabled(
            schedule_id="nightly-consistency-check", enabled=False, user=scheduler_only
        )
    assert snapshot("nightly-consistency-check") == before
    assert refusals(scheduler_only)


def test_schedule_only_user_cannot_move_a_schedule_onto_a_request_they_may_not_do(
    scheduler_only,
):
    # Given a schedule whose request they may do (the test request needs jobs.view_job)
    schedule_create(user=None, name="probe", cron="0 0 * * *", request="tests.noop")
    before = snapshot("probe")
    # When they point it at the maintenance
    with pytest.raises(JobPermissionDenied):
        schedule_update(schedule_id="probe", user=scheduler_only, request="bundles.maintenance")
    # Then
    assert snapshot("probe") == before


def test_schedule_only_user_cannot_run_now_a_request_they_may_not_do(scheduler_only):
    with pytest.raises(JobPermissionDenied, match="bundles.change_bundle"):
        run_now("nightly-consistency-check", user=scheduler_only)
    with pytest.raises(JobPermissionDenied):
        run_now("weekly-maintenance", user=scheduler_only)
    assert not Job.objects.exists()
    assert len(refusals(scheduler_only)) == 2


def test_a_user_with_both_permissions_edits_and_runs_and_is_the_one_who_asked():
    user = user_with(*BOTH)
    schedule_update(schedule_id="weekly-maintenance", user=user, arguments={"retention_days": 7})
    job = run_now("weekly-maintenance", user=user)
    assert job.requested_by == user
    assert job.payload["retention_days"] == 7
    assert Schedule.objects.get(name="weekly-maintenance").changed_by == user
    assert refusals(user) == []


# --- the cron fire --------------------------------------------------------------------------


def test_a_fire_records_who_last_changed_the_schedule_as_requested_by():
    user = user_with(*BOTH)
    schedule_update(schedule_id="nightly-consistency-check", user=user, cron="* * * * *")
    result = fire("nightly-consistency-check", fire_at=timezone.now())
    job = Job.objects.get(pk=result["job"])
    assert job.requested_by == user


def test_a_fire_of_a_schedule_last_changed_by_someone_without_the_permission_runs_nothing(
    scheduler_only,
):
    # Given a row last changed by the schedule-only user (before this rule, or since demoted)
    Schedule.objects.filter(name="weekly-maintenance").update(
        changed_by=scheduler_only, arguments={"retention_days": 1}
    )
    # When the scheduler fires it
    result = fire("weekly-maintenance", fire_at=timezone.now())
    # Then nothing ran, and the schedule says why
    assert "skipped" in result and "jobs.delete_job" in result["skipped"]
    assert not Job.objects.exists()
    row = Schedule.objects.get(name="weekly-maintenance")
    assert "jobs.delete_job" in row.last_skipped_note
    assert refusals(scheduler_only)


def test_a_fire_of_a_schedule_nobody_changed_runs_as_the_system():
    result = fire("nightly-consistency-check", fire_at=timezone.now())
    assert Job.objects.get(pk=result["job"]).requested_by is None


# --- arguments validated by the request at save time ------------------------------------------


@pytest.mark.parametrize("scope", ["everything", 5, {"a": 1}, None])
def test_a_bad_scope_is_refused_when_the_schedule_is_saved(scope):
    before = snapshot("nightly-consistency-check")
    with pytest.raises(ScheduleError) as caught:
        schedule_update(schedule_id="nightly-consistency-check", arguments={"scope": scope})
    assert caught.value.field == "arguments"
    assert snapshot("nightly-consistency-check") == before


@pytest.mark.parametrize("days", [0, -1, "7", True])
def test_retention_below_the_floor_or_not_a_number_is_refused(days, settings):
    settings.JOBS_MIN_RETENTION_DAYS = 1
    with pytest.raises(ScheduleError) as caught:
        schedule_update(schedule_id="weekly-maintenance", arguments={"retention_days": days})
    assert caught.value.field == "arguments"


def test_the_pruner_refuses_a_retention_below_the_floor(settings):
    settings.JOBS_MIN_RETENTION_DAYS = 2
    Job.objects.create(
        queue="bundle-recompute",
        kind="test_noop",
        trigger="admin",
        state="completed",
        settled_at=timezone.now() - timedelta(days=1, hours=1),
    )
    with pytest.raises(JobError, match="at least 2"):
        prune_settled_jobs(older_than_days=1)
    assert Job.objects.count() == 1


def test_run_now_of_a_request_that_fails_at_run_time_is_a_schedule_error():
    # Given a reindex of a bundle that is gone (well-formed arguments: they save)
    schedule_create(
        user=None,
        name="reindex-gone",
        cron="0 0 * * *",
        request="bundles.reindex",
        arguments={"bundle_ids": [987654]},
    )
    with pytest.raises(ScheduleError) as caught:
        run_now("reindex-gone")
    assert "reindex" in caught.value.message.lower()


# --- the real scheduler path: rq-scheduler queues fire(), a worker runs it --------------------


def _fire_through_the_scheduler(redis_conn, run_burst, name: str) -> None:
    """Register the schedules, make ``name`` due now, let run_scheduler queue its fire and a
    burst worker run it (what happens at the cron time)."""
    from django.core.management import call_command

    from jobs.scheduling.scheduler import get_scheduler
    from jobs.scheduling.sync import register_schedules

    Schedule.objects.exclude(name=name).update(enabled=False)
    register_schedules(get_scheduler())
    due = timezone.now().timestamp() - 1
    redis_conn.zadd("rq:scheduler:scheduled_jobs", {f"schedule-{name}": due})
    call_command("run_scheduler", "--burst")
    run_burst()


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_real_fire_of_a_row_the_schedule_only_user_last_changed_purges_nothing(
    redis_conn, run_burst
):
    # Given an old settled job, and the weekly maintenance last changed by the schedule-only
    # user to keep one day (a row from before this rule: they can no longer save it)
    scheduler_only = user_with(*SCHEDULE_ONLY)
    old = Job.objects.create(
        queue="bundle-recompute",
        kind="test_noop",
        trigger="admin",
        state="completed",
        settled_at=timezone.now() - timedelta(days=3),
    )
    Schedule.objects.filter(name="weekly-maintenance").update(
        changed_by=scheduler_only, arguments={"retention_days": 1}
    )
    # When the scheduler fires it
    _fire_through_the_scheduler(redis_conn, run_burst, "weekly-maintenance")
    # Then the fire was refused: no maintenance job, the old job is still there
    row = Schedule.objects.get(name="weekly-maintenance")
    assert "refused" in row.last_skipped_note and "jobs.delete_job" in row.last_skipped_note
    assert not Job.objects.filter(kind="maintenance").exists()
    assert Job.objects.filter(pk=old.pk).exists()


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_real_fire_runs_as_the_user_with_both_permissions_who_last_changed_it(
    redis_conn, run_burst
):
    user = user_with(*BOTH)
    schedule_update(schedule_id="nightly-consistency-check", user=user, cron="* * * * *")
    _fire_through_the_scheduler(redis_conn, run_burst, "nightly-consistency-check")
    job = Job.objects.get(schedule_id="nightly-consistency-check")
    assert job.requested_by == user and job.trigger == "schedule"


def test_a_refused_argument_is_logged_as_a_refusal_too():
    user = user_with(*BOTH)
    with pytest.raises(ScheduleError):
        schedule_update(
            schedule_id="weekly-maintenance", user=user, arguments={"retention_days": 0}
        )
    assert any("at least" in m for m in refusals(user)), refusals(user)
    assert Schedule.objects.get(name="weekly-maintenance").arguments == {}
