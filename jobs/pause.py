"""Paused queues: one Redis set every web process, dispatcher and worker reads.

RQ 3.0 can only suspend whole workers (``rq suspend``), not one queue, so the ledger does it:
while a queue's name is in the set, ``dispatch`` sends none of its rows to RQ and the runner
hands back (undispatched, still pending) any row of it that was already in RQ. Resuming
dispatches them. The set lives in Redis, so a pause holds across every worker and machine.
"""

from __future__ import annotations

import logging

from jobs import conf
from jobs.redis_client import redis_for

logger = logging.getLogger(__name__)

PAUSED_QUEUES_KEY = "jobs:paused-queues"


def _redis():
    return redis_for(conf.job_queues()[0])


def queue_paused(name: str) -> bool:
    """True if ``name`` is paused. False when Redis cannot be asked (nothing can run then)."""
    try:
        return bool(_redis().sismember(PAUSED_QUEUES_KEY, name))
    except Exception:
        logger.warning("Could not ask Redis whether queue %s is paused", name, exc_info=True)
        return False


def paused_on(connection, name: str) -> bool:
    """``queue_paused`` on a connection the caller already holds (dispatch: its queue's own,
    so a Redis that does not answer costs one timeout, not two). Raises Redis errors."""
    return bool(connection.sismember(PAUSED_QUEUES_KEY, name))


def paused_queues() -> set[str] | None:
    """Every paused queue's name; None when Redis cannot be asked."""
    try:
        return {
            m.decode() if isinstance(m, bytes) else m for m in _redis().smembers(PAUSED_QUEUES_KEY)
        }
    except Exception:
        logger.warning("Could not list paused queues", exc_info=True)
        return None


def set_paused(name: str, paused: bool) -> bool:
    """Add or remove the flag; True if it changed. Raises Redis errors (the caller reports them)."""
    conn = _redis()
    changed = conn.sadd(PAUSED_QUEUES_KEY, name) if paused else conn.srem(PAUSED_QUEUES_KEY, name)
    return bool(changed)
