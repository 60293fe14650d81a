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
from rq.job import Job as RQJob

from jobs import enqueue as enqueue_module
from jobs.enqueue import InvalidJobRequest, dispatch, enqueue
from jobs.models import Job, JobState
from jobs.registry import UnknownJobKind

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
