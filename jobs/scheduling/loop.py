"""The scheduler process's loop: one active instance across machines, never dying of Redis.

Each cycle the instance holding the lock renews it, re-syncs rq-scheduler from the ``Schedule``
table (a cheap diff, :func:`jobs.scheduling.sync.register_schedules`), moves what is due into
the queues, and writes the heartbeat. Others wait as standbys and try to take the lock each
cycle; the lock (redis-py's ``Lock``, a key with a TTL and an owner token) expires when its
owner stops renewing it, so a standby takes over within the TTL plus one interval.

Redis or database trouble never ends the loop: it logs once when the outage starts and once
when it ends, and retries with a growing pause meanwhile.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import time
from collections.abc import Callable
from types import FrameType

from django.db import DatabaseError, close_old_connections
from redis.exceptions import LockError, RedisError

from jobs.scheduling.scheduler import HeartbeatScheduler
from jobs.scheduling.scheduler_heartbeat import ACTIVE_KEY, write_heartbeat
from jobs.scheduling.sync import register_schedules

logger = logging.getLogger("jobs.scheduler")

LOCK_KEY = "jobs:scheduler:lock"
MAX_BACKOFF = 15.0


class SchedulerLoop:
    def __init__(self, scheduler: HeartbeatScheduler, *, interval: float, lock_ttl: int) -> None:
        self.scheduler = scheduler
        self.connection = scheduler.connection
        self.interval = float(interval)
        self.lock_ttl = int(lock_ttl)
        self.identity = f"{socket.gethostname()} pid {os.getpid()}"
        self.lock = self.connection.lock(
            LOCK_KEY, timeout=self.lock_ttl, blocking=False, thread_local=False
        )
        self.active = False
        self.outage_since: float | None = None
        self.failures = 0
        self.stopping = False

    # -- one cycle ----------------------------------------------------------------------------
    def _hold_lock(self) -> bool:
        """Renew the lock if we hold it, else try to take it. True while we are active."""
        if self.active:
            try:
                self.lock.reacquire()
            except LockError:
                # Expired (a long pause) or gone (Redis emptied): try to take it again below.
                logger.warning("Scheduler lock lost; trying to take it again")
                self.active = False
        if not self.active and self.lock.acquire(blocking=False):
            self.active = True
            logger.info("Active scheduler: %s (lock TTL %ss)", self.identity, self.lock_ttl)
        if self.active:
            self.connection.set(ACTIVE_KEY, self.identity, ex=self.lock_ttl)
        return self.active

    def cycle(self) -> bool:
        """One pass. Returns True if it ran without Redis or database trouble."""
        try:
            close_old_connections()
            if self._hold_lock():
                register_schedules(self.scheduler)
                self.scheduler.enqueue_jobs()
                write_heartbeat(self.connection)
        except (RedisError, OSError, DatabaseError) as exc:
            self.failures += 1
            if self.outage_since is None:
                self.outage_since = time.monotonic()
                logger.error("Scheduler cannot reach Redis or the database (%s); retrying", exc)
            # Still "active" for now: the next cycle's renewal proves it (the token must match).
            return False
        if self.outage_since is not None:
            logger.warning(
                "Scheduler resumed after %.0fs of trouble", time.monotonic() - self.outage_since
            )
            self.outage_since, self.failures = None, 0
        return True

    def pause(self) -> float:
        """Seconds to wait before the next cycle: the interval, longer while in trouble."""
        if self.failures == 0:
            return self.interval
        return min(MAX_BACKOFF, max(1.0, self.interval) * 2 ** min(self.failures - 1, 4))

    # -- the loop -----------------------------------------------------------------------------
    def run(self, *, burst: bool = False, should_stop: Callable[[], bool] | None = None) -> None:
        self._install_signal_handlers()
        try:
            while not self.stopping and not (should_stop and should_stop()):
                started = time.monotonic()
                self.cycle()
                if burst:
                    return
                remaining = self.pause() - (time.monotonic() - started)
                self._sleep(max(0.0, remaining))
        finally:
            self.release()

    def _sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self.stopping and time.monotonic() < deadline:
            time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))

    def release(self) -> None:
        """Give the lock up on a clean stop, so a standby takes over at its next cycle."""
        if not self.active:
            return
        try:
            self.lock.release()
            self.connection.delete(ACTIVE_KEY)
        except (LockError, RedisError):
            logger.debug("Could not release the scheduler lock", exc_info=True)
        self.active = False

    def _install_signal_handlers(self) -> None:
        def stop(signum: int, frame: FrameType | None) -> None:  # noqa: ARG001
            self.stopping = True

        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, stop)
