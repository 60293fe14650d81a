"""The scheduler as people see it: when its heartbeat was last seen, whether that is stale,
and which instance holds the active lock. Read by System → Jobs, System → Schedules, GraphQL.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

import django_rq
from django.conf import settings
from django.utils import timezone
from redis.exceptions import RedisError

from jobs.scheduling.scheduler_heartbeat import ACTIVE_KEY, heartbeat_age

logger = logging.getLogger(__name__)

DEFAULT_MAX_AGE = 60


@dataclass(frozen=True)
class SchedulerStatus:
    reachable: bool  # False: Redis could not be asked
    last_seen: datetime | None  # the active scheduler's last heartbeat
    age_seconds: float | None
    stale: bool  # no heartbeat, or older than JOBS_HEALTH_SCHEDULER_MAX_AGE
    active: str | None  # "host pid" of the instance holding the lock
    max_age: int

    @property
    def alive(self) -> bool | None:
        return None if not self.reachable else not self.stale


def max_age() -> int:
    """Seconds after which a heartbeat counts as stale (``JOBS_HEALTH_SCHEDULER_MAX_AGE``)."""
    return int(getattr(settings, "JOBS_HEALTH_SCHEDULER_MAX_AGE", DEFAULT_MAX_AGE))


def scheduler_status() -> SchedulerStatus:
    """The scheduler's heartbeat and lock holder as read from Redis now."""
    limit = max_age()
    try:
        conn = django_rq.get_connection("default")
        age = heartbeat_age(conn)
        active = conn.get(ACTIVE_KEY)
    except (RedisError, OSError):
        logger.warning("Could not ask Redis about the scheduler", exc_info=True)
        return SchedulerStatus(False, None, None, True, None, limit)
    seen = None if age is None else timezone.now() - timedelta(seconds=age)
    return SchedulerStatus(
        reachable=True,
        last_seen=seen,
        age_seconds=age,
        stale=age is None or age > limit,
        active=active.decode() if isinstance(active, bytes) else active,
        max_age=limit,
    )
