"""The scheduler's heartbeat (not a job's): what the loop writes to Redis each cycle, for
``/health/`` and the admin to read. Job heartbeats are the runner's business.

Two keys with a TTL: the time of the last cycle, and who holds the active lock ("host pid").
A scheduler that stopped beating disappears on its own; an emptied Redis gets the keys back
within one cycle.
"""

from __future__ import annotations

import logging
import time

from redis import Redis
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

HEARTBEAT_KEY = "jobs:scheduler:heartbeat"
# Long enough to tell "old" from "gone"; /health/ judges the age against its own threshold.
HEARTBEAT_TTL = 3600
# Who holds the loop's lock, for people ("host pid"); written with the lock's TTL.
ACTIVE_KEY = "jobs:scheduler:active"


def write_heartbeat(connection: Redis) -> None:
    """Record that a scheduler loop is alive now. Never raises for Redis trouble."""
    try:
        connection.set(HEARTBEAT_KEY, f"{time.time():.3f}", ex=HEARTBEAT_TTL)
    except RedisError:
        logger.debug("Could not write the scheduler heartbeat", exc_info=True)


def heartbeat_age(connection: Redis) -> float | None:
    """Seconds since a scheduler loop last beat; None if none ever did (or it expired)."""
    value = connection.get(HEARTBEAT_KEY)
    if value is None:
        return None
    return max(0.0, time.time() - float(value))
