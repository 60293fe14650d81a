"""The RQ worker classes for ledger jobs: the ledger's side of the hooks of ``jobs.rq_compat``.

A forking :class:`JobsWorker`
* claims a ledger job's row before forking its work horse, on the worker's own long-lived
  connection, and records the outcome the horse reports once the horse has exited
  (``jobs.runner.claim_for_horse`` / ``settle_after_horse``): a horse that opened a PostgreSQL
  connection per job spent more on it than on the whole job;
* never lets a horse use or close its connections: they are hidden from the horse across the
  fork (kept by the worker; one in a transaction is closed before it);
* settles the ledger row at once when a work horse dies (SIGKILL, OOM): RQ calls no job
  callback then, but it does tell the worker (``horse_killed``);
* marks its work horse (``jobs.runner.mark_work_horse``): a horse whose attempt is no longer
  the row's current one ends itself at its next heartbeat.

Both classes run relay + reconcile every ``JOBS_RECONCILE_INTERVAL`` seconds (5) in a small
thread of the worker process, busy or idle, one live worker of many taking each turn
(``jobs.maintenance.ledger_pass``): a whole worker that died is found by the others within
seconds (``jobs.liveness``). They register again with RQ when Redis no longer lists them
(restarted empty), and never wait on RQ's pub/sub thread when they stop (both in the door).

Cost at the defaults, per minute: 12 passes, each two indexed SELECTs (running rows, waiting
rows) and a few Redis calls; plus one heartbeat UPDATE per running job every 15 s (400 a minute
at 100 running jobs).
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from django.db import close_old_connections, connections
from redis.exceptions import RedisError
from rq.job import Job as RQJob
from rq.worker import BaseWorker, SimpleWorker, Worker

from jobs.dispatch import RUNNER_ENTRYPOINT
from jobs.maintenance.ledger_pass import LedgerWatch, ledger_pass_if_due
from jobs.models import Job, JobState
from jobs.parents import park_if_parent
from jobs.registry import UnknownJobKind, get_kind
from jobs.rq_compat import ForkingWorkerDoor, RegisteredWorkerDoor, stop_was_asked
from jobs.runner import (
    Handover,
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


if TYPE_CHECKING:
    _WorkerBase = BaseWorker  # a mixin put before an RQ worker class: typed as one
else:
    _WorkerBase = object


class _LedgerMaintenance(_WorkerBase):
    def ledger_maintenance(self) -> None:
        ledger_pass_if_due(self.connection, self.name, self.log)


class JobsWorker(_LedgerMaintenance, ForkingWorkerDoor, Worker):
    """The forking worker: the ledger's side of each hook of ``jobs.rq_compat``."""

    _handover: Handover | None = None

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("maintenance_interval", MAINTENANCE_INTERVAL)
        kwargs.setdefault("worker_ttl", WORKER_TTL)
        kwargs.setdefault("job_monitoring_interval", JOB_MONITORING_INTERVAL)
        super().__init__(*args, **kwargs)

    def work(self, *args, **kwargs) -> bool:
        if kwargs.get("burst"):
            return super().work(*args, **kwargs)
        watch = LedgerWatch(self)
        watch.start()
        try:
            return super().work(*args, **kwargs)
        finally:
            watch.stop()

    def claim_before_fork(self, job: RQJob) -> None:
        # Claimed here, before the fork, on this process's own connection; recorded here too,
        # once the horse has exited (jobs.runner.claim_for_horse).
        self._handover = claim_for_horse(job, worker_name=self.name)

    def horse_handed_over(self) -> bool:
        return self._handover is not None

    def horse_cut_short(self, job: RQJob) -> None:
        # The row stays running and reconcile settles it, as for any worker that died mid-job.
        if self._handover is not None:
            forget_handover(self._handover)
        self._handover = None

    def settle_after_horse(self, job: RQJob, *, how_it_ended: str) -> None:
        handover, self._handover = self._handover, None
        if handover is None:
            return
        try:
            settle_after_horse(handover, how_it_ended=how_it_ended)
        except Exception:  # reconcile will settle it; never take the worker down
            logger.exception("Could not settle ledger for RQ job %s", job.id)
            close_old_connections()

    def horse_killed(self, job: RQJob, ret_val: int) -> None:
        try:
            settle_killed_delivery(job, ret_val, worker_name=self.name)
        except Exception:  # reconcile will settle it; never take the worker down
            logger.exception("Could not settle ledger for killed RQ job %s", job.id)
        finally:
            close_old_connections()

    @contextlib.contextmanager
    def around_fork(self) -> Iterator[None]:
        kept = _hide_connections_from_horse()
        # The horse shares the worker's heap copy-on-write. A garbage collection in it walks
        # every tracked object and so copies every page it touches (a no-op job through the
        # ledger ran 2-3x slower in a horse than in-process). Frozen before the fork, the
        # inherited objects are left out of the horse's collections; the worker unfreezes its
        # own at once, so its garbage is still collected.
        gc.freeze()
        try:
            yield
        finally:
            gc.unfreeze()
            _give_back(kept)

    def in_horse(self) -> None:
        mark_work_horse()  # a superseded attempt may end this horse (jobs.runner.heartbeats)


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


class JobsSimpleWorker(_LedgerMaintenance, RegisteredWorkerDoor, SimpleWorker):
    """Runs jobs in the worker process itself (tests, benchmarks, debugging)."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("maintenance_interval", MAINTENANCE_INTERVAL)
        kwargs.setdefault("worker_ttl", WORKER_TTL)
        super().__init__(*args, **kwargs)


def settle_killed_delivery(rq_job: RQJob, ret_val: int, *, worker_name: str = "") -> None:
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
    make_worker: Callable[[], BaseWorker], *, burst: bool = False, max_jobs: int | None = None, **kw
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
        if burst or max_jobs or stop_was_asked(worker):
            return
        logger.warning("Worker %s quit by itself; starting again once Redis answers", worker.name)
        while True:
            try:
                worker.connection.ping()
                break
            except RedisError:
                time.sleep(1)  # nothing else to wait on: Redis is the thing missing
        time.sleep(1)
