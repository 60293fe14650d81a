"""The one runner every handler goes through, in a worker (``perform``) or inline (``run_inline``).

It claims the ledger row (skipping cancelled, settled or duplicate deliveries), counts the
attempt, gives the handler a :class:`jobs.context.JobContext` for progress and cancellation,
then records the result, or the error with its traceback, and schedules the next attempt with
the kind's backoff. One module per step:

* ``claim``: mark the row running for this attempt, or say why not;
* ``heartbeats``: the JOB heartbeats (a thread keeps ``heartbeat_at`` fresh, so ``reconcile``
  can tell a slow job from a dead one);
* ``attempt``: run the handler, its end as an :class:`AttemptOutcome`, and record it;
* ``settle``: completed, cancelled, failed (retry with backoff, or for good);
* ``handover``: a forking worker claims before the fork and records what its horse reports;
* ``delivery``: paused queues, debounce, connections, before a delivery is claimed;
* ``entrypoint``: ``perform``, what RQ calls; ``inline``: ``run_inline``;
* ``sql``: the claim's and the finish's hand-written statements (the hot path; the figures
  that keep them written out are at its top).

RQ's own classes and private attributes are touched only in ``jobs.rq_compat``.
"""

from jobs.runner.attempt import AttemptOutcome
from jobs.runner.entrypoint import perform
from jobs.runner.handover import (
    SETTLED_BY_WORKER,
    Handover,
    claim_for_horse,
    forget_handover,
    settle_after_horse,
)
from jobs.runner.heartbeats import JobHeartbeats, mark_work_horse
from jobs.runner.inline import run_inline
from jobs.runner.settle import record_failure, record_undelivered

__all__ = [
    "SETTLED_BY_WORKER",
    "AttemptOutcome",
    "Handover",
    "JobHeartbeats",
    "claim_for_horse",
    "forget_handover",
    "mark_work_horse",
    "perform",
    "record_failure",
    "record_undelivered",
    "run_inline",
    "settle_after_horse",
]
