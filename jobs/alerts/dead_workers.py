"""Which workers died recently: RQ's worker registry plus the ledger's liveness rule.

RQ forgets a dead worker by itself (its key expires ``worker_ttl + 60`` s after the last
heartbeat, and ``Worker.all`` drops keys that are gone), so a death seen once is remembered in a
Redis sorted set (name -> when first seen dead) for the rule's window: the alert stays firing
for that window and resolves after it, instead of resolving the moment RQ tidies up.

A worker that stopped cleanly unregisters itself (``register_death``): never counted.
"""

from __future__ import annotations

import contextlib
from datetime import datetime

from rq.worker import Worker

from jobs import conf
from jobs.liveness import WorkerSeen, worker_death
from jobs.models import Job, JobState
from jobs.redis_client import by_server, redis_for
from jobs.rq_compat import registered_worker_names

DEAD_WORKERS_KEY = "jobs:alerts:dead-workers"
# An idle worker heartbeats every ~20 s (jobs.worker.WORKER_TTL - 15): twice the liveness
# limit leaves no room for a false alarm on a worker that is merely between two beats.
SILENCE_FACTOR = 2


def _silent_or_vanished(conn, now: datetime) -> tuple[list[str], WorkerSeen]:
    limit = conf.worker_silent_after() * SILENCE_FACTOR
    # The registry's members first: Worker.all() removes the ones whose key expired.
    listed = registered_worker_names(conn)
    seen = WorkerSeen({w.name: w.last_heartbeat for w in Worker.all(connection=conn)})
    dead = [name for name in listed if name not in seen.heartbeats]
    for name in seen.heartbeats:
        silent = seen.silent_for(name, now=now)
        if silent is not None and silent > limit:
            dead.append(name)
    return dead, seen


def dead_worker_names(*, window_seconds: int, now: datetime) -> list[str]:
    """Workers seen dead within the last ``window_seconds`` (recorded as they are seen)."""
    found: list[str] = []
    heartbeats: dict = {}
    conn = None
    for names in by_server(conf.job_queues()).values():
        conn = redis_for(names[0])
        dead, seen = _silent_or_vanished(conn, now)
        found += dead
        heartbeats.update(seen.heartbeats)
    # The ledger's rule: a running row whose worker and row both went silent (reconcile
    # settles it within seconds; seen here if this evaluation comes first).
    running = Job.objects.filter(state=JobState.RUNNING).only(
        "pk", "state", "worker_name", "rq_job_id", "heartbeat_at", "started_at", "created_at"
    )
    all_seen = WorkerSeen(heartbeats)
    found += [r.worker_name for r in running if worker_death(r, all_seen, now=now)]
    if conn is None:
        return []
    stamp = now.timestamp()
    with conn.pipeline() as pipe:
        if found:
            pipe.zadd(DEAD_WORKERS_KEY, dict.fromkeys(found, stamp), nx=True)
        pipe.zremrangebyscore(DEAD_WORKERS_KEY, "-inf", stamp - window_seconds)
        pipe.zrangebyscore(DEAD_WORKERS_KEY, stamp - window_seconds, "+inf")
        pipe.expire(DEAD_WORKERS_KEY, max(window_seconds, 60) * 2)
        recent = pipe.execute()[-2]
    return sorted(n.decode() if isinstance(n, bytes) else n for n in recent)


def forget_dead_workers() -> None:
    """Tests and operators: start counting afresh."""
    for names in by_server(conf.job_queues()).values():
        with contextlib.suppress(Exception):
            redis_for(names[0]).delete(DEAD_WORKERS_KEY)
