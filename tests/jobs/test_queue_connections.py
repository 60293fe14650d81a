"""Per-queue Redis in ``RQ_QUEUES``: every queue's pause flag and jobs live on its own server."""

from __future__ import annotations

import pytest
import redis
from django_rq import settings as rq_settings

from config.embedded_redis import start_embedded_redis
from jobs.dispatch import dispatch, dispatch_many
from jobs.enqueue import enqueue
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
