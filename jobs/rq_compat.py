"""The one door to RQ's internals: every override of an RQ worker method and every private
attribute or internal module of RQ the project uses lives here, and nowhere else.

Checked against rq 3.0.0 (with redis-py 8.1 and 8.2): ``CHECKED_RQ_VERSIONS``. When RQ moves,
``tests/jobs/test_rq_contract.py`` fails and names what changed: the signature of an overridden
method (``OVERRIDDEN``), a private attribute a real worker no longer has (``PRIVATE_ATTRIBUTES``),
a module attribute (``worker_registration.REDIS_WORKER_KEYS``, ``.register``). Another test
checks that no other module of the repository names them.

What the ledger does at each point is not here: the door turns RQ's methods into named hooks
(``claim_before_fork``, ``settle_after_horse``, ``horse_killed``, …) that ``jobs.worker``
implements. What RQ's overrides are for:

* a forking worker claims the ledger row before it forks its horse and records what the horse
  reported once it exited (``execute_job``); RQ's stop-job command shows in ``_stopped_job_id``;
* the worker's database connections are hidden from the horse across the fork
  (``fork_work_horse``); the horse knows it is one (``main_work_horse``);
* a horse killed (SIGKILL, OOM) is settled at once (``handle_work_horse_killed``: RQ calls no job
  callback then);
* the ledger pass joins RQ's maintenance (``run_maintenance_tasks``);
* a worker Redis no longer lists (restarted empty) registers again (``heartbeat``,
  ``maintain_heartbeats``, ``register_death``, ``worker_registration``);
* stopping never waits on RQ's pub/sub thread (``unsubscribe``);
* a worker asked to stop is told from one that quit on a Redis error (``_stop_requested``,
  ``_shutdown_requested_date``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from redis.exceptions import RedisError
from rq import worker_registration
from rq.job import Job as RQJob
from rq.queue import Queue
from rq.worker import BaseWorker, Worker

if TYPE_CHECKING:
    from redis import Redis
    from redis.client import Pipeline
    from rq.executions import Execution

logger = logging.getLogger(__name__)

CHECKED_RQ_VERSIONS = ("3.0.0",)

# RQ's methods overridden below, with the signature each had in the versions checked.
OVERRIDDEN: dict[str, str] = {
    "execute_job": "(self, job: 'Job', queue: 'Queue')",
    "fork_work_horse": "(self, job: 'Job', queue: 'Queue')",
    "main_work_horse": "(self, job: 'Job', queue: 'Queue')",
    "handle_work_horse_killed": "(self, job, retpid, ret_val, rusage)",
    "run_maintenance_tasks": "(self)",
    "heartbeat": "(self, timeout: 'int | None' = None, pipeline: 'Pipeline | None' = None)",
    "maintain_heartbeats": "(self, job: 'Job', execution: 'Execution')",
    "register_death": "(self)",
    "unsubscribe": "(self)",
}
# Private attributes of a worker read here (set in ``BaseWorker.__init__``).
PRIVATE_ATTRIBUTES = ("_stopped_job_id", "_stop_requested", "_shutdown_requested_date")
# Public attributes the overrides rely on (a rename would break them as surely).
PUBLIC_ATTRIBUTES = (
    "pubsub",
    "pubsub_thread",
    "pubsub_channel_name",
    "redis_workers_keys",
    "key",
    "birth_date",
    "worker_ttl",
    "connection",
    "name",
    "log",
)

# The Redis set of every live worker's key (System -> Workers, ``/health/``, the demo's wait).
WORKERS_REGISTRY_KEY: str = worker_registration.REDIS_WORKER_KEYS


def registered_worker_names(connection: Redis) -> set[str]:
    """The names in RQ's worker registry, read before ``Worker.all`` drops the ones whose key
    expired (a worker that died without unregistering is still listed here for a while)."""
    prefix = Worker.redis_worker_namespace_prefix
    return {key.removeprefix(prefix) for key in worker_registration.get_keys(connection=connection)}


# How long stopping a worker waits for RQ's pub/sub thread before closing its connection anyway.
PUBSUB_STOP_WAIT = 1.0

# The doors are mixins put before an RQ worker class (``jobs.worker``); to the type checker they
# are that worker class, so ``super()`` and the worker's attributes type-check. At run time they
# derive from ``object`` and the real worker class comes after them in the MRO.
if TYPE_CHECKING:
    _RegisteredBase = BaseWorker
    _ForkingBase = Worker
else:
    _RegisteredBase = _ForkingBase = object


class RegisteredWorkerDoor(_RegisteredBase):
    """Overrides for every worker class (forking or not): the ledger pass in RQ's maintenance,
    registering again after Redis lost the worker, and a stop that never waits on pub/sub."""

    def ledger_maintenance(self) -> None:
        """Hook: run from RQ's maintenance pass."""

    def run_maintenance_tasks(self) -> None:
        super().run_maintenance_tasks()
        self.ledger_maintenance()

    # -- back in RQ's registry after Redis lost it -----------------------------------------
    def heartbeat(self, timeout: int | None = None, pipeline: Pipeline | None = None) -> None:
        """RQ's heartbeat, plus: if Redis no longer lists this worker (restarted empty), register
        it again, so System -> Workers, GraphQL ``workers`` and ``/health/`` see it within one
        heartbeat (idle: every ``worker_ttl - 15`` s; busy: ``maintain_heartbeats``). RQ 3.0.0
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

    def maintain_heartbeats(self, job: RQJob, execution: Execution) -> None:
        super().maintain_heartbeats(job, execution)  # every job_monitoring_interval while busy
        if not self.connection.sismember(self.redis_workers_keys, self.key):
            self._register_again()

    def register_death(self) -> None:
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
    def unsubscribe(self) -> None:
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


class ForkingWorkerDoor(RegisteredWorkerDoor, _ForkingBase):
    """Overrides for a worker that forks a work horse per job (``rq.Worker``), as hooks."""

    # -- hooks (the ledger's side: ``jobs.worker.JobsWorker``) ------------------------------
    def claim_before_fork(self, job: RQJob) -> None:
        """Hook: in the worker, before the horse is forked."""

    def settle_after_horse(self, job: RQJob, *, how_it_ended: str) -> None:
        """Hook: in the worker, once the horse has exited (however it ended)."""

    def horse_cut_short(self, job: RQJob) -> None:
        """Hook: RQ's own loop ended while the job ran (cold shutdown, an error in RQ)."""

    def horse_killed(self, job: RQJob, ret_val: int) -> None:
        """Hook: RQ found the horse killed; ``settle_after_horse`` follows when
        ``claim_before_fork`` is handing the job over (see ``horse_handed_over``)."""

    def horse_handed_over(self) -> bool:
        """Hook: does ``settle_after_horse`` record this job (not ``horse_killed``)?"""
        return False

    def in_horse(self) -> None:
        """Hook: first thing in the forked horse."""

    @contextlib.contextmanager
    def around_fork(self) -> Iterator[None]:
        """Hook: wraps the fork, in the worker."""
        yield

    # -- RQ's methods ----------------------------------------------------------------------
    def execute_job(self, job: RQJob, queue: Queue) -> Any:
        self.claim_before_fork(job)
        self._horse_status: int | None = None
        try:
            result = super().execute_job(job, queue)  # fork + monitor; the horse never returns
        except BaseException:
            # Cut short (cold shutdown: RQ killed the horse and raised SystemExit; or RQ's own
            # loop failed, its horse perhaps still running).
            self.horse_cut_short(job)
            raise
        self.settle_after_horse(job, how_it_ended=self._how_horse_ended(job))
        return result

    def _how_horse_ended(self, job: RQJob) -> str:
        status = self._horse_status
        if self._stopped_job_id == job.id:
            return "stopped (RQ stop-job command)"
        if status is not None and os.WIFSIGNALED(status):
            return f"killed (signal {os.WTERMSIG(status)})"
        if status is not None:
            return f"ended without reporting (exit status {status})"
        return "ended without reporting"

    def fork_work_horse(self, job: RQJob, queue: Queue) -> None:
        with self.around_fork():
            super().fork_work_horse(job, queue)  # returns in the worker only (the horse exits)

    def main_work_horse(self, job: RQJob, queue: Queue) -> None:
        self.in_horse()
        super().main_work_horse(job, queue)

    def handle_work_horse_killed(self, job: RQJob, retpid: int, ret_val: int, rusage: Any) -> None:
        super().handle_work_horse_killed(job, retpid, ret_val, rusage)
        if self.horse_handed_over():
            self._horse_status = ret_val  # execute_job settles it, knowing how it ended
            return
        self.horse_killed(job, ret_val)


def stop_was_asked(worker: BaseWorker) -> bool:
    """Did ``worker``'s loop end because it was asked to stop (not on a Redis error)? A SIGINT /
    SIGTERM while idle ends RQ's loop without ``_stop_requested``: the shutdown date says."""
    return bool(worker._stop_requested or worker._shutdown_requested_date is not None)


def with_execution_timer(worker_class: type[BaseWorker]) -> type[BaseWorker]:
    """For benchmarks: ``worker_class`` noting when its first job started (``first``) and its
    last ended (``last``), in ``time.perf_counter`` seconds, around RQ's ``execute_job``."""

    # The base is chosen at run time: mypy cannot check a class derived from a variable.
    class Timed(worker_class):  # type: ignore[misc, valid-type]
        first: float | None = None
        last: float | None = None

        def execute_job(self, job: RQJob, queue: Queue) -> Any:
            if Timed.first is None:
                Timed.first = time.perf_counter()
            try:
                return super().execute_job(job, queue)
            finally:
                Timed.last = time.perf_counter()

    return Timed


def overridden_methods() -> dict[str, Callable]:
    """RQ's own methods that the door overrides (for the contract test)."""
    return {name: getattr(Worker, name) for name in OVERRIDDEN}
