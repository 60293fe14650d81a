"""Per queue: the job counts (live states, settled in the last 24 h) and the queue's pause."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

from django.db.models import Count
from django.utils import timezone

from jobs import conf
from jobs.models import Job, JobState, QueuePause
from jobs.rollup import settled_counts

WAITING_STATES = (JobState.PENDING, JobState.RETRYING)


def queue_names() -> list[str]:
    """The job queues, in the order the settings declare them."""
    return conf.job_queues()


def queue_counts(
    *, now: datetime | None = None, settled: Counter | None = None
) -> dict[str, dict[str, int]]:
    """Per queue: waiting, running, failed, completed_24h.

    One grouped query answered from the (state, queue, created_at) index alone for the live
    states and failed (COUNT(*) so PostgreSQL can scan the index alone); the last 24 h from the
    hourly rollup (``jobs.rollup``: stored closed hours + the open ones counted live), or from
    ``settled`` (:func:`settled_last_24h`) when the caller has it already.
    """
    now = now or timezone.now()
    empty = {"waiting": 0, "running": 0, "failed": 0, "completed_24h": 0}
    out: dict[str, dict[str, int]] = {q: dict(empty) for q in queue_names()}
    live = (
        Job.objects.filter(state__in=(*WAITING_STATES, JobState.RUNNING, JobState.FAILED))
        .order_by()
        .values("queue", "state")
        .annotate(n=Count("*"))
    )
    for row in live:
        counts = out.setdefault(row["queue"], dict(empty))
        if row["state"] in WAITING_STATES:
            counts["waiting"] += row["n"]
        elif row["state"] == JobState.RUNNING:
            counts["running"] += row["n"]
        else:
            counts["failed"] += row["n"]
    if settled is None:
        settled = settled_last_24h(now=now)
    for (_hour, queue, _kind, state), n in settled.items():
        if state == JobState.COMPLETED:
            out.setdefault(queue, dict(empty))["completed_24h"] += n
    return out


def settled_last_24h(*, now: datetime | None = None) -> Counter:
    """Jobs settled in the last 24 hours by (hour, queue, kind, state), from the rollup."""
    now = now or timezone.now()
    return settled_counts(since=now - timedelta(hours=24), now=now)


def pause_author(pause: QueuePause | None) -> str:
    """Who paused a queue, for display: a user name, or "" (the system, a deleted user)."""
    user = getattr(pause, "paused_by", None)
    return user.get_username() if user is not None else ""
