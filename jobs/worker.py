"""The RQ worker class for ledger jobs.

On top of ``rq.Worker`` it
* claims a ledger job's row before forking its work horse, on the worker's own long-lived
  connection, and records the outcome the horse reports once the horse has exited
  (``jobs.runner.claim_for_horse`` / ``settle_after_horse``): a horse that opened a PostgreSQL
  connection per job spent more on it than on the whole job;
* never lets a horse use or close its connections: they are hidden from the horse across the
  fork (kept by the worker; one in a transaction is closed before it);
* settles the ledger row at once when a work horse dies (SIGKILL, OOM): RQ calls no job
  callback then, but it does call ``handle_work_horse_killed`` on the worker;
* runs relay + reconcile every ``JOBS_RECONCILE_INTERVAL`` seconds (5) in a small thread of
  the worker process (:class:`LedgerWatch`), busy or idle: one live worker of many takes each
  turn (``RECONCILE_DUE_KEY``, set with NX), and the pass itself holds the same Redis lock as the
  cron entry and the command (``maintenance.relay.relay_and_reconcile``). A whole worker that
  died is found by the others within seconds (``jobs.liveness``: RQ's worker heartbeat and the
  row's own). RQ's maintenance pass does the same, for ``JobsSimpleWorker`` (tests);
* registers again with RQ when Redis no longer lists it (restarted empty), within one
  heartbeat, so System -> Workers, GraphQL ``workers`` and ``/health/`` see it;
* never waits on RQ's pub/sub thread when it stops (``_LedgerMixin.unsubscribe``);
* marks its work horse (``jobs.runner.mark_work_horse``): a horse whose attempt is no longer
  the row's current one ends itself at its next heartbeat.

Cost at the defaults, per minute: 12 passes, each two indexed SELECTs (running rows, waiting
rows) and a few Redis calls; plus one heartbeat UPDATE per running job every 15 s (400 a minute
at 100 running jobs).
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from django.db import close_old_connections, connections
from redis.exceptions import RedisError
from rq import worker_registration
from rq.worker import SimpleWorker, Worker

from jobs import conf
from jobs.dispatch import RUNNER_ENTRYPOINT
from jobs.maintenance.relay import relay_and_reconcile
from jobs.models import Job, JobState
from jobs.parents import park_if_parent
from jobs.registry import UnknownJobKind, get_kind
from jobs.runner import (
    claim_for_horse,
    forget_handover,
    mark_work_horse,
    record_failure,
    record_undelivered,
    settle_after_horse,
)

logger = logging.getLogger(__name__)

MAINTENANCE_INTERVAL = 60
# Short TTL: the worker blocks on the queues for (ttl - 15) s, so maintenance can run that often,
# and a dead worker's key disappears quickly.
WORKER_TTL = 35  # idle heartbeat every 20 s: System → Workers shows a dead one within 25 s
JOB_MONITORING_INTERVAL = 10
# Set for one interval by the worker that does the ledger pass this turn (NX: one of many).
RECONCILE_DUE_KEY = "jobs:reconcile-due"


def ledger_pass_if_due(connection, worker_name: str, log=logger) -> dict | None:
    """Relay + reconcile if no other worker took this turn. Returns the outcome, or None."""
    ttl_ms = max(1000, int(conf.reconcile_interval() * 1000) - 250)
    if not connection.set(RECONCILE_DUE_KEY, worker_name, nx=True, px=ttl_ms):
        return None
    try:
        outcome = relay_and_reconcile()
        if any(v for k, v in outcome.items() if k != "skipped"):
            log.info("Ledger maintenance: %s", outcome)
        return outcome
    finally:
        close_old_connections()


class LedgerWatch(threading.Thread):
    """The worker's ledger pass every few seconds, whether the worker is busy or idle.

    A thread of the worker process (never of a work horse: ``fork`` copies only the forking
    thread). It uses its own database connection (Django's are per thread).
    """

    def __init__(self, worker) -> None:
        super().__init__(name=f"ledger-watch-{worker.name}", daemon=True)
        self.worker = worker
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(conf.reconcile_interval()):
            try:
                ledger_pass_if_due(self.worker.connection, self.worker.name, self.worker.log)
            except Exception:  # Redis or the database away: try again next turn
                logger.warning("Ledger pass failed", exc_info=True)
                close_old_connections()

    def stop(self) -> None:
        self.stopped.set()
        self.join(timeout=10)


# How long stopping a worker waits for RQ's pub/sub thread before closing its connection anyway.
PUBSUB_STOP_WAIT = 1.0


if TYPE_CHECKING:  # the mixin is only ever mixed into an RQ worker: type it as one
    _WorkerBase = Worker
else:
    _WorkerBase = object


class _LedgerMixin(_WorkerBase):
    def run_maintenance_tasks(self):
        super().run_maintenance_tasks()
        ledger_pass_if_due(self.connection, self.name, self.log)

    # -- back in RQ's registry after Redis lost it -----------------------------------------
    def heartbeat(self, timeout=None, pipeline=None):
        """RQ's heartbeat, plus: if Redis no longer lists this worker (restarted empty), register
        it again, so System -> Workers, GraphQL ``workers`` and ``/health/`` see it within one
        heartbeat (idle: every ``WORKER_TTL - 15`` s; busy: ``maintain_heartbeats``). RQ 3.0.0
        only puts the worker's hash back, busy, and never its place in ``rq:workers``.

        Pipelined: one round trip where RQ's own took three."""
        if pipeline is not None:
            return super().heartbeat(timeout, pipeline)
        with self.connection.pipeline() as pipe:
            super().heartbeat(timeout, pipeline=pipe)
            pipe.sismember(self.redis_workers_keys, self.key)
            registered = pipe.execute()[-1]
        if not registered:
            self._register_again()
        return None

    def maintain_heartbeats(self, job, execution):
        super().maintain_heartbeats(job, execution)  # every job_monitoring_interval while busy
        if not self.connection.sismember(self.redis_workers_keys, self.key):
            self._register_again()

    def register_death(self):
        self._registered_dead = True  # never registered again after this
        super().register_death()

    def _register_again(self) -> None:
        if getattr(self, "_registered_dead", False) or self.birth_date is None:
            return
        self.log.warning(
            "Worker %s: Redis no longer lists this worker; registering again", self.name
        )
        with self.connection.pipeline() as pipe:
            pipe.hset(self.key, mapping={**self.serialize(), "state": self.get_state()})
            worker_registration.register(self, pipe)
            pipe.expire(self.key, self.worker_ttl + 60)
            pipe.execute()

    # -- never wait on RQ's pub/sub thread -------------------------------------------------
    def unsubscribe(self):
        """RQ's ``unsubscribe`` without its up-to-60 s wait (checked: rq 3.0.0, redis-py 8.2.0).

        RQ sends UNSUBSCRIBE, then calls ``PubSubWorkerThread.stop()``, which since redis-py 8
        joins the thread with no time limit. The thread reads the UNSUBSCRIBE reply itself;
        if it does so before ``stop()`` clears its running flag, its next
        ``get_message(timeout=60)`` finds nothing subscribed and waits 60 s on
        ``subscribed_event`` (seen with ``sys._current_frames()`` on a stuck worker: 1 stop
        in 40 on an idle machine, far more on a loaded one). So the flag is cleared first: the
        reply then ends the thread at once. Redis away, the thread is left to end by itself (a
        daemon), its connection closed after ``PUBSUB_STOP_WAIT``.
        """
        thread, pubsub = self.pubsub_thread, self.pubsub
        if thread is None or pubsub is None:
            return
        self.log.info(
            "Worker %s: unsubscribing from channel %s", self.name, self.pubsub_channel_name
        )
        try:
            thread.stop(timeout=0)  # redis-py >= 8: clears the flag, waits for nothing
        except TypeError:
            thread.stop()  # redis-py < 8: clears the flag and never waited
        with contextlib.suppress(RedisError, OSError):
            pubsub.unsubscribe()  # its reply wakes the thread's read
        thread.join(timeout=PUBSUB_STOP_WAIT)
        with contextlib.suppress(RedisError, OSError):
            pubsub.close()
        self.pubsub_thread = None


class JobsWorker(_LedgerMixin, Worker):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("maintenance_interval", MAINTENANCE_INTERVAL)
        kwargs.setdefault("worker_ttl", WORKER_TTL)
        kwargs.setdefault("job_monitoring_interval", JOB_MONITORING_INTERVAL)
        super().__init__(*args, **kwargs)

    def work(self, *args, **kwargs):
        if kwargs.get("burst"):
            return super().work(*args, **kwargs)
        watch = LedgerWatch(self)
        watch.start()
        try:
            return super().work(*args, **kwargs)
        finally:
            watch.stop()

    def execute_job(self, job, queue):
        # Claimed here, before the fork, on this process's own connection; recorded here too,
        # once the horse has exited (jobs.runner.claim_for_horse).
        self._handover = claim_for_horse(job, worker_name=self.name)
        self._horse_status = None
        try:
            result = super().execute_job(job, queue)  # fork + monitor; the horse never returns
        except BaseException:
            # Cut short (cold shutdown: RQ killed the horse and raised SystemExit; or RQ's own
            # loop failed, its horse perhaps still running): the row stays running and
            # reconcile settles it, as for any worker that died mid-job.
            if self._handover is not None:
                forget_handover(self._handover)
            self._handover = None
            raise
        handover, self._handover = self._handover, None
        if handover is not None:
            self._settle_handover(job, handover)
        return result

    def _settle_handover(self, job, handover) -> None:
        if self._stopped_job_id == job.id:
            how = "stopped (RQ stop-job command)"
        elif self._horse_status is not None and os.WIFSIGNALED(self._horse_status):
            how = f"killed (signal {os.WTERMSIG(self._horse_status)})"
        elif self._horse_status is not None:
            how = f"ended without reporting (exit status {self._horse_status})"
        else:
            how = "ended without reporting"
        try:
            settle_after_horse(handover, how_it_ended=how)
        except Exception:  # reconcile will settle it; never take the worker down
            logger.exception("Could not settle ledger for RQ job %s", job.id)
            close_old_connections()

    def fork_work_horse(self, job, queue):
        kept = _hide_connections_from_horse()
        # The horse shares the worker's heap copy-on-write. A garbage collection in it walks
        # every tracked object and so copies every page it touches (a no-op job through the
        # ledger ran 2-3x slower in a horse than in-process). Frozen before the fork, the
        # inherited objects are left out of the horse's collections; the worker unfreezes its
        # own at once, so its garbage is still collected.
        gc.freeze()
        try:
            super().fork_work_horse(job, queue)  # returns in the worker only (the horse exits)
        finally:
            gc.unfreeze()
            _give_back(kept)

    def main_work_horse(self, job, queue):
        mark_work_horse()  # in the horse: a superseded attempt may end it (jobs.runner)
        return super().main_work_horse(job, queue)

    def handle_work_horse_killed(self, job, retpid, ret_val, rusage):
        super().handle_work_horse_killed(job, retpid, ret_val, rusage)
        if getattr(self, "_handover", None) is not None:
            self._horse_status = ret_val  # execute_job settles it, knowing how it ended
            return
        try:
            settle_killed_delivery(job, ret_val, worker_name=self.name)
        except Exception:  # reconcile will settle it; never take the worker down
            logger.exception("Could not settle ledger for killed RQ job %s", job.id)
        finally:
            close_old_connections()


def _hide_connections_from_horse() -> list:
    """Before a fork: a work horse must never use or close its worker's database connections.

    The worker keeps them and only hides them from the horse, which opens its own if its
    handler needs one (the horse never closes the hidden ones: it ends with ``os._exit``, which
    runs no finalizers). PostgreSQL: a new connection costs a backend fork and cold caches.
    SQLite: closing the last connection to a WAL database checkpoints and deletes the WAL, a
    fifth of a no-op job's time; SQLite allows a connection to be carried across ``fork()`` as
    long as the child neither uses nor closes it (sqlite.org/howtocorrupt.html, 2.6). One in a
    transaction is closed instead (it holds locks a child must not inherit; it cannot be
    carried anyway: the horse runs outside any transaction).
    """
    kept = []
    for conn in connections.all(initialized_only=True):
        if conn.connection is None:
            continue
        if conn.in_atomic_block or (conn.vendor == "sqlite" and conn.connection.in_transaction):
            conn.close()
            continue
        kept.append((conn, conn.connection))
        conn.connection = None
    return kept


def _give_back(kept: list) -> None:
    """After the fork, in the worker: its connections back, as they were."""
    for conn, raw in kept:
        if conn.connection is None:
            conn.connection = raw
        else:  # cannot happen (nothing ran in between); never leak the socket
            raw.close()


class JobsSimpleWorker(_LedgerMixin, SimpleWorker):
    """Runs jobs in the worker process itself (tests, benchmarks, debugging)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("maintenance_interval", MAINTENANCE_INTERVAL)
        kwargs.setdefault("worker_ttl", WORKER_TTL)
        super().__init__(*args, **kwargs)


def settle_killed_delivery(rq_job, ret_val, *, worker_name: str = "") -> None:
    """Record the killed attempt of the ledger job behind ``rq_job`` (retry or fail).

    Killed before the runner claimed the row (it is still waiting on this very delivery), the
    delivery becomes a failed attempt with RQ's own reason, at once rather than when the relay
    notices the RQ job failed.
    """
    if rq_job.func_name != RUNNER_ENTRYPOINT or not rq_job.args:
        return
    row = Job.objects.filter(pk=rq_job.args[0], rq_job_id=rq_job.id).first()
    if row is None:
        return
    if row.state in (JobState.PENDING, JobState.RETRYING):
        signal_msg = (
            f" (signal {os.WTERMSIG(ret_val)})" if ret_val and os.WIFSIGNALED(ret_val) else ""
        )
        record_undelivered(
            row.pk,
            rq_job_id=rq_job.id,
            worker_name=worker_name,
            message=(
                "Delivery failed before the runner claimed the job: Work-horse terminated "
                f"unexpectedly; waitpid returned {ret_val}{signal_msg} (RQ job {rq_job.id}, "
                f"worker {worker_name})"
            ),
        )
        return
    if row.state != JobState.RUNNING or park_if_parent(row) is not None:
        return  # settled, or a parent whose children carry the work: nothing of it died
    how = f"signal {os.WTERMSIG(ret_val)}" if ret_val and os.WIFSIGNALED(ret_val) else ret_val
    try:
        kind = get_kind(row.kind)
    except UnknownJobKind:
        kind = None
    record_failure(
        row,
        message=f"Worker died: work horse killed ({how}) while running attempt {row.attempts}",
        kind=kind,
        expect_attempt=row.attempts,
    )


def work_through_redis_outages(
    make_worker: Callable[[], Worker], *, burst: bool = False, max_jobs: int | None = None, **kw
) -> None:
    """Run a worker and start a fresh one when RQ's quits on its own (it does on some Redis
    errors: a restart, a failover), as a supervisor with ``Restart=always`` would; a Redis
    outage then delays jobs without taking the workers down. Returns when the worker was asked
    to stop (SIGINT / SIGTERM), or ran in burst mode or up to ``max_jobs``."""
    while True:
        worker = make_worker()
        try:
            worker.work(burst=burst, max_jobs=max_jobs, **kw)
        except RedisError as exc:  # raised from RQ's teardown while Redis is away
            logger.warning("Worker %s stopped on a Redis error: %s", worker.name, exc)
        # A SIGINT / SIGTERM while idle ends RQ's loop without _stop_requested: the date says.
        asked_to_stop = worker._stop_requested or worker._shutdown_requested_date is not None
        if burst or max_jobs or asked_to_stop:
            return
        logger.warning("Worker %s quit by itself; starting again once Redis answers", worker.name)
        while True:
            try:
                worker.connection.ping()
                break
            except RedisError:
                time.sleep(1)  # nothing else to wait on: Redis is the thing missing
        time.sleep(1)
