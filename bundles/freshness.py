"""How far behind the bundles are, and what the last consistency check found (reads only).

**Staleness**: the age of the oldest component change not yet applied to its bundles, per queue
of the path a change takes — its fan-out waits or runs on ``bundle-bulk-operation``, then the
recompute batches it opened on ``bundle-recompute``. A change is applied once the batch holding
its bundles completes, so the open work is every fan-out and recompute batch that is pending,
retrying or running:

- an open fan-out holds changes since its ``created_at`` (the first change it absorbed:
  later ones merge into the same row);
- an open batch holds changes since its fan-out's ``created_at`` (a batch is opened by a
  fan-out and listed under it; a batch with no parent, a feed's, since its own).

0 when nothing is open. One aggregate query on the (state, kind) index: the open rows are
few next to the ledger.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Min, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from bundles.kinds import Kind
from bundles.models import Bundle
from jobs.models import ACTIVE_STATES, Job, JobState
from jobs.registry import get_kind

# The kinds that carry component changes to bundles, in the order a change takes them.
CHANGE_PATH = (Kind.FANOUT, Kind.RECOMPUTE_BATCH)


def change_path_queues() -> list[str]:
    """The queues of the change path, in order (``bundle-bulk-operation``, ``bundle-recompute``)."""
    queues: list[str] = []
    for kind in CHANGE_PATH:
        queue = get_kind(kind).queue
        if queue not in queues:
            queues.append(queue)
    return queues


def oldest_unapplied_change(*, now: datetime | None = None) -> dict[str, datetime | None]:
    """Per queue of the change path: when its oldest not-yet-applied change happened."""
    oldest: dict[str, datetime | None] = dict.fromkeys(change_path_queues())
    # One aggregate over the open rows of both kinds (the strip, /metrics and /health/ ask).
    found = Job.objects.filter(kind__in=CHANGE_PATH, state__in=ACTIVE_STATES).aggregate(
        fanouts=Min("created_at", filter=Q(kind=Kind.FANOUT)),
        batches=Min(
            Coalesce("parent__created_at", "created_at"), filter=Q(kind=Kind.RECOMPUTE_BATCH)
        ),
    )
    fanouts, batches = found["fanouts"], found["batches"]
    for kind, since in ((Kind.FANOUT, fanouts), (Kind.RECOMPUTE_BATCH, batches)):
        queue = get_kind(kind).queue
        if since is not None and (oldest[queue] is None or since < oldest[queue]):
            oldest[queue] = since
    return oldest


def staleness_by_queue(*, now: datetime | None = None) -> dict[str, float]:
    """Seconds since the oldest change not yet applied, per queue of the path (0 when none)."""
    now = now or timezone.now()
    return {
        queue: max(0.0, (now - since).total_seconds()) if since else 0.0
        for queue, since in oldest_unapplied_change(now=now).items()
    }


def staleness_seconds(*, now: datetime | None = None) -> float:
    """The bundles' staleness as one figure: the oldest change on any queue of the path."""
    return max(staleness_by_queue(now=now).values(), default=0.0)


@dataclass(frozen=True)
class CheckResults:
    """What the newest completed consistency check reported (None: no check has completed)."""

    checked: int
    broken: int
    fixed: int
    settled_at: datetime


def broken_bundles() -> int:
    return Bundle.objects.filter(status=Bundle.Status.BROKEN).count()


def last_check_results() -> CheckResults | None:
    """The counts of the newest completed ``consistency_check`` job (the nightly one's)."""
    row = (
        Job.objects.filter(
            kind=Kind.CONSISTENCY_CHECK, state=JobState.COMPLETED, settled_at__isnull=False
        )
        .order_by("-settled_at")
        .values_list("result", "settled_at")
        .first()
    )
    if row is None:
        return None
    result, settled_at = row
    assert settled_at is not None  # filtered above
    result = result if isinstance(result, dict) else {}
    return CheckResults(
        checked=int(result.get("checked") or 0),
        broken=int(result.get("broken") or 0),
        fixed=int(result.get("fixed") or 0),
        settled_at=settled_at,
    )
