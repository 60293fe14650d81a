"""The scheduler's heartbeat: the loop writes the time each cycle, ``/health/`` reads its age.

Kept in Redis under one key with a TTL, so a scheduler that stopped beating disappears on its
own; an emptied Redis gets the key back within one cycle.
"""

from __future__ import annotations

import logging
import time

from redis.exceptions import RedisError
from rq_scheduler import Scheduler

logger = logging.getLogger(__name__)

HEARTBEAT_KEY = "jobs:scheduler:heartbeat"
# Long enough to tell "old" from "gone"; /health/ judges the age against its own threshold.
HEARTBEAT_TTL = 3600


def write_heartbeat(connection) -> None:
    """Record that a scheduler loop is alive now. Never raises for Redis trouble."""
    try:
        connection.set(HEARTBEAT_KEY, f"{time.time():.3f}", ex=HEARTBEAT_TTL)
    except RedisError:
        logger.debug("Could not write the scheduler heartbeat", exc_info=True)


def heartbeat_age(connection) -> float | None:
    """Seconds since a scheduler loop last beat; None if none ever did (or it expired)."""
    value = connection.get(HEARTBEAT_KEY)
    if value is None:
        return None
    return max(0.0, time.time() - float(value))


class HeartbeatScheduler(Scheduler):
    """rq-scheduler's Scheduler, whose loop also writes our heartbeat every cycle."""

    def heartbeat(self) -> None:
        super().heartbeat()
        write_heartbeat(self.connection)
