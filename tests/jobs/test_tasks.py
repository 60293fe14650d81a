"""Django's Tasks API on the ledger (``jobs.tasks.LedgerBackend``), with real RQ workers.

Ported from django-tasks' own backend tests (tests/tests/test_dummy_backend.py,
test_immediate_backend.py, test_tasks.py): enqueue, results, exceptions, run_after, queues,
get_result of unknown ids, validation of non-module-level functions.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import django_rq
import pytest
from django.db import transaction
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone

from jobs.enqueue import enqueue
from jobs.models import Job, JobState
from jobs.tasks import (
    InvalidTaskError,
    LedgerBackend,
    TaskResultDoesNotExist,
    TaskResultStatus,
)
from tests.admin.conftest import make_user
from tests.api.conftest import post_graphql
from tests.jobs import sample_tasks
from tests.support import wait_until

try:  # Django 6
    from django.tasks import default_task_backend, task, task_backends
    from django.tasks.exceptions import TaskResultMismatch
except ImportError:
    from django_tasks import default_task_backend, task, task_backends
    from django_tasks.exceptions import TaskResultMismatch

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis]

# Two attempts, no backoff wait: retries are seen quickly, in the test process and in workers.
FAST_RETRY = {
    "default": {
        "BACKEND": "jobs.tasks.LedgerBackend",
        "OPTIONS": {"MAX_ATTEMPTS": 2, "BACKOFF": [0]},
    }
}


@pytest.fixture
def fast_retry(monkeypatch):
    """The same retry options here and in worker subprocesses (they read the environment)."""
    monkeypatch.setenv("JOBS_TASKS_MAX_ATTEMPTS", "2")
    monkeypatch.setenv("JOBS_TASKS_BACKOFF", "0")
    with override_settings(TASKS=FAST_RETRY):
        yield


def ledger_ids_in(queue: str) -> list[str]:
    return [job.args[0] for job in django_rq.get_queue(queue).get_jobs()]


def settled(result):
    result.refresh()
    return result.is_finished


def test_the_default_backend_is_the_ledger():
    assert isinstance(task_backends["default"], LedgerBackend)
    assert default_task_backend.alias == "default"
    assert "bundle-recompute" in default_task_backend.queues


def test_enqueue_in_a_transaction_sends_nothing_before_commit_then_a_worker_runs_it(
    redis_conn, start_worker
):
    # Given a module-level task, enqueued inside a transaction
    with transaction.atomic():
        result = sample_tasks.calculate_meaning_of_life.enqueue()
        # Then, before commit: RQ has heard nothing
        assert ledger_ids_in("bundle-recompute") == []
        assert result.status == TaskResultStatus.READY
    # After commit it is on the queue its queue_name names
    assert ledger_ids_in("bundle-recompute") == [result.id]
    # When a real worker runs
    start_worker("bundle-recompute")
    wait_until(lambda: settled(result), timeout=60)
    # Then
    assert result.status == TaskResultStatus.SUCCESSFUL
    assert result.return_value == 42
    assert result.attempts == 1
    assert result.enqueued_at <= result.started_at <= result.finished_at
    assert default_task_backend.get_result(result.id).return_value == 42


def test_a_rolled_back_enqueue_leaves_nothing(redis_conn):
    with pytest.raises(RuntimeError), transaction.atomic():
        sample_tasks.noop_task.enqueue()
        raise RuntimeError("roll back")
    assert not Job.objects.exists()
    assert ledger_ids_in("bundle-recompute") == []


def test_enqueue_records_a_ledger_job_named_by_the_task_path(redis_conn):
    result = sample_tasks.noop_task.enqueue(1, two=3)

    assert result.status == TaskResultStatus.READY
    assert not result.is_finished
    assert result.started_at is None and result.finished_at is None
    assert result.args == [1] and result.kwargs == {"two": 3}
    assert result.task == sample_tasks.noop_task
    with pytest.raises(ValueError, match="Task has not finished yet"):
        result.return_value  # noqa: B018
    job = Job.objects.get(pk=result.id)
    assert job.kind == "tests.jobs.sample_tasks.noop_task"
    assert job.queue == "bundle-recompute"
    assert job.trigger == "task"
    assert job.state == JobState.PENDING
    assert job.max_attempts == 3  # the backend's OPTIONS


def test_results_args_and_refresh_after_a_burst_worker(run_burst):
    result = sample_tasks.echo.enqueue(1, "two", three=[3])
    run_burst(["bundle-recompute"])

    assert result.status == TaskResultStatus.READY  # a stale copy until refreshed
    result.refresh()
    assert result.status == TaskResultStatus.SUCCESSFUL
    assert result.return_value == {"args": [1, "two"], "kwargs": {"three": [3]}}
    fetched = sample_tasks.echo.get_result(result.id)
    assert fetched.id == result.id and fetched.return_value == result.return_value
    assert len(fetched.worker_ids) == 1


def test_a_raising_task_is_retried_per_options_and_fails_with_its_traceback(
    fast_retry, run_burst, admin_client
):
    result = sample_tasks.failing_task_value_error.enqueue()
    run_burst(["bundle-recompute"])

    result.refresh()
    assert result.status == TaskResultStatus.FAILED
    with pytest.raises(ValueError, match="Task failed"):
        result.return_value  # noqa: B018
    assert result.attempts == 2
    assert [e.exception_class for e in result.errors] == [ValueError, ValueError]
    assert result.errors[-1].traceback.endswith("ValueError: This task failed due to ValueError\n")
    job = Job.objects.get(pk=result.id)
    assert job.state == JobState.FAILED and job.attempts == 2
    # And System → Jobs shows each attempt's traceback
    page = admin_client.get(reverse("admin:jobs_job_change", args=[job.pk]))
    assert page.status_code == 200
    assert page.content.decode().count("This task failed due to ValueError") >= 2
    assert "Traceback (most recent call last)" in page.content.decode()


def test_a_flaky_task_succeeds_on_a_later_attempt_in_a_worker_process(
    fast_retry, start_worker, token
):
    result = sample_tasks.fails_then_succeeds.enqueue(token, 1)
    start_worker("bundle-recompute")
    wait_until(lambda: settled(result), timeout=60)
    assert result.status == TaskResultStatus.SUCCESSFUL
    assert result.return_value == 2
    assert result.attempts == 2
    assert len(result.errors) == 1
    assert result.errors[0].exception_class is RuntimeError


def test_a_complex_exception_is_recorded(fast_retry, run_burst):
    result = sample_tasks.complex_exception.enqueue()
    run_burst(["bundle-recompute"])
    result.refresh()
    assert result.status == TaskResultStatus.FAILED
    assert result.errors[0].exception_class is ValueError
    assert "ValueError: This task failed" in result.errors[0].traceback


def test_a_return_value_json_cannot_carry_fails_the_task(fast_retry, run_burst):
    result = sample_tasks.complex_return_value.enqueue()
    run_burst(["bundle-recompute"])
    result.refresh()
    assert result.status == TaskResultStatus.FAILED
    assert result.errors[0].exception_class is TypeError
    assert "Unsupported type" in result.errors[0].traceback


def test_run_after_delays_the_dispatch(start_worker, redis_conn, token):
    # Given a worker with RQ's scheduler
    start_worker("bundle-recompute")
    run_after = timezone.now() + timedelta(seconds=3)
    # When
    result = sample_tasks.record_time.using(run_after=run_after).enqueue(token)
    # Then it waits, visibly, and runs no earlier than run_after
    assert result.task.run_after == run_after
    assert Job.objects.get(pk=result.id).next_attempt_at == run_after
    assert redis_conn.get(f"test:task-ran-at:{token}") is None
    wait_until(lambda: settled(result), timeout=60)
    assert result.status == TaskResultStatus.SUCCESSFUL
    ran_at = float(redis_conn.get(f"test:task-ran-at:{token}"))
    assert ran_at >= run_after.timestamp()


def test_run_after_is_honoured_by_the_relay_too(redis_conn, monkeypatch):
    # Given a delayed task whose on-commit dispatch failed (Redis unreachable at commit)
    from jobs import enqueue as enqueue_module

    monkeypatch.setattr(enqueue_module, "dispatch", lambda *a, **k: False)
    run_after = timezone.now() + timedelta(minutes=10)
    result = sample_tasks.noop_task.using(run_after=run_after).enqueue()
    monkeypatch.undo()
    # When the relay sends it
    assert enqueue_module.dispatch(result.id)
    # Then RQ holds it scheduled, not queued
    assert ledger_ids_in("bundle-recompute") == []
    scheduled = django_rq.get_queue("bundle-recompute").scheduled_job_registry
    assert scheduled.count == 1


def test_queue_name_picks_the_rq_queue(redis_conn):
    result = sample_tasks.on_reindex_queue.enqueue()
    assert Job.objects.get(pk=result.id).queue == "bundle-reindex"
    assert ledger_ids_in("bundle-reindex") == [result.id]
    moved = sample_tasks.noop_task.using(queue_name="bundle-reindex").enqueue()
    assert moved.task.queue_name == "bundle-reindex"
    assert ledger_ids_in("bundle-reindex") == [result.id, moved.id]
    assert sample_tasks.noop_task.get_result(moved.id).task.queue_name == "bundle-reindex"


def test_an_unknown_queue_is_refused_and_writes_nothing(redis_conn):
    with pytest.raises(InvalidTaskError, match="Queue 'unknown_queue' is not valid for backend"):
        sample_tasks.noop_task.using(queue_name="unknown_queue").enqueue()
    assert not Job.objects.exists()


def test_a_positive_priority_goes_to_the_front_of_the_rq_queue(redis_conn):
    first = sample_tasks.noop_task.enqueue()
    urgent = sample_tasks.noop_task.using(priority=10).enqueue()
    assert ledger_ids_in("bundle-recompute") == [urgent.id, first.id]
    assert default_task_backend.get_result(urgent.id).task.priority == 10


def test_get_result_of_an_unknown_id_raises(redis_conn):
    for bad in [str(uuid.uuid4()), "123", "not-a-uuid"]:
        with pytest.raises(TaskResultDoesNotExist):
            default_task_backend.get_result(bad)


def test_get_result_of_a_job_from_another_door_raises(redis_conn):
    import tests.jobs.kinds  # noqa: F401 - registers test_noop

    job = enqueue("test_noop", payload={}, trigger="command")
    with pytest.raises(TaskResultDoesNotExist):
        default_task_backend.get_result(str(job.pk))


def test_get_result_through_another_task_is_a_mismatch(redis_conn):
    result = sample_tasks.noop_task.enqueue()
    with pytest.raises(TaskResultMismatch):
        sample_tasks.calculate_meaning_of_life.get_result(result.id)


def test_a_function_that_is_not_module_level_is_refused():
    def inner():
        return None

    with pytest.raises(InvalidTaskError, match="Task function must be defined at a module level"):
        task()(inner)
    with pytest.raises(InvalidTaskError, match="module level"):
        task(lambda: None)


def test_arguments_json_cannot_carry_are_refused_and_write_nothing(redis_conn):
    with pytest.raises(TypeError, match="Unsupported type"):
        sample_tasks.noop_task.enqueue(timezone.now())
    assert not Job.objects.exists()


def test_a_naive_run_after_is_refused():
    with pytest.raises(InvalidTaskError, match="run_after must be an aware datetime"):
        sample_tasks.noop_task.using(run_after=timezone.now().replace(tzinfo=None))


def test_takes_context_gets_its_own_result_and_ledger_progress(run_burst):
    result = sample_tasks.get_task_id.enqueue()
    progress = sample_tasks.report_progress.enqueue(1)
    run_burst(["bundle-recompute"])
    result.refresh()
    progress.refresh()
    assert result.return_value == result.id
    assert progress.status == TaskResultStatus.SUCCESSFUL
    assert progress.return_value == 1


def test_result_timestamps_follow_the_ledger(run_burst):
    before = timezone.now()
    result = sample_tasks.noop_task.enqueue()
    run_burst(["bundle-recompute"])
    result.refresh()
    assert before <= result.enqueued_at <= result.started_at <= result.finished_at
    assert result.last_attempted_at == result.started_at


def test_task_jobs_are_found_by_the_kind_filter_in_the_admin_and_graphql(redis_conn, client):
    result = sample_tasks.noop_task.enqueue(1)
    enqueue("recompute", payload={"bundle_id": 1}, trigger="command")  # another kind
    path = "tests.jobs.sample_tasks.noop_task"
    client.force_login(make_user(superuser=True))

    page = client.get(reverse("admin:jobs_job_changelist"), {"kind": path})
    assert page.status_code == 200
    assert [str(job.pk) for job in page.context["cl"].result_list] == [str(result.id)]

    found = post_graphql(
        client, "query($k: String) { jobs(kind: $k) { edges { node { id } } } }", {"k": path}
    )
    assert found.errors == [], found.errors
    assert [e["node"]["id"] for e in found.data["jobs"]["edges"]] == [str(result.id)]
    junk = post_graphql(client, 'query { jobs(kind: "no such kind!") { edges { node { id } } } }')
    assert junk.codes == ["BAD_USER_INPUT"]
