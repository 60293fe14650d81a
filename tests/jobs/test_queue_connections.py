"""Per-queue Redis in ``RQ_QUEUES``: every queue's pause flag and jobs live on its own server."""

from __future__ import annotations

from datetime import timedelta

import django_rq
import pytest
import redis
from django.utils import timezone
from django_rq import settings as rq_settings
from rq.job import Job as RQJob
from rq.worker import Worker

from config.embedded_redis import start_embedded_redis
from jobs.dispatch import dispatch, dispatch_many
from jobs.enqueue import enqueue
from jobs.maintenance.reconcile import reconcile
from jobs.maintenance.relay import relay
from jobs.models import Job, JobState
from jobs.pause import PAUSED_QUEUES_KEY, paused_queues
from jobs.services import queue_pause, queue_resume

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis]

OWN = "bundle-reindex"  # the queue given a Redis of its own
SHARED = "bundle-recompute"  # stays on the suite's Redis


@pytest.fixture
def own_redis(redis_conn, monkeypatch, tmp_path):
    """``OWN`` moved to a second, private Redis server; returns a client of that server."""
    server = start_embedded_redis(workdir=str(tmp_path))
    config = {**rq_settings.QUEUES[OWN], "URL": server.url}
    monkeypatch.setitem(rq_settings.QUEUES, OWN, config)
    try:
        yield redis.Redis.from_url(server.url)
    finally:
        server.stop()


def _row(queue: str) -> Job:
    return enqueue(
        "test_noop", payload={}, trigger="command", queue=queue, dispatch_on_commit=False
    )


def _queued_ids(conn, queue: str) -> list[str]:
    return [m.decode() for m in conn.lrange(f"rq:queue:{queue}", 0, -1)]


def test_pausing_a_queue_with_its_own_redis_holds_its_jobs_there(own_redis, redis_conn):
    # Given OWN on a Redis of its own, paused
    queue_pause(queue=OWN)
    # Then the workers' flag is on that queue's own server
    assert own_redis.sismember(PAUSED_QUEUES_KEY, OWN)
    # When one of its rows is dispatched
    job = _row(OWN)
    assert dispatch(job.pk) is False
    # Then it waits, visibly pending and undispatched; neither Redis got it
    job.refresh_from_db()
    assert (job.state, job.dispatched_at) == (JobState.PENDING, None)
    assert _queued_ids(own_redis, OWN) == [] and _queued_ids(redis_conn, OWN) == []
    # And resuming clears the flag there and sends it to that server
    assert queue_resume(queue=OWN) == 1
    assert not own_redis.sismember(PAUSED_QUEUES_KEY, OWN)
    job.refresh_from_db()
    assert _queued_ids(own_redis, OWN) == [job.rq_job_id]


def test_bulk_dispatch_holds_the_rows_of_a_paused_queue_on_its_own_redis(own_redis):
    queue_pause(queue=OWN)
    held, sent = _row(OWN), _row(SHARED)
    assert dispatch_many([held.pk, sent.pk]) == 1
    held.refresh_from_db()
    assert held.dispatched_at is None
    assert _queued_ids(own_redis, OWN) == []
    assert paused_queues() == {OWN}


def test_bulk_dispatch_sends_each_queues_rows_to_its_own_redis(own_redis, redis_conn):
    # Given rows of two queues whose Redis servers differ, the shared one first
    rows = [_row(SHARED), _row(OWN), _row(SHARED), _row(OWN)]
    # When they are dispatched together (one pipeline per server)
    assert dispatch_many([row.pk for row in rows]) == 4
    # Then each server holds exactly its own queue's jobs
    ids = {row.pk: Job.objects.get(pk=row.pk).rq_job_id for row in rows}
    assert _queued_ids(redis_conn, SHARED) == [ids[rows[0].pk], ids[rows[2].pk]]
    assert _queued_ids(own_redis, OWN) == [ids[rows[1].pk], ids[rows[3].pk]]
    assert _queued_ids(redis_conn, OWN) == [] and _queued_ids(own_redis, SHARED) == []


def _age(job: Job, seconds: int) -> None:
    past = timezone.now() - timedelta(seconds=seconds)
    Job.objects.filter(pk=job.pk).update(created_at=past, dispatched_at=past)


def test_the_relay_leaves_a_job_waiting_in_its_queues_own_redis_alone(own_redis, redis_conn):
    # Given a row of OWN sent a minute ago, its RQ job waiting on OWN's Redis
    job = _row(OWN)
    assert dispatch(job.pk)
    _age(job, 60)
    sent_as = Job.objects.get(pk=job.pk).rq_job_id
    # When the relay looks for rows RQ lost
    assert relay() == 0
    # Then it found the RQ job where it is, and sent nothing again
    assert Job.objects.get(pk=job.pk).rq_job_id == sent_as
    assert _queued_ids(own_redis, OWN) == [sent_as]


def test_reconcile_sees_a_live_worker_on_its_queues_own_redis(own_redis, redis_conn):
    # Given a row of OWN running for 60 s in a worker registered (and heartbeating) on OWN's
    # Redis, its RQ job started there; the row's own heartbeat is 30 s old
    job = _row(OWN)
    assert dispatch(job.pk)
    rq_id = Job.objects.get(pk=job.pk).rq_job_id
    connection = django_rq.get_queue(OWN).connection
    worker = Worker([django_rq.get_queue(OWN)], connection=connection, name="own-worker")
    worker.register_birth()
    worker.heartbeat()
    RQJob.fetch(rq_id, connection=connection).set_status("started")
    now = timezone.now()
    Job.objects.filter(pk=job.pk).update(
        state=JobState.RUNNING,
        attempts=1,
        worker_name="own-worker",
        started_at=now - timedelta(seconds=60),
        heartbeat_at=now - timedelta(seconds=30),
    )
    # When reconcile looks for dead workers
    changed = reconcile()
    # Then the live run is left alone
    assert changed == []
    assert Job.objects.get(pk=job.pk).state == JobState.RUNNING
