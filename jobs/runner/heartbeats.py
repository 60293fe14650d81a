"""The JOB heartbeats: one daemon thread per process keeps ``heartbeat_at`` of every job running
in it fresh, so reconcile (``jobs.maintenance``) can tell a slow job from a dead one, and notices
cancels and superseded attempts between a handler's own checks.

(The scheduler's heartbeat is another thing: ``jobs.scheduling.scheduler_heartbeat``.)
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time

from django.db import connections
from django.utils import timezone

from jobs import conf
from jobs.context import JobContext

logger = logging.getLogger(__name__)


class JobHeartbeats(threading.Thread):
    """One daemon thread per process that touches ``heartbeat_at`` of every job running in it
    every ``JOBS_HEARTBEAT_INTERVAL`` seconds, and notices cancels.

    One long-lived thread rather than one per job: starting and joining a thread per job cost
    about as much as the job's own ledger writes (a worker running jobs in-process reuses it;
    a forked work horse starts its own). Several jobs can run at once in one process (a bulk
    parent running a child in place), so it beats for a set of them.
    """

    _instance: JobHeartbeats | None = None
    _instance_lock = threading.Lock()

    def __init__(self) -> None:
        super().__init__(name="job-heartbeats", daemon=True)
        self.pid = os.getpid()
        self.due: dict[JobContext, float] = {}
        self.changed = threading.Condition()
        self.wake_at = 0.0  # when the thread's current wait ends (0: it is not waiting)

    @classmethod
    def get(cls) -> JobHeartbeats:
        with cls._instance_lock:
            # A forked child inherits the object but not the thread: start its own.
            if cls._instance is None or cls._instance.pid != os.getpid():
                cls._instance = cls()
                cls._instance.start()
            return cls._instance

    def watch(self, ctx: JobContext) -> None:
        with self.changed:
            due = self.due[ctx] = time.monotonic() + conf.heartbeat_interval()
            # Wake the thread only if it would sleep past this job's first beat: waking it for
            # every job (it then only goes back to sleep) cost a thread switch per job.
            if due < self.wake_at:
                self.changed.notify()

    def unwatch(self, ctx: JobContext) -> None:
        with self.changed:
            self.due.pop(ctx, None)

    def run(self) -> None:
        while True:
            with self.changed:
                now = time.monotonic()
                beat = [ctx for ctx, at in self.due.items() if at <= now]
                for ctx in beat:
                    self.due[ctx] = now + conf.heartbeat_interval()
                if not beat:
                    # Idle, it wakes every interval: a job watched meanwhile is due no sooner.
                    self.wake_at = min(self.due.values(), default=now + conf.heartbeat_interval())
                    self.changed.wait(timeout=max(0.01, self.wake_at - now))
                    self.wake_at = 0.0
                    continue
            for ctx in beat:
                self._beat(ctx)
            if not self.due:
                connections.close_all()  # idle: do not hold this thread's connection

    def _beat(self, ctx: JobContext) -> None:
        try:
            # One query per beat: the UPDATE skips a row asked to cancel, and only then is the
            # flag read (once), so 100 running jobs cost 100 UPDATEs per interval, not 200.
            # Only this attempt's row: an old attempt's copy must not keep a new one alive.
            rows = ctx.current_attempt()
            if ctx._cancel:
                touched = rows.update(heartbeat_at=timezone.now())
            else:
                touched = rows.filter(cancel_requested=False).update(heartbeat_at=timezone.now())
                if not touched and rows.filter(cancel_requested=True).exists():
                    ctx._mark_cancel()
                    touched = rows.update(heartbeat_at=timezone.now())
        except Exception:
            logger.warning("Heartbeat for job %s failed", ctx.job.pk, exc_info=True)
            connections.close_all()
            return
        if not touched:
            self._superseded(ctx)

    def _superseded(self, ctx: JobContext) -> None:
        """This attempt is no longer the row's current one: stop beating for it, and stop it."""
        with self.changed:
            if self.due.pop(ctx, None) is None:
                return  # the handler already returned (and its result may be recorded): done
        ctx._mark_superseded()  # its next set_progress / check_cancelled raises
        if _in_work_horse:
            # A forked work horse runs one job: whatever it does next would run the job twice,
            # and a handler that never reports progress would go on. Its worker sees the horse
            # killed and records nothing (its write is conditional on this old attempt).
            logger.warning("Job %s: ending this work horse (attempt moved on)", ctx.job.pk)
            os.kill(os.getpid(), signal.SIGKILL)


# Set in a forked work horse (``jobs.worker.JobsWorker.in_horse``): one job, its own process,
# so a superseded attempt's horse may end itself.
_in_work_horse = False


def mark_work_horse() -> None:
    """Called first thing in a forked work horse (see ``_in_work_horse``)."""
    global _in_work_horse
    _in_work_horse = True
