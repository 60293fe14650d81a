"""The RQ worker class for ledger jobs.

On top of ``rq.Worker`` it
* closes Django's DB connections before forking, so a work horse never shares a socket or
  SQLite handle with its parent;
* settles the ledger row at once when a work horse dies (SIGKILL, OOM): RQ calls no job
  callback then, but it does call ``handle_work_horse_killed`` on the worker;
* runs relay + reconcile in its maintenance pass, every minute rather than RQ's ten: one worker
  of many takes the minute's turn (``RECONCILE_DUE_KEY``), and the pass itself holds the same
  Redis lock as the cron entry and the command (``maintenance.relay.relay_and_reconcile``). A whole
  worker that died is found by the others.
"""

from __future__ import annotations

import logging
import os

from django.db import close_old_connections, connections
from rq.worker import SimpleWorker, Worker

from jobs.dispatch import RUNNER_ENTRYPOINT
from jobs.maintenance.relay import relay_and_reconcile
from jobs.models import Job, JobState
from jobs.registry import UnknownJobKind, get_kind
from jobs.runner import record_failure

logger = logging.getLogger(__name__)

MAINTENANCE_INTERVAL = 60
# Short TTL: the worker blocks on the queues for (ttl - 15) s, so maintenance can run that often,
# and a dead worker's key disappears quickly.
WORKER_TTL = 35  # idle heartbeat every 20 s: System → Workers shows a dead one within 25 s
JOB_MONITORING_INTERVAL = 10
# Set for a minute by the worker whose maintenance pass does the ledger pass this minute.
RECONCILE_DUE_KEY = "jobs:reconcile-due"


class _LedgerMixin:
    def run_maintenance_tasks(self):
        super().run_maintenance_tasks()
        # One worker per interval does the ledger pass; the others skip it.
        if self.connection.set(RECONCILE_DUE_KEY, self.name, nx=True, ex=MAINTENANCE_INTERVAL - 5):
            try:
                outcome = relay_and_reconcile()
                if any(outcome.values()):
                    self.log.info("Ledger maintenance: %s", outcome)
            finally:
                close_old_connections()


class JobsWorker(_LedgerMixin, Worker):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("maintenance_interval", MAINTENANCE_INTERVAL)
        kwargs.setdefault("worker_ttl", WORKER_TTL)
        kwargs.setdefault("job_monitoring_interval", JOB_MONITORING_INTERVAL)
        super().__init__(*args, **kwargs)

    def fork_work_horse(self, job, queue):
        connections.close_all()
        super().fork_work_horse(job, queue)

    def handle_work_horse_killed(self, job, retpid, ret_val, rusage):
        super().handle_work_horse_killed(job, retpid, ret_val, rusage)
        try:
            settle_killed_delivery(job, ret_val)
        except Exception:  # reconcile will settle it; never take the worker down
            logger.exception("Could not settle ledger for killed RQ job %s", job.id)
        finally:
            close_old_connections()


class JobsSimpleWorker(_LedgerMixin, SimpleWorker):
    """Runs jobs in the worker process itself (tests, benchmarks, debugging)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("maintenance_interval", MAINTENANCE_INTERVAL)
        kwargs.setdefault("worker_ttl", WORKER_TTL)
        super().__init__(*args, **kwargs)


def settle_killed_delivery(rq_job, ret_val) -> None:
    """Record the killed attempt of the ledger job behind ``rq_job`` (retry or fail)."""
    if rq_job.func_name != RUNNER_ENTRYPOINT or not rq_job.args:
        return
    row = Job.objects.filter(pk=rq_job.args[0], rq_job_id=rq_job.id).first()
    if row is None or row.state != JobState.RUNNING:
        return
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
