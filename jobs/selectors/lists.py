"""Ledger rows by filter (queue, state, kind, trigger, target, search, ids, parent), newest
first; the jobs linked to one object."""

from __future__ import annotations

from django.db.models import Exists, OuterRef, QuerySet

from jobs.models import Job, JobTarget
from jobs.selectors.ids import JobId, parse_job_id
from jobs.selectors.search import job_search_q


def _linked_to(*, target_type: str | None, target_id: str | int | None) -> Exists:
    """Jobs with a link row to the target (or to any target of the type): an index range on
    (target_type, target_id, job) per job, never a scan of the link table."""
    links = JobTarget.objects.filter(job=OuterRef("pk"))
    if target_type:
        links = links.filter(target_type=target_type)
    if target_id is not None and target_id != "":
        links = links.filter(target_id=str(target_id))
    return Exists(links)


def job_list(
    *,
    queue: str | None = None,
    state: str | list[str] | None = None,
    kind: str | None = None,
    trigger: str | None = None,
    target_type: str | None = None,
    target_id: str | None = None,
    search: str | None = None,
    ids: list | None = None,
    parent_id: JobId | None = None,
) -> QuerySet[Job]:
    """Ledger rows matching every given filter, newest first."""
    qs = Job.objects.select_related("requested_by").order_by("-created_at", "-pk")
    if queue:
        qs = qs.filter(queue=queue)
    if state:
        qs = qs.filter(state__in=[state] if isinstance(state, str) else list(state))
    if kind:
        qs = qs.filter(kind=kind)
    if trigger:
        qs = qs.filter(trigger=trigger)
    qs = filter_by_target(qs, target_type=target_type, target_id=target_id)
    if ids is not None:
        qs = qs.filter(pk__in=list(ids))
    if parent_id is not None:
        qs = qs.filter(parent_id=parse_job_id(parent_id))
    if search:
        qs = qs.filter(job_search_q(term=search))
    return qs


def filter_by_target(
    qs: QuerySet[Job], *, target_type: str | None, target_id: str | None
) -> QuerySet[Job]:
    """Jobs linked to one target (type and id), or whose main target is of a type."""
    if target_id is not None and target_id != "":
        return qs.filter(_linked_to(target_type=target_type, target_id=target_id))
    if target_type:
        return qs.filter(target_type=target_type)
    return qs


def jobs_for_target(*, target_type: str, target_id: str | int, limit: int = 10) -> list[Job]:
    """The most recent jobs linked to one object (a bundle's page lists these)."""
    return list(
        Job.objects.filter(_linked_to(target_type=target_type, target_id=target_id)).order_by(
            "-created_at"
        )[:limit]
    )
