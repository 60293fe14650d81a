"""Batch parents settle from counters: a child's settle costs the same whatever its siblings."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import timedelta

import pytest
from django.db.models.signals import post_init
from django.utils import timezone

from jobs.enqueue import enqueue, enqueue_many
from jobs.maintenance.reconcile import reconcile
from jobs.models import Job, JobState
from jobs.parents import child_settled, park
from jobs.runner import Handover, run_inline, settle_after_horse
from jobs.services import job_cancel, job_retry
from tests.support import wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis]

# Queries one child's settle may make: lock the parent, mark the child counted, write the
# parent (savepoints included). The same bound for 10 children and for 500.
SETTLE_QUERIES = 6


def parent_with_children(children: int, **payload) -> tuple[Job, list[Job]]:
    """A pending test_parent and its ``children`` pending test_noop children (not sent)."""
    parent = enqueue("test_parent", payload=payload, trigger="command", dispatch_on_commit=False)
    kids = enqueue_many(
        "test_noop",
        payloads=[{"n": i} for i in range(children)],
        trigger="command",
        parent=parent,
        dispatch_on_commit=False,
    )
    return parent, kids


def parked_parent(children: int, **payload) -> tuple[Job, list[Job]]:
    """A running parent with ``children`` pending test_noop children, parked as the runner
    parks it when its handler returns await_children()."""
    parent, kids = parent_with_children(children, **payload)
    Job.objects.filter(pk=parent.pk).update(
        state=JobState.RUNNING, attempts=1, started_at=timezone.now()
    )
    parent.refresh_from_db()
    park(parent)
    return parent, kids


def settle(child: Job, state: str = JobState.COMPLETED) -> Job:
    """What a dying process leaves: the child settled, its parent not told."""
    Job.objects.filter(pk=child.pk).update(state=state, settled_at=timezone.now())
    child.refresh_from_db()
    return child


@contextmanager
def job_rows_loaded():
    """Count the Job rows built from the database inside the block."""
    loaded = []

    def count(sender, instance, **kwargs):
        loaded.append(instance.pk)

    post_init.connect(count, sender=Job)
    try:
        yield loaded
    finally:
        post_init.disconnect(count, sender=Job)


@pytest.mark.parametrize("children", [10, 500])
def test_a_childs_settle_costs_the_same_queries_and_reads_no_sibling_whatever_their_number(
    children, django_assert_max_num_queries
):
    # Given a parked parent with 10 or 500 children
    parent, kids = parked_parent(children)
    first = settle(kids[0])
    # When one child settles
    with job_rows_loaded() as loaded, django_assert_max_num_queries(SETTLE_QUERIES):
        child_settled(first)
    # Then no sibling was read, and the parent counted it
    assert loaded == []
    parent.refresh_from_db()
    assert (parent.children_total, parent.children_settled) == (children, 1)
    assert parent.progress_message == f"1/{children} batches done"
    assert parent.progress == 100 // children


def test_a_hook_that_runs_twice_counts_the_child_once():
    parent, kids = parked_parent(3)
    child = settle(kids[0])
    child_settled(child)
    child_settled(child)
    parent.refresh_from_db()
    assert parent.children_settled == 1 and parent.state == JobState.RUNNING


def test_the_last_childs_settle_completes_the_parent_with_its_summary():
    parent, kids = parked_parent(3)
    for kid in kids:
        child_settled(settle(kid))
    parent.refresh_from_db()
    assert parent.state == JobState.COMPLETED
    assert parent.result == {"children": 3, "completed": 3}
    assert parent.progress == 100 and parent.progress_message == "3/3 batches done"


def test_a_failed_child_stops_a_parent_that_does_not_continue_on_error():
    parent, kids = parked_parent(4, continue_on_error=False)
    Job.objects.filter(pk=kids[1].pk).update(
        errors=[{"attempt": 1, "message": "Boom: no components"}]
    )
    child_settled(settle(kids[1], JobState.FAILED))
    parent.refresh_from_db()
    assert parent.state == JobState.FAILED
    assert "Boom: no components" in parent.errors[-1]["message"]
    others = Job.objects.filter(parent=parent).exclude(pk=kids[1].pk)
    assert set(others.values_list("state", flat=True)) == {JobState.CANCELLED}


def test_a_failed_child_does_not_stop_a_parent_that_continues_on_error():
    parent, kids = parked_parent(2)  # continue_on_error defaults to true
    child_settled(settle(kids[0], JobState.FAILED))
    parent.refresh_from_db()
    assert parent.state == JobState.RUNNING and parent.children_failed == 1
    child_settled(settle(kids[1]))
    parent.refresh_from_db()
    assert parent.state == JobState.COMPLETED
    assert parent.result == {"children": 2, "completed": 1}


def test_cancelling_a_parked_parent_cancels_its_unstarted_children_and_settles_it():
    parent, kids = parked_parent(3)
    child_settled(settle(kids[0]))
    job_cancel(job_id=parent.pk)
    parent.refresh_from_db()
    assert parent.state == JobState.CANCELLED
    states = dict(Job.objects.filter(parent=parent).values_list("pk", "state"))
    assert states[kids[0].pk] == JobState.COMPLETED
    assert {states[k.pk] for k in kids[1:]} == {JobState.CANCELLED}


def test_reconcile_counts_children_whose_hook_was_lost_and_completes_the_parent():
    # Given every child settled by processes that died before telling the parent
    parent, kids = parked_parent(3)
    for kid in kids:
        settle(kid)
    parent.refresh_from_db()
    assert parent.state == JobState.RUNNING and parent.children_settled == 0
    # When reconcile runs
    reconcile()
    # Then the parent is complete, and nothing is left uncounted
    parent.refresh_from_db()
    assert parent.state == JobState.COMPLETED and parent.children_settled == 3
    assert not Job.objects.filter(parent=parent, counted_by_parent=False).exists()


def test_a_retried_child_no_longer_counts_until_it_settles_again():
    parent, kids = parked_parent(2)
    child_settled(settle(kids[0], JobState.FAILED))
    child_settled(settle(kids[1]))
    parent.refresh_from_db()
    assert parent.state == JobState.COMPLETED  # continue on error: both settled
    parent2, kids2 = parked_parent(2)
    child_settled(settle(kids2[0], JobState.FAILED))
    job_retry(job_id=kids2[0].pk)
    parent2.refresh_from_db()
    assert (parent2.children_settled, parent2.children_failed) == (0, 0)
    child_settled(settle(kids2[1]))
    parent2.refresh_from_db()
    assert parent2.state == JobState.RUNNING  # the retried child still runs
    run_inline(Job.objects.get(pk=kids2[0].pk))
    parent2.refresh_from_db()
    assert parent2.state == JobState.COMPLETED
    assert parent2.result == {"children": 2, "completed": 2}


def test_an_inline_run_runs_every_child_and_completes_the_parent_from_its_counters():
    parent, _kids = parent_with_children(5)
    done = run_inline(parent)
    assert done.state == JobState.COMPLETED
    assert (done.children_total, done.children_settled) == (5, 5)
    assert done.result == {"children": 5, "completed": 5}


def claimed_parent(children: int) -> tuple[Job, list[Job]]:
    """A parent a worker claimed (running, not parked yet), its children recorded with it."""
    parent, kids = parent_with_children(children)
    long_ago = timezone.now() - timedelta(minutes=10)
    Job.objects.filter(pk=parent.pk).update(
        state=JobState.RUNNING,
        attempts=1,
        started_at=long_ago,
        heartbeat_at=long_ago,
        worker_name="gone@nowhere:1",
        rq_job_id=f"job-{parent.pk}-1",
    )
    parent.refresh_from_db()
    return parent, kids


def test_a_parent_whose_horse_died_before_parking_waits_for_its_children_not_failed(tmp_path):
    # Given a worker claimed the parent and its horse was killed before it reported
    parent, kids = claimed_parent(2)
    handover = Handover(
        f"job-{parent.pk}-1", parent, report_path=str(tmp_path / "never-written.json")
    )
    # When the worker settles what the horse left
    settle_after_horse(handover, how_it_ended="killed (signal 9)")
    # Then the parent is parked, not failed; its children settle it
    parent.refresh_from_db()
    assert parent.state == JobState.RUNNING and parent.errors == []
    assert parent.rq_job_id.startswith("children-")
    for kid in kids:
        run_inline(kid)
    parent.refresh_from_db()
    assert parent.state == JobState.COMPLETED and parent.errors == []
    assert parent.result == {"children": 2, "completed": 2}


def test_reconcile_parks_a_parent_whose_worker_died_instead_of_failing_it():
    parent, kids = claimed_parent(2)
    for kid in kids:
        run_inline(kid)
    reconcile()
    parent.refresh_from_db()
    assert parent.state == JobState.COMPLETED, parent.errors
    assert "Worker died" not in parent.progress_message
    assert parent.result == {"children": 2, "completed": 2}


def test_a_parent_whose_real_horse_is_killed_as_it_parks_completes_with_its_children(
    worker_process,
):
    # Given a parent whose work horse dies (SIGKILL) as its handler returns, and 3 children
    parent = enqueue("test_parent_dies", payload={}, trigger="command")
    enqueue_many(
        "test_noop", payloads=[{"n": i} for i in range(3)], trigger="command", parent=parent
    )
    # When a real forking worker runs them all
    worker = worker_process("bundle-recompute")
    # Then the parent ends completed with its children's summary, never "Worker died"
    wait_until(lambda: Job.objects.get(pk=parent.pk).is_settled, timeout=60)
    worker.stop()
    parent.refresh_from_db()
    assert parent.state == JobState.COMPLETED, (parent.progress_message, parent.errors)
    assert parent.errors == [] and "died" not in parent.progress_message
    assert parent.result == {"children": 3, "completed": 3}
