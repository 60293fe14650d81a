"""enqueue(): the ledger row in the caller's transaction, dispatch on commit, dedup."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from urllib.parse import urlsplit, urlunsplit

import django_rq
import pytest
from django.db import IntegrityError, close_old_connections, connection, transaction
from django.test.utils import CaptureQueriesContext
from rq.job import Job as RQJob

from jobs import enqueue as enqueue_module
from jobs.dispatch import dispatch
from jobs.enqueue import InvalidJobRequest, enqueue, enqueue_many
from jobs.maintenance.relay import relay
from jobs.models import Job, JobState
from jobs.registry import UnknownJobKind
from tests.jobs.kinds import runs_key

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis]


def queued_ledger_ids() -> list[str]:
    queue = django_rq.get_queue("bundle-recompute")
    return [job.args[0] for job in queue.get_jobs()]


def test_committed_enqueue_writes_the_row_and_dispatches_it_to_its_queue(redis_conn, token):
    # When
    with transaction.atomic():
        job = enqueue("test_noop", payload={"token": token}, trigger="command", reason="test")
        # Then, before commit: the row exists, RQ has heard nothing
        assert Job.objects.filter(pk=job.pk).exists()
        assert queued_ledger_ids() == []
    # Then, after commit
    job.refresh_from_db()
    assert job.state == JobState.PENDING
    assert job.queue == "bundle-recompute"
    assert job.dispatched_at is not None
    assert queued_ledger_ids() == [str(job.pk)]
    rq_job = RQJob.fetch(job.rq_job_id, connection=redis_conn)
    assert rq_job.func_name == "jobs.runner.perform"
    assert rq_job.timeout == 30  # the kind's timeout


def test_rolled_back_transaction_leaves_no_row_and_no_rq_job(redis_conn, token):
    # When
    with pytest.raises(RuntimeError), transaction.atomic():
        enqueue("test_noop", payload={"token": token}, trigger="signal")
        raise RuntimeError("the caller's transaction fails")
    # Then
    assert Job.objects.count() == 0
    assert queued_ledger_ids() == []
    assert not redis_conn.keys("rq:job:*")


def test_dedup_key_returns_the_pending_job_and_counts_the_merge(redis_conn):
    # Given
    first = enqueue(
        "test_noop", payload={"ids": [1]}, trigger="signal", dedup_key="fanout:variant:7"
    )

    # When
    def widen(old: dict, new: dict) -> dict:
        return {"ids": sorted(set(old["ids"]) | set(new["ids"]))}

    second = enqueue(
        "test_noop",
        payload={"ids": [2]},
        trigger="signal",
        dedup_key="fanout:variant:7",
        merge=widen,
    )
    third = enqueue(
        "test_noop", payload={"ids": [3]}, trigger="signal", dedup_key="fanout:variant:7"
    )

    # Then
    assert second.pk == first.pk == third.pk
    assert Job.objects.count() == 1
    row = Job.objects.get()
    assert row.merged_count == 2
    assert row.payload == {"ids": [1, 2]}  # widened by merge; third had no merge function
    assert queued_ledger_ids() == [str(row.pk)]  # dispatched once


def test_dedup_never_merges_into_a_started_job(redis_conn):
    # Given a job with the key that a worker has started
    running = enqueue("test_noop", payload={}, trigger="signal", dedup_key="recompute:bundle:1")
    Job.objects.filter(pk=running.pk).update(state=JobState.RUNNING)
    # When the same change arrives again
    again = enqueue("test_noop", payload={}, trigger="signal", dedup_key="recompute:bundle:1")
    # Then it gets a job of its own, which will run after the current one
    assert again.pk != running.pk
    assert again.state == JobState.PENDING


def test_database_refuses_two_pending_jobs_with_one_dedup_key(redis_conn):
    Job.objects.create(queue="q", kind="k", trigger="signal", dedup_key="same")
    with pytest.raises(IntegrityError), transaction.atomic():
        Job.objects.create(queue="q", kind="k", trigger="signal", dedup_key="same")
    # a settled one with the same key is fine
    Job.objects.create(queue="q", kind="k", trigger="signal", dedup_key="same", state="completed")


def test_lost_dedup_race_returns_the_winner_inside_the_callers_transaction(redis_conn, monkeypatch):
    # Given the look-up misses the row a racing request is about to insert
    winner = Job.objects.create(
        queue="bundle-recompute", kind="test_noop", trigger="signal", dedup_key="race"
    )
    real_merge = enqueue_module._merge_into_pending
    calls = []

    def miss_once(*args, **kwargs):
        calls.append(1)
        return None if len(calls) == 1 else real_merge(*args, **kwargs)

    monkeypatch.setattr(enqueue_module, "_merge_into_pending", miss_once)
    # When
    with transaction.atomic():
        job = enqueue("test_noop", payload={}, trigger="signal", dedup_key="race")
        # the caller's transaction is still usable after the IntegrityError
        Job.objects.count()
    # Then
    assert job.pk == winner.pk
    assert Job.objects.get(pk=winner.pk).merged_count == 1
    assert Job.objects.count() == 1


def test_racing_enqueues_from_many_threads_make_one_row(redis_conn):
    # Given eight requests released at once, each in its own connection and transaction
    barrier = threading.Barrier(8)
    results, errors = [], []

    def request():
        try:
            barrier.wait()
            with transaction.atomic():
                results.append(
                    enqueue("test_noop", payload={}, trigger="signal", dedup_key="burst").pk
                )
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=request) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Then
    assert errors == []
    assert len(set(results)) == 1
    row = Job.objects.get()
    assert row.merged_count == 7


def test_unknown_kind_and_bad_payload_are_refused_without_a_row(redis_conn):
    with pytest.raises(UnknownJobKind):
        enqueue("no_such_kind", payload={}, trigger="command")
    with pytest.raises(InvalidJobRequest):
        enqueue("test_noop", payload={"when": object()}, trigger="command")
    with pytest.raises(InvalidJobRequest):
        enqueue("test_noop", payload={}, trigger="cron")
    assert Job.objects.count() == 0


def test_redis_down_at_commit_keeps_the_row_undispatched_without_raising(redis_conn, monkeypatch):
    # Given a queue whose Redis refuses connections
    import redis

    def refuse(*args, **kwargs):
        raise redis.exceptions.ConnectionError("Connection refused")

    monkeypatch.setattr("rq.queue.Queue.enqueue", refuse)
    # When
    with transaction.atomic():
        job = enqueue("test_noop", payload={}, trigger="signal")
    # Then
    job.refresh_from_db()
    assert job.state == JobState.PENDING
    assert job.dispatched_at is None


def test_two_concurrent_merges_into_one_pending_job_keep_both_changes(redis_conn):
    # Given a pending fan-out job for variant 1
    enqueue("test_noop", payload={"ids": [1]}, trigger="signal", dedup_key="fanout:race")
    # When two requests (autocommit, each in its own connection) merge 2 and 3 into it at once;
    # each merge function waits for the other to be merging too, if it can get there
    barrier = threading.Barrier(2)
    errors = []

    def widen(old: dict, new: dict) -> dict:
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait(timeout=1)
        return {"ids": sorted(set(old["ids"]) | set(new["ids"]))}

    def request(variant_id: int):
        try:
            enqueue(
                "test_noop",
                payload={"ids": [variant_id]},
                trigger="signal",
                dedup_key="fanout:race",
                merge=widen,
            )
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=request, args=(n,)) for n in (2, 3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Then neither change is lost
    assert errors == []
    row = Job.objects.get()
    assert row.payload == {"ids": [1, 2, 3]}
    assert row.merged_count == 2


def test_dispatch_gives_up_within_seconds_when_redis_does_not_answer(redis_conn, monkeypatch):
    # Given the configured queue pointed at a host that never completes a TCP connect (a
    # listening socket whose accept backlog is full: the kernel drops further SYNs)
    from django.conf import settings
    from django_rq import settings as rq_settings

    blackhole = socket.socket()
    blackhole.bind(("127.0.0.1", 0))
    blackhole.listen(0)
    port = blackhole.getsockname()[1]
    fillers = []
    for _ in range(3):
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(("127.0.0.1", port))
        fillers.append(filler)
    config = dict(settings.RQ_QUEUES["bundle-recompute"])
    url = urlsplit(config["URL"])
    config["URL"] = urlunsplit(url._replace(netloc=f"127.0.0.1:{port}"))
    monkeypatch.setitem(rq_settings.QUEUES, "bundle-recompute", config)
    job = enqueue("test_noop", payload={}, trigger="signal", dispatch_on_commit=False)
    # When the commit's dispatch runs
    outcome = []
    started = time.monotonic()
    sender = threading.Thread(target=lambda: outcome.append(dispatch(job.pk)), daemon=True)
    sender.start()
    sender.join(timeout=10)
    took = time.monotonic() - started
    try:
        # Then it gives up after the 2 s connect timeout (redis-py's own default is 5 s), and
        # the relay will send the row later
        assert not sender.is_alive(), "dispatch still waiting for Redis after 10 s"
        assert outcome == [False]
        assert 1.5 < took < 4
        assert Job.objects.get(pk=job.pk).dispatched_at is None
    finally:
        for sock in (blackhole, *fillers):
            sock.close()


def test_every_queue_connects_with_a_timeout_but_blocks_on_dequeue_without_one():
    for name in ("bundle-recompute", "bundle-reindex", "bundle-consistency-check", "default"):
        kwargs = django_rq.get_connection(name).connection_pool.connection_kwargs
        assert kwargs.get("socket_connect_timeout") == 2, name
        assert kwargs.get("socket_timeout") is None, name


# --- enqueue_many -----------------------------------------------------------------------------


def test_enqueue_many_writes_every_row_in_one_insert_and_dispatches_none_before_commit(
    redis_conn, token, django_user_model
):
    # Given a parent row and a user
    user = django_user_model.objects.create_user(username="bulk-op", password="x")
    parent = enqueue("test_noop", payload={}, trigger="admin", dispatch_on_commit=False)
    payloads = [{"token": f"{token}-{n}", "n": n} for n in range(3)]
    # When
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        jobs = enqueue_many(
            "test_noop",
            payloads=payloads,
            trigger="admin",
            reason_for=lambda index, payload: f"Batch {index + 1} ({payload['n']})",
            requested_by=user,
            targets=[("bundle", "", f"Batch {n + 1}") for n in range(3)],
            parent=parent,
        )
        # Then, before commit: RQ has heard nothing
        assert queued_ledger_ids() == []
    # Then: one INSERT for the three rows, and nothing else
    statements = [q["sql"] for q in queries.captured_queries]
    assert len(statements) == 1 and statements[0].startswith("INSERT"), statements
    rows = {j.pk: j for j in Job.objects.filter(parent=parent)}
    assert len(jobs) == 3 and set(rows) == {j.pk for j in jobs}
    for n, job in enumerate(jobs):
        row = rows[job.pk]
        assert row.payload == payloads[n]
        assert row.reason == f"Batch {n + 1} ({n})"
        assert row.target_label == f"Batch {n + 1}"
        assert (row.trigger, row.requested_by_id, row.dedup_key) == ("admin", user.pk, None)
        assert row.queue == "bundle-recompute" and row.max_attempts == 1


def test_enqueue_many_in_a_rolled_back_transaction_leaves_no_rows_and_no_rq_jobs(redis_conn, token):
    # When
    with pytest.raises(RuntimeError), transaction.atomic():
        enqueue_many("test_noop", payloads=[{"token": token}] * 3, trigger="signal")
        raise RuntimeError("the caller's transaction fails")
    # Then
    assert Job.objects.count() == 0
    assert queued_ledger_ids() == []
    assert not redis_conn.keys("rq:job:*")


def test_enqueue_many_committed_rows_reach_rq_in_order_and_each_runs_once(
    redis_conn, token, run_burst
):
    # When
    with transaction.atomic():
        jobs = enqueue_many(
            "test_noop", payloads=[{"token": f"{token}-{n}"} for n in range(4)], trigger="command"
        )
    # Then every row was claimed with an RQ id of its own and queued in the given order
    rows = Job.objects.in_bulk([j.pk for j in jobs])
    assert all(rows[j.pk].dispatched_at is not None for j in jobs)
    assert len({rows[j.pk].rq_job_id for j in jobs}) == 4
    assert queued_ledger_ids() == [str(j.pk) for j in jobs]
    # and a worker runs each exactly once
    run_burst()
    assert set(Job.objects.values_list("state", flat=True)) == {JobState.COMPLETED}
    assert [redis_conn.get(runs_key(f"{token}-{n}")) for n in range(4)] == [b"1"] * 4


def test_enqueue_many_with_redis_down_at_commit_leaves_the_rows_for_the_relay(
    redis_conn, token, run_burst, monkeypatch
):
    import redis

    # Given a queue whose Redis refuses connections
    def refuse(*args, **kwargs):
        raise redis.exceptions.ConnectionError("Connection refused")

    monkeypatch.setattr("rq.queue.Queue.enqueue", refuse)
    monkeypatch.setattr("rq.queue.Queue.enqueue_many", refuse)  # the pipelined send
    # When (no error reaches the caller)
    with transaction.atomic():
        jobs = enqueue_many(
            "test_noop", payloads=[{"token": f"{token}-{n}"} for n in range(3)], trigger="signal"
        )
    # Then the rows wait, undispatched
    pending = Job.objects.filter(state=JobState.PENDING, dispatched_at__isnull=True)
    assert set(pending.values_list("pk", flat=True)) == {j.pk for j in jobs}
    # When Redis is back and the relay runs
    monkeypatch.undo()
    assert relay(grace_seconds=0) == 3
    run_burst()
    # Then each ran once
    assert [redis_conn.get(runs_key(f"{token}-{n}")) for n in range(3)] == [b"1"] * 3


def test_enqueue_many_refuses_bad_input_before_writing_any_row(redis_conn):
    with pytest.raises(UnknownJobKind):
        enqueue_many("no_such_kind", payloads=[{}], trigger="command")
    with pytest.raises(InvalidJobRequest):
        enqueue_many("test_noop", payloads=[{}], trigger="cron")
    with pytest.raises(InvalidJobRequest):  # the bad payload is the last one
        enqueue_many("test_noop", payloads=[{}, {}, {"when": object()}], trigger="command")
    with pytest.raises(InvalidJobRequest, match="one per payload"):
        enqueue_many("test_noop", payloads=[{}, {}], trigger="command", targets=[None])
    assert Job.objects.count() == 0
    assert enqueue_many("test_noop", payloads=[], trigger="command") == []
