"""The ledger pass: relay + reconcile under one Redis lock, and who runs it when.

``relay_and_reconcile`` holds ``RECONCILE_LOCK_KEY`` for the pass (in Redis, so across
machines; it expires by itself if its holder dies mid-pass). It runs every few seconds in one
live worker (:class:`LedgerWatch`, a thread of each worker process; one worker of many takes
each turn, ``RECONCILE_DUE_KEY`` set with NX), from RQ's maintenance pass, every minute from
the scheduler (``relay-and-reconcile``) and from ``manage.py jobs relay``.
"""

from __future__ import annotations

import contextlib
import logging
import threading

from django.db import close_old_connections
from redis import Redis
from redis.exceptions import RedisError
from rq.worker import BaseWorker

from jobs import conf
from jobs.alerts.due import evaluate_alerts_if_due
from jobs.maintenance.reconcile import reconcile
from jobs.maintenance.relay import relay
from jobs.maintenance.rq_view import maintenance_redis
from jobs.pause import sync_paused

logger = logging.getLogger(__name__)

# Held by whoever runs relay + reconcile: the cron entry, a worker's maintenance pass, the
# command. Expires by itself if its holder dies mid-pass.
RECONCILE_LOCK_KEY = "jobs:reconcile-lock"
RECONCILE_LOCK_TTL = 300
# Set for one interval by the worker that does the ledger pass this turn (NX: one of many).
RECONCILE_DUE_KEY = "jobs:reconcile-due"


def relay_and_reconcile(*, lock_timeout: float = 0) -> dict:
    """The every-minute maintenance: both passes under the ledger lock, never raising (it runs
    unattended).

    Waits up to ``lock_timeout`` seconds for a pass running elsewhere; if the lock stays taken,
    does nothing and says so under ``"skipped"``.
    """
    out: dict = {"relayed": 0, "reconciled": 0}
    try:
        lock = maintenance_redis().lock(
            RECONCILE_LOCK_KEY, timeout=RECONCILE_LOCK_TTL, thread_local=False
        )
        acquired = lock.acquire(
            blocking=lock_timeout > 0, blocking_timeout=lock_timeout if lock_timeout > 0 else None
        )
    except RedisError as exc:
        logger.warning("Relay/reconcile not run: Redis unreachable (%s)", exc)
        return {**out, "skipped": f"Redis unreachable: {exc}"}
    if not acquired:
        return {
            **out,
            "skipped": f"another relay/reconcile pass is running (lock {RECONCILE_LOCK_KEY})",
        }
    try:
        sync_paused()  # an emptied or restored Redis gets the table's pauses before any relay
        try:
            out["reconciled"] = len(reconcile())
        except Exception:
            logger.exception("Reconcile failed")
        try:
            out["relayed"] = relay()
        except Exception:
            logger.exception("Relay failed")
        # The alert rules, at most once per JOBS_ALERTS_INTERVAL across all callers (never
        # raises).
        evaluate_alerts_if_due(maintenance_redis())
    finally:
        # Only our own lock (the token says so); it may have expired on a very long pass.
        with contextlib.suppress(Exception):
            lock.release()
    return out


def ledger_pass_if_due(
    connection: Redis, worker_name: str, log: logging.Logger = logger
) -> dict | None:
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

    def __init__(self, worker: BaseWorker) -> None:
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
