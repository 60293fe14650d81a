"""System → Schedules through the admin's doors (add, change, enable/disable, run now, actions):
a schedule-only user cannot make a schedule do work outside their permissions; a refused edit
changes nothing and is a form error or a message, audited; a bad argument is a form error;
"Run now" of a request that fails when it runs is a message, never a 500. Deleting jobs
(delete settled, discard failed matching) needs jobs.delete_job and leaves a log entry."""

from __future__ import annotations

import json

import pytest
from django.contrib.admin.models import DELETION, LogEntry
from django.contrib.messages import get_messages
from django.urls import reverse

import tests.jobs.kinds  # noqa: F401 - registers the tests.noop request (needs jobs.view_job)
from jobs.enqueue import enqueue
from jobs.models import Job, JobState, Schedule
from tests.admin.conftest import client_for, make_user
from tests.admin.test_schedules_admin import form_data

pytestmark = [pytest.mark.django_db, pytest.mark.redis]

LIST = reverse("admin:jobs_schedule_changelist")
ADD = reverse("admin:jobs_schedule_add")
SCHEDULE_ONLY = ("jobs.view_job", "jobs.add_schedule", "jobs.change_schedule", "jobs.run_schedule")
BOTH = (*SCHEDULE_ONLY, "bundles.change_bundle", "jobs.delete_job")
FIELDS = ("cron", "request", "arguments", "enabled", "grace_seconds", "changed_by_id")


def row(name: str) -> Schedule:
    return Schedule.objects.get(name=name)


def snapshot(name: str) -> dict:
    obj = row(name)
    return {f: getattr(obj, f) for f in FIELDS}


def change_url(name: str) -> str:
    return reverse("admin:jobs_schedule_change", args=[row(name).pk])


def texts(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def refusals(user) -> list[str]:
    return list(
        LogEntry.objects.filter(user=user, change_message__startswith="Refused").values_list(
            "change_message", flat=True
        )
    )


@pytest.fixture
def scheduler_only():
    return make_user(permissions=SCHEDULE_ONLY)


def test_schedule_only_user_editing_the_weekly_maintenance_gets_a_form_error_and_nothing_changes(
    scheduler_only,
):
    client = client_for(scheduler_only)
    before = snapshot("weekly-maintenance")
    for changes in ({"cron": "* * * * *"}, {"arguments": '{"retention_days": 1}'}):
        response = client.post(
            change_url("weekly-maintenance"), form_data(row("weekly-maintenance"), **changes)
        )
        assert response.status_code == 200  # the form again, with its error
        assert "jobs.delete_job" in str(response.context["adminform"].form.errors)
    assert snapshot("weekly-maintenance") == before
    assert len(refusals(scheduler_only)) == 2


def test_schedule_only_user_cannot_add_a_schedule_for_a_bundles_request(scheduler_only):
    response = client_for(scheduler_only).post(
        ADD,
        {
            "name": "my-fix-all",
            "cron": "* * * * *",
            "timezone": "UTC",
            "request": "bundles.check",
            "arguments": '{"scope": "all", "fix": true}',
            "enabled": "on",
            "grace_seconds": "60",
        },
    )
    assert response.status_code == 200
    assert "bundles.change_bundle" in str(response.context["adminform"].form.errors)
    assert not Schedule.objects.filter(name="my-fix-all").exists()
    assert refusals(scheduler_only)


def test_nobody_can_add_a_schedule_for_jobs_enqueue_with_any_kind():
    client = client_for(make_user(superuser=True))
    response = client.post(
        ADD,
        {
            "name": "archive-everything",
            "cron": "* * * * *",
            "timezone": "UTC",
            "request": "jobs.enqueue",
            "arguments": json.dumps(
                {"kind": "bulk_operation", "payload": {"operation": "archive", "bundle_ids": [1]}}
            ),
            "enabled": "on",
            "grace_seconds": "60",
        },
    )
    assert response.status_code == 200
    assert "request" in response.context["adminform"].form.errors
    assert not Schedule.objects.filter(name="archive-everything").exists()


def test_schedule_only_user_cannot_toggle_run_now_or_use_the_actions(scheduler_only):
    client = client_for(scheduler_only)
    before = snapshot("nightly-consistency-check")
    pk = row("nightly-consistency-check").pk
    # The buttons answer 403, as every admin button does without its permission
    toggled = client.post(reverse("admin:jobs_schedule_toggle", args=[pk]), {"enabled": "0"})
    ran = client.post(reverse("admin:jobs_schedule_run", args=[pk]))
    assert (toggled.status_code, ran.status_code) == (403, 403)
    # the actions (several rows at once) say so per row
    for action in ("disable_selected", "run_selected"):
        response = client.post(LIST, {"action": action, "_selected_action": [pk]})
        assert response.status_code == 302
        assert any("bundles.change_bundle" in t for t in texts(response)), texts(response)
    assert snapshot("nightly-consistency-check") == before
    assert not Job.objects.exists()
    assert len(refusals(scheduler_only)) == 4


def test_a_user_with_both_permissions_edits_and_runs_the_weekly_maintenance():
    user = make_user(permissions=BOTH)
    client = client_for(user)
    response = client.post(
        change_url("weekly-maintenance"),
        form_data(row("weekly-maintenance"), arguments='{"retention_days": 7}'),
    )
    assert response.status_code == 302
    assert row("weekly-maintenance").arguments == {"retention_days": 7}
    client.post(reverse("admin:jobs_schedule_run", args=[row("weekly-maintenance").pk]))
    assert Job.objects.get().requested_by == user


@pytest.mark.parametrize("arguments", ['{"scope": "everything"}', '{"scope": 5}'])
def test_a_bad_scope_is_a_form_error_and_saves_nothing(arguments):
    client = client_for(make_user(superuser=True))
    before = snapshot("nightly-consistency-check")
    response = client.post(
        change_url("nightly-consistency-check"),
        form_data(row("nightly-consistency-check"), arguments=arguments),
    )
    assert response.status_code == 200
    assert "arguments" in response.context["adminform"].form.errors
    assert snapshot("nightly-consistency-check") == before


def test_run_now_of_a_request_that_fails_when_it_runs_is_a_message_and_a_log_entry_not_a_500():
    superuser = make_user(superuser=True)
    # A stored row whose arguments no longer hold (saved before validation, or data since gone)
    bad = Schedule.objects.create(
        name="old-bad-check",
        cron="0 0 * * *",
        request="bundles.check",
        arguments={"scope": "everything"},
    )
    response = client_for(superuser).post(reverse("admin:jobs_schedule_run", args=[bad.pk]))
    assert response.status_code == 302
    assert any("everything" in t for t in texts(response)), texts(response)
    assert LogEntry.objects.filter(user=superuser, change_message__contains="everything").exists()
    assert not Job.objects.exists()


def _failed_reindex_jobs(n: int) -> list[Job]:
    made = [enqueue("reindex", payload={"bundle_ids": [i]}, trigger="admin") for i in range(n)]
    Job.objects.filter(pk__in=[j.pk for j in made]).update(state=JobState.FAILED)
    return made


def test_discard_failed_matching_leaves_a_log_entry_per_deleted_job():
    user = make_user(permissions=("jobs.view_job", "jobs.delete_job"))
    failed = _failed_reindex_jobs(2)
    url = reverse("admin:jobs_job_matching", args=["discard"])
    client_for(user).post(url, {"post": "yes"})
    assert not Job.objects.filter(pk__in=[j.pk for j in failed]).exists()
    logged = LogEntry.objects.filter(user=user, action_flag=DELETION)
    assert sorted(logged.values_list("object_id", flat=True)) == sorted(str(j.pk) for j in failed)


def test_buttons_are_shown_only_for_schedules_whose_work_the_user_may_do(scheduler_only):
    Schedule.objects.create(name="probe", cron="0 0 * * *", request="tests.noop")
    page = client_for(scheduler_only).get(LIST).content.decode()
    assert reverse("admin:jobs_schedule_run", args=[row("probe").pk]) in page
    assert (
        reverse("admin:jobs_schedule_run", args=[row("nightly-consistency-check").pk]) not in page
    )
    detail = client_for(scheduler_only).get(change_url("weekly-maintenance"))
    assert detail.context["can_run"] is False and detail.context["can_toggle"] is False
