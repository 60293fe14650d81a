"""`manage.py jobs`: list, show, retry, cancel, purge, relay, and bad input."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from jobs.enqueue import enqueue
from jobs.models import Job, JobState
from jobs.runner import run_inline
from tests.jobs.conftest import ROOT

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis]


def jobs_cmd(*args: str) -> str:
    out = StringIO()
    call_command("jobs", *args, stdout=out)
    return out.getvalue()


def failed_job(token: str) -> Job:
    job = enqueue(
        "test_always_fails", payload={"token": token}, trigger="command", dispatch_on_commit=False
    )
    return run_inline(job)


def test_list_shows_newest_first_and_filters_by_state(redis_conn, token):
    # Given
    done = run_inline(
        enqueue("test_noop", payload={}, trigger="command", target=("bundle", "12", "Starter kit"))
    )
    waiting = enqueue("test_noop", payload={}, trigger="command")
    # When / Then
    header, *lines = jobs_cmd("list").splitlines()
    assert header.split()[:3] == ["ID", "CREATED", "(UTC)"] and "ATTEMPTS" in header
    assert [line.split()[0] for line in lines] == [str(waiting.pk), str(done.pk)]
    assert "Starter kit" in lines[1]
    assert "1/1" in lines[1].split()  # under ATTEMPTS
    assert jobs_cmd("list", "--state", "completed").splitlines()[1].split()[0] == str(done.pk)
    assert str(done.pk) in jobs_cmd("list", "--target", "bundle:12")
    assert jobs_cmd("list", "--kind", "nothing") == "No jobs.\n"


def test_show_prints_every_attempts_error_with_its_traceback(redis_conn, token):
    job = failed_job(token)
    out = jobs_cmd("show", str(job.pk))
    assert f"Job {job.pk}" in out
    assert "state       failed" in out
    assert "attempts    3/3" in out
    for n in (1, 2, 3):
        assert f"error (attempt {n}" in out
        assert f"ValueError: broken on run {n}" in out
    assert out.count("Traceback (most recent call last)") == 3


def test_retry_requeues_a_failed_job_and_wait_reports_its_outcome(worker_process, token):
    # Given a failed job and a worker
    job = failed_job(token)
    worker_process()
    # When retried with --wait, it fails again: non-zero exit with the state
    with pytest.raises(CommandError, match="ended failed"):
        jobs_cmd("retry", str(job.pk), "--wait", "--timeout", "60")
    job.refresh_from_db()
    assert job.attempts == 4
    assert len(job.errors) == 4


def test_retry_wait_succeeds_for_a_job_that_now_completes(worker_process, token):
    job = enqueue(
        "test_noop", payload={"token": token}, trigger="command", dispatch_on_commit=False
    )
    call_command("jobs", "cancel", str(job.pk), stdout=StringIO())
    worker_process()
    out = jobs_cmd("retry", str(job.pk), "--wait", "--timeout", "60")
    assert f"Job {job.pk} completed." in out
    job.refresh_from_db()
    assert job.state == JobState.COMPLETED


def test_cancel_pending_job(redis_conn):
    job = enqueue("test_noop", payload={}, trigger="command")
    out = jobs_cmd("cancel", str(job.pk))
    assert "cancelled; it will not run" in out
    job.refresh_from_db()
    assert job.state == JobState.CANCELLED


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["show", "not-a-uuid"], "is not a job id"),
        (["show", str(uuid.UUID(int=1))], "No job with id"),
        (["retry", "12"], "is not a job id"),
        (["retry", str(uuid.UUID(int=2))], "No job with id"),
        (["cancel", str(uuid.UUID(int=3))], "No job with id"),
        (["purge", "--older-than-days", "-1"], "0 or more"),
        (["list", "--limit", "0"], "between 1 and 1000"),
        (["list", "--target", "bundle"], "TYPE:ID"),
    ],
)
def test_bad_input_is_a_command_error_and_changes_nothing(redis_conn, args, message):
    # Given a job in the ledger
    enqueue("test_noop", payload={}, trigger="command")
    before = list(Job.objects.values_list("pk", "state", "attempts"))
    # When / Then
    with pytest.raises(CommandError, match=message):
        jobs_cmd(*args)
    assert list(Job.objects.values_list("pk", "state", "attempts")) == before


def test_retry_of_a_pending_job_and_cancel_of_a_settled_one_are_refused(redis_conn):
    pending = enqueue("test_noop", payload={}, trigger="command")
    with pytest.raises(CommandError, match="Only failed or cancelled"):
        jobs_cmd("retry", str(pending.pk))
    done = run_inline(enqueue("test_noop", payload={}, trigger="command"))
    with pytest.raises(CommandError, match="already completed"):
        jobs_cmd("cancel", str(done.pk))
    assert Job.objects.get(pk=pending.pk).state == JobState.PENDING
    assert Job.objects.get(pk=done.pk).state == JobState.COMPLETED


def test_purge_deletes_only_settled_jobs_older_than_the_limit(redis_conn):
    # Given an old completed job, a recent completed job and an old pending one
    old = run_inline(enqueue("test_noop", payload={}, trigger="command"))
    recent = run_inline(enqueue("test_noop", payload={}, trigger="command"))
    waiting = enqueue("test_noop", payload={}, trigger="command")
    forty_days_ago = timezone.now() - timedelta(days=40)
    Job.objects.filter(pk=old.pk).update(settled_at=forty_days_ago)
    Job.objects.filter(pk=waiting.pk).update(created_at=forty_days_ago)
    # When (default: JOBS_RETENTION_DAYS = 30)
    out = jobs_cmd("purge")
    # Then
    assert "Purged 1 settled job older than 30 days." in out
    assert set(Job.objects.values_list("pk", flat=True)) == {recent.pk, waiting.pk}


def test_relay_subcommand_sends_undispatched_jobs(redis_conn):
    job = Job.objects.create(queue="bundle-recompute", kind="test_noop", trigger="signal")
    Job.objects.filter(pk=job.pk).update(created_at=timezone.now() - timedelta(minutes=5))
    out = jobs_cmd("relay")
    assert "Relayed 1 undispatched job; reconciled 0 dead jobs." in out
    job.refresh_from_db()
    assert job.dispatched_at is not None


def test_command_line_exit_code_is_non_zero_on_bad_input():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings"}
    proc = subprocess.run(  # noqa: S603 - fixed argv
        [sys.executable, str(ROOT / "manage.py"), "jobs", "show", "not-a-uuid"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1
    assert "'not-a-uuid' is not a job id" in proc.stderr


def test_show_retry_and_cancel_accept_the_8_character_prefix_the_admin_shows(redis_conn, token):
    # Given a failed job and a pending one
    failed = failed_job(token)
    pending = enqueue("test_noop", payload={"token": token}, trigger="command")
    # When / Then: its first 8 characters are enough
    assert f"Job {failed.pk}" in jobs_cmd("show", str(failed.pk)[:8])
    assert f"Job {failed.pk} queued again" in jobs_cmd("retry", str(failed.pk)[:8])
    assert f"Job {pending.pk} cancelled" in jobs_cmd("cancel", str(pending.pk)[:8].upper())


def test_a_prefix_shared_by_two_jobs_or_too_short_is_refused_and_changes_nothing(redis_conn):
    # Given two pending jobs whose ids share their first 8 characters
    a = enqueue("test_noop", payload={"token": "a"}, trigger="command")
    b = enqueue("test_noop", payload={"token": "b"}, trigger="command")
    Job.objects.filter(pk=a.pk).update(id=uuid.UUID("abcdef12" + "0" * 24))
    Job.objects.filter(pk=b.pk).update(id=uuid.UUID("abcdef12" + "f" * 24))
    # When / Then
    with pytest.raises(CommandError, match="2 jobs have ids starting with abcdef12"):
        jobs_cmd("cancel", "abcdef12")
    with pytest.raises(CommandError, match="first 8 or more characters"):
        jobs_cmd("cancel", "abcd")
    with pytest.raises(CommandError, match="No job whose id starts with 12345678"):
        jobs_cmd("show", "12345678")
    assert sorted(Job.objects.values_list("state", flat=True)) == ["pending", "pending"]
