"""Reads of error groups: failed jobs grouped by ``error_fingerprint``.

Every query here is answered by the partial index ``job_failed_fingerprint_idx``
(fingerprint, kind, settled_at WHERE state = 'failed'): the groups are one grouped index-only
read over the failed rows, never the ledger; a group's sample is one row found by an index
range in the order of that index, all the page's samples in one query.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Count, Max, Min, Q, QuerySet

from jobs.models import Job, JobState

# Groups one page lists (the biggest first).
DEFAULT_GROUPS = 50


@dataclass
class ErrorGroup:
    """One group of failed jobs that share a fingerprint."""

    fingerprint: str
    count: int
    first_seen: datetime | None
    last_seen: datetime | None
    # Affected kinds with their counts, the most affected first.
    kinds: list[tuple[str, int]] = field(default_factory=list)
    sample_job_id: uuid.UUID | None = None
    sample_message: str = ""
    sample_traceback: str = ""

    @property
    def exception(self) -> str:
        """The sample's exception class ("ValueError"), for titles."""
        return self.sample_message.split(":", 1)[0] if self.sample_message else ""


def failed_in_group(*, fingerprint: str) -> QuerySet[Job]:
    """The failed jobs of one group (an index range of the partial index)."""
    return Job.objects.filter(state=JobState.FAILED, error_fingerprint=fingerprint)


def error_groups(*, limit: int = DEFAULT_GROUPS, with_samples: bool = True) -> list[ErrorGroup]:
    """The groups of failed jobs, the biggest first (ties: the most recent first)."""
    rows = (
        Job.objects.filter(state=JobState.FAILED)
        .exclude(error_fingerprint="")
        .order_by()
        .values_list("error_fingerprint", "kind")
        .annotate(n=Count("*"), first=Min("settled_at"), last=Max("settled_at"))
    )
    groups: dict[str, ErrorGroup] = {}
    newest_kind: dict[str, tuple[datetime | None, str]] = {}
    for fp, kind, n, first, last in rows:
        group = groups.setdefault(fp, ErrorGroup(fp, 0, first, last))
        group.count += n
        group.kinds.append((kind, n))
        if first and (group.first_seen is None or first < group.first_seen):
            group.first_seen = first
        if last and (group.last_seen is None or last > group.last_seen):
            group.last_seen = last
        seen = newest_kind.get(fp)
        if seen is None or (last and (seen[0] is None or last > seen[0])):
            newest_kind[fp] = (last, kind)  # where the group's newest failure is
    chosen = sorted(
        groups.values(),
        key=lambda g: (-g.count, -(g.last_seen.timestamp() if g.last_seen else 0)),
    )[:limit]
    for group in chosen:
        group.kinds.sort(key=lambda kn: (-kn[1], kn[0]))
    if with_samples:
        _add_samples(chosen, newest=newest_kind)
    return chosen


def error_group(*, fingerprint: str) -> ErrorGroup | None:
    """One group with its sample, or None when no failed job has that fingerprint."""
    rows = (
        failed_in_group(fingerprint=fingerprint)
        .order_by()
        .values_list("kind")
        .annotate(n=Count("*"), first=Min("settled_at"), last=Max("settled_at"))
    )
    group: ErrorGroup | None = None
    newest: tuple[datetime | None, str] = (None, "")
    for kind, n, first, last in rows:
        group = group or ErrorGroup(fingerprint, 0, first, last)
        group.count += n
        group.kinds.append((kind, n))
        group.first_seen = min(filter(None, (group.first_seen, first)), default=None)
        group.last_seen = max(filter(None, (group.last_seen, last)), default=None)
        if newest[0] is None or (last and last > newest[0]):
            newest = (last, kind)
    if group is not None:
        group.kinds.sort(key=lambda kn: (-kn[1], kn[0]))
        _add_sample(group, kind=newest[1])
    return group


def error_group_job_ids(*, fingerprint: str, limit: int) -> list[uuid.UUID]:
    """Up to ``limit`` ids of the group's failed jobs, oldest failure first."""
    return list(
        failed_in_group(fingerprint=fingerprint)
        .order_by("settled_at", "pk")
        .values_list("pk", flat=True)[:limit]
    )


def _add_samples(
    groups: list[ErrorGroup], *, newest: dict[str, tuple[datetime | None, str]]
) -> None:
    """Every group's newest failure in one query: the grouped read already knows its kind and
    time, so each sample is one point of the index (OR'd probes, not a query per group)."""
    wanted = Q(pk__in=[])
    for group in groups:
        last, kind = newest[group.fingerprint]
        if last is not None:
            wanted |= Q(error_fingerprint=group.fingerprint, kind=kind, settled_at=last)
    rows = Job.objects.filter(wanted, state=JobState.FAILED).values_list(
        "error_fingerprint", "pk", "errors"
    )
    by_fingerprint = {fp: (pk, errors) for fp, pk, errors in rows}
    for group in groups:
        if group.fingerprint in by_fingerprint:
            _set_sample(group, *by_fingerprint[group.fingerprint])


def _set_sample(group: ErrorGroup, pk: uuid.UUID, errors: list | None) -> None:
    last = (errors or [{}])[-1] or {}
    group.sample_job_id = pk
    group.sample_message = str(last.get("message", ""))
    group.sample_traceback = str(last.get("traceback", ""))


def _add_sample(group: ErrorGroup, *, kind: str) -> None:
    # The newest failure of the group's newest kind: the index's own order, one row.
    sample = (
        failed_in_group(fingerprint=group.fingerprint)
        .filter(kind=kind)
        .order_by("-settled_at")
        .values_list("pk", "errors")
        .first()
    )
    if sample is not None:
        _set_sample(group, *sample)
