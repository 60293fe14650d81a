"""Paused queues: kept in the database (``QueuePause``: who, when), mirrored to Redis for speed.

RQ 3.0 can only suspend whole workers (``rq suspend``), not one queue, so the ledger does it:
while a queue is paused, ``dispatch`` sends none of its rows to RQ and the runner hands back
(undispatched, still pending) any row of it that was already in RQ. Resuming dispatches them.

The table is the truth; the dispatcher and the workers read a Redis set on **each queue's own
connection** (``RQ_QUEUES`` may give a queue a Redis of its own): one round trip per job. The set
always holds ``SYNCED`` besides the paused names, so a Redis that came back empty (restarted
without persistence, flushed) is noticed on the next read and written again from the table
before it is believed. The ledger pass re-writes every queue's set too (a Redis restored from
an old snapshot). A write reads the table after it wrote and writes again if the table moved
meanwhile, so a pause or resume racing a re-sync is never lost.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from django.db import transaction
from redis import Redis

from jobs import conf
from jobs.models import QueuePause
from jobs.redis_client import by_server, redis_for

if TYPE_CHECKING:
    from django.contrib.auth.base_user import AbstractBaseUser

logger = logging.getLogger(__name__)

PAUSED_QUEUES_KEY = "jobs:paused-queues"
# A member that is no queue name (RQ queue names cannot hold spaces): "this set was written
# from the table". Its absence means Redis lost the set.
SYNCED = " synced"
# Re-reads of the table after a write before leaving the rest to the next ledger pass.
_SYNC_ROUNDS = 3


def pauses() -> dict[str, QueuePause]:
    """Every paused queue's pause (who, when), by queue name. One query."""
    return {p.queue: p for p in QueuePause.objects.select_related("paused_by")}


def paused_queues() -> set[str]:
    """Every paused queue's name, from the table."""
    return set(QueuePause.objects.values_list("queue", flat=True))


def queue_paused(name: str) -> bool:
    """True if ``name`` is paused (the table's answer)."""
    return QueuePause.objects.filter(queue=name).exists()


def paused_on(connection: Redis, name: str) -> bool:
    """Is ``name`` paused? Asked on ``connection``, the queue's own Redis (dispatch: its RQ
    queue's; the runner: its RQ job's), in one round trip. A set without ``SYNCED`` (Redis lost
    it) is written again from the table first. Raises Redis errors."""
    with connection.pipeline(transaction=False) as pipe:
        pipe.sismember(PAUSED_QUEUES_KEY, name)
        pipe.sismember(PAUSED_QUEUES_KEY, SYNCED)
        paused, synced = pipe.execute()
    if synced:
        return bool(paused)
    logger.warning("Redis lost the paused queues; writing them again from the table")
    return name in _write(connection)


def set_paused(name: str, paused: bool, *, user: AbstractBaseUser | None = None) -> bool:
    """Pause or resume ``name`` in the table and on its Redis; True if it changed.

    Raises Redis errors, and then nothing is stored (the caller reports them).
    """
    with transaction.atomic():
        if paused:
            _, changed = QueuePause.objects.get_or_create(queue=name, defaults={"paused_by": user})
        else:
            changed = bool(QueuePause.objects.filter(queue=name).delete()[0])
        _write(redis_for(name))  # inside: a Redis error rolls the row back
        # Again once committed: a re-sync elsewhere may have read the table before this did.
        transaction.on_commit(lambda: _write_quietly(redis_for(name)))
    return changed


def sync_paused() -> int:
    """Write the table into every job queue's Redis (once per server). Returns how many
    servers were written; never raises (the ledger pass runs it unattended)."""
    servers = by_server(conf.job_queues()).values()
    return sum(1 for names in servers if _write_quietly(redis_for(names[0])))


def _write(connection) -> set[str]:
    """Replace the set on ``connection`` with the table's paused names (and ``SYNCED``); read
    the table again and repeat if it changed meanwhile. Returns the names last written."""
    names = paused_queues()
    for _ in range(_SYNC_ROUNDS):
        with connection.pipeline(transaction=True) as pipe:
            pipe.delete(PAUSED_QUEUES_KEY)
            pipe.sadd(PAUSED_QUEUES_KEY, SYNCED, *names)
            pipe.execute()
        again = paused_queues()
        if again == names:
            break
        names = again
    return names


def _write_quietly(connection) -> bool:
    try:
        _write(connection)
    except Exception:
        logger.warning("Could not write the paused queues to Redis", exc_info=True)
        return False
    return True
