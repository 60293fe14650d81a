"""System → Schedules: list, add/edit with validation, enable/disable, run now, history, log."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pytest
from django.contrib.admin.models import ADDITION, CHANGE, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.urls import reverse

from jobs.models import Job, Schedule
from jobs.scheduling.cron import next_run
from jobs.scheduling.store import schedule_is_enabled, schedule_set_enabled
from jobs.scheduling.sync import registered_runs
from tests.admin.conftest import client_for, make_user

pytestmark = [pytest.mark.django_db, pytest.mark.redis]

LIST = reverse("admin:jobs_schedule_changelist")


@pytest.fixture
def admin_client(db):
    return client_for(make_user(superuser=True))


def schedule(name: str) -> Schedule:
    return Schedule.objects.get(name=name)


def log_of(obj: Schedule) -> list[LogEntry]:
    ct = ContentType.objects.get_for_model(Schedule)
    return list(LogEntry.objects.filter(content_type=ct, object_id=str(obj.pk)).order_by("pk"))


def form_data(obj: Schedule, **changes) -> dict:
    data = {
        "description": obj.description,
        "cron": obj.cron,
        "timezone": obj.timezone,
        "request": obj.request,
        "arguments": json.dumps(obj.arguments),
        "enabled": "on" if obj.enabled else "",
        "grace_seconds": str(obj.grace_seconds),
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v != ""}


def test_old_schedules_address_redirects_to_system_schedules(admin_client):
    response = admin_client.get(reverse("admin:jobs_job_schedules"))
    assert response.status_code == 302 and response.url == LIST


def test_list_shows_every_schedule_with_next_run_in_words_and_buttons(admin_client):
    page = admin_client.get(LIST)
    names = [s.name for s in page.context["cl"].result_list]
    assert names == ["nightly-consistency-check", "weekly-maintenance", "relay-and-reconcile"]
    html = page.content.decode()
    assert "At 02:00 UTC" in html
    assert html.count(">Run now</button>") == 3 and html.count(">Disable</button>") == 3
    assert "scheduler not running" in html  # no scheduler process in this test


def test_editing_the_cron_changes_next_run_and_the_registered_entry_and_is_logged(
    admin_client, redis_conn, django_capture_on_commit_callbacks
):
    # Given the nightly schedule registered with rq-scheduler at 02:00
    nightly = schedule("nightly-consistency-check")
    from jobs.scheduling.sync import register_schedules

    register_schedules()
    assert registered_runs()["nightly-consistency-check"].hour == 2
    # When an operator sets it to 04:30 in the admin
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            reverse("admin:jobs_schedule_change", args=[nightly.pk]),
            form_data(nightly, cron="30 4 * * *"),
        )
    # Then it is saved, its next run and its rq-scheduler entry moved (no restart), and logged
    assert response.status_code == 302, response.context["adminform"].form.errors
    nightly.refresh_from_db()
    expected = next_run("30 4 * * *")
    assert nightly.cron == "30 4 * * *" and nightly.next_run_at == expected
    assert registered_runs()["nightly-consistency-check"] == expected
    [entry] = log_of(nightly)
    assert entry.action_flag == CHANGE and "30 4 * * *" in entry.change_message


def test_a_bad_cron_is_a_form_error_naming_the_problem_and_changes_nothing(admin_client):
    nightly = schedule("nightly-consistency-check")
    response = admin_client.post(
        reverse("admin:jobs_schedule_change", args=[nightly.pk]),
        form_data(nightly, cron="61 2 * * *"),
    )
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "Bad cron expression '61 2 * * *'" in errors["cron"][0]
    assert schedule("nightly-consistency-check").cron == "0 2 * * *"
    assert log_of(nightly) == []


def test_an_unknown_request_function_or_bad_arguments_are_form_errors(admin_client):
    response = admin_client.post(
        reverse("admin:jobs_schedule_add"),
        {
            "name": "extra",
            "cron": "*/5 * * * *",
            "timezone": "UTC",
            "request": "no.such",
            "arguments": "{}",
            "enabled": "on",
            "grace_seconds": "60",
        },
    )
    assert "no.such" in str(response.context["adminform"].form.errors["request"])
    response = admin_client.post(
        reverse("admin:jobs_schedule_add"),
        {
            "name": "extra",
            "cron": "*/5 * * * *",
            "timezone": "Mars/Base",
            "request": "bundles.check",
            "arguments": '{"scope": "active", "colour": "red"}',
            "enabled": "on",
            "grace_seconds": "60",
        },
    )
    errors = response.context["adminform"].form.errors
    assert "unknown time zone 'Mars/Base'" in errors["timezone"][0]
    response = admin_client.post(
        reverse("admin:jobs_schedule_add"),
        {
            "name": "extra",
            "cron": "*/5 * * * *",
            "timezone": "UTC",
            "request": "bundles.check",
            "arguments": '{"scope": "active", "colour": "red"}',
            "enabled": "on",
            "grace_seconds": "60",
        },
    )
    assert "colour" in response.context["adminform"].form.errors["arguments"][0]
    assert not Schedule.objects.filter(name="extra").exists()


def test_adding_a_schedule_registers_it_and_logs_the_addition(
    admin_client, redis_conn, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            reverse("admin:jobs_schedule_add"),
            {
                "name": "check-broken-hourly",
                "description": "Hourly check of broken bundles",
                "cron": "0 * * * *",
                "timezone": "Europe/Berlin",
                "request": "bundles.check",
                "arguments": '{"scope": "broken", "fix": true}',
                "enabled": "on",
                "grace_seconds": "600",
            },
        )
    assert response.status_code == 302
    added = schedule("check-broken-hourly")
    assert added.arguments == {"scope": "broken", "fix": True}
    assert "check-broken-hourly" in registered_runs()
    [entry] = log_of(added)
    assert entry.action_flag == ADDITION


def test_disable_button_unregisters_it_the_enable_button_brings_it_back_both_logged(
    admin_client, redis_conn, django_capture_on_commit_callbacks
):
    weekly = schedule("weekly-maintenance")
    from jobs.scheduling.sync import register_schedules

    register_schedules()
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(reverse("admin:jobs_schedule_toggle", args=[weekly.pk]), {"enabled": "0"})
    assert schedule_is_enabled(schedule_id="weekly-maintenance") is False
    assert "weekly-maintenance" not in registered_runs()
    page = admin_client.get(LIST)
    assert ">Enable</button>" in page.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(reverse("admin:jobs_schedule_toggle", args=[weekly.pk]), {"enabled": "1"})
    assert "weekly-maintenance" in registered_runs()
    assert [e.change_message for e in log_of(weekly)] == [
        "Schedule weekly-maintenance disabled",
        "Schedule weekly-maintenance enabled",
    ]


def test_run_now_queues_its_job_shown_as_last_run_and_in_its_history(admin_client):
    nightly = schedule("nightly-consistency-check")
    admin_client.post(reverse("admin:jobs_schedule_run", args=[nightly.pk]))
    job = Job.objects.get(schedule_id="nightly-consistency-check")
    assert job.trigger == "admin" and job.kind == "consistency_check"
    page = admin_client.get(LIST)
    assert reverse("admin:jobs_job_change", args=[job.pk]) in page.content.decode()
    detail = admin_client.get(reverse("admin:jobs_schedule_change", args=[nightly.pk]))
    assert list(detail.context["history"]) == [job]


def test_run_now_runs_a_disabled_schedule_and_the_audit_says_it_was_disabled(admin_client):
    schedule_set_enabled(schedule_id="nightly-consistency-check", enabled=False)
    response = admin_client.post(
        reverse("admin:jobs_schedule_run", args=[schedule("nightly-consistency-check").pk]),
        follow=True,
    )
    assert response.status_code == 200
    job = Job.objects.get(schedule_id="nightly-consistency-check")
    assert schedule_is_enabled(schedule_id="nightly-consistency-check") is False
    [entry] = LogEntry.objects.filter(object_id=str(job.pk))
    assert "schedule disabled" in entry.get_change_message()
    [message] = list(response.context["messages"])
    assert "1 job queued" in str(message) and "schedule disabled" in str(message)


def test_run_now_of_the_disabled_inline_relay_runs_it_and_queues_nothing(admin_client):
    schedule_set_enabled(schedule_id="relay-and-reconcile", enabled=False)
    response = admin_client.post(
        reverse("admin:jobs_schedule_run", args=[schedule("relay-and-reconcile").pk]), follow=True
    )
    [message] = list(response.context["messages"])
    assert message.level_tag == "success" and "relay-and-reconcile ran now" in str(message)
    assert not Job.objects.exists()


def test_unknown_schedule_is_refused_and_changes_nothing(admin_client):
    before = sorted(Schedule.objects.values_list("name", "enabled"))
    response = admin_client.post(
        reverse("admin:jobs_schedule_toggle", args=[99999]), {"enabled": "0"}, follow=True
    )
    assert "No schedule with id 99999" in str(list(response.context["messages"])[0])
    assert sorted(Schedule.objects.values_list("name", "enabled")) == before


def test_a_skipped_fire_is_shown_on_the_list_and_the_schedule_page(admin_client):
    from jobs.scheduling.fire import fire

    nightly = schedule("nightly-consistency-check")
    Schedule.objects.filter(pk=nightly.pk).update(grace_seconds=60)
    outcome = fire("nightly-consistency-check", fire_at=datetime(2020, 1, 1, 2, tzinfo=UTC))
    assert "skipped" in outcome and not Job.objects.exists()
    # The fire's time with seconds, in the one format of every job time (relative in the page).
    listing = admin_client.get(LIST).content.decode()
    assert re.search(
        r'skipped <time class="job-rel" datetime="2020-01-01T02:00:00\+00:00" '
        r'title="2020-01-01 02:00:00 UTC"',
        listing,
    ), listing
    detail = admin_client.get(reverse("admin:jobs_schedule_change", args=[nightly.pk]))
    html = detail.content.decode()
    assert "Fire at 2020-01-01 02:00 UTC skipped" in html
    assert "Skipped (missed beyond the grace period)" in html


def test_jobs_list_and_schedules_page_show_the_scheduler_last_seen_and_flag_it_stale(
    admin_client, redis_conn
):
    import time

    from jobs.scheduling.scheduler_heartbeat import HEARTBEAT_KEY

    redis_conn.set(HEARTBEAT_KEY, f"{time.time() - 3:.3f}")
    assert (
        "scheduler seen" in admin_client.get(reverse("admin:jobs_job_changelist")).content.decode()
    )
    assert "scheduler seen 3 s ago" in admin_client.get(LIST).content.decode()
    redis_conn.set(HEARTBEAT_KEY, f"{time.time() - 900:.3f}")
    jobs_page = admin_client.get(reverse("admin:jobs_job_changelist")).content.decode()
    # Seconds kept, the exact time on hover: "15 min 00 s ago" (it was timesince's "15 minutes").
    assert re.search(r"scheduler stale: last seen <time [^>]*>15 min 0\d s ago<", jobs_page)
    assert "scheduler stale: last seen" in admin_client.get(LIST).content.decode()
