"""Ledger reads for the GraphQL job queries: filters, keyset pages, queue counts.

Kept apart from the resolvers so they stay thin; inputs are validated here and refused with
BAD_USER_INPUT naming the allowed values.
"""

from __future__ import annotations

import contextlib
import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Count, Prefetch, Q, QuerySet
from django.utils import timezone

from api.errors import BadUserInput
from api.graphql_utils import clean_text, decode_cursor, encode_cursor, parse_int_id
from jobs.models import Job, JobState
from jobs.registry import all_kinds


def queue_names() -> list[str]:
    return list(settings.JOB_QUEUES)


def filtered_jobs(
    *,
    queue: str | None = None,
    state: str | None = None,
    kind: str | None = None,
    bundle_id: str | None = None,
    search: str | None = None,
) -> QuerySet[Job]:
    """Jobs matching the filters (each optional); unknown values → BAD_USER_INPUT."""
    qs = Job.objects.all()
    if queue is not None:
        if queue not in queue_names():
            raise BadUserInput(
                f"Unknown queue {queue!r}: use one of {', '.join(queue_names())}.", field="queue"
            )
        qs = qs.filter(queue=queue)
    if state is not None:
        if state not in JobState.values:
            raise BadUserInput(
                f"Unknown state {state!r}: use one of {', '.join(JobState.values)}.",
                field="state",
            )
        qs = qs.filter(state=state)
    if kind is not None:
        kinds = [k.name for k in all_kinds()]
        if kind not in kinds:
            raise BadUserInput(
                f"Unknown kind {kind!r}: use one of {', '.join(kinds)}.", field="kind"
            )
        qs = qs.filter(kind=kind)
    if bundle_id is not None:
        pk = parse_int_id(bundle_id, field="bundleId")
        qs = qs.filter(target_type="bundle", target_id=str(pk))
    term = clean_text(search, field="search", max_length=200)
    if term:
        qs = qs.filter(_search_q(term))
    return qs


def _search_q(term: str) -> Q:
    """A job matches by its id, kind, target label, reason, or a SKU of its target bundle."""
    from bundles.models import Bundle, BundleComponent

    q = (
        Q(target_label__icontains=term)
        | Q(reason__icontains=term)
        | Q(kind__iexact=term)
        | Q(target_id=term)
    )
    with contextlib.suppress(ValueError):
        q |= Q(pk=uuid.UUID(term))
    # The jobs list filters by SKU too: the bundle whose shell or component has that SKU.
    by_shell = Bundle.objects.filter(shell_variant__sku__iexact=term).values_list("pk", flat=True)
    by_component = BundleComponent.objects.filter(variant__sku__iexact=term).values_list(
        "bundle_id", flat=True
    )
    bundle_ids = [str(i) for i in {*by_shell, *by_component}]
    if bundle_ids:
        q |= Q(target_type="bundle", target_id__in=bundle_ids)
    return q


def with_relations(qs: QuerySet[Job], fields: set[str]) -> QuerySet[Job]:
    """Join or prefetch what the query selects, so a page costs the same at any size."""
    qs = qs.select_related("requested_by", "last_action_by")
    if "parent" in fields:
        qs = qs.select_related("parent")
    if "children" in fields:
        qs = qs.prefetch_related(
            Prefetch(
                "children",
                queryset=Job.objects.select_related("requested_by", "last_action_by").order_by(
                    "created_at", "pk"
                ),
            )
        )
    return qs


def job_page(qs: QuerySet[Job], *, first: int, after: str | None) -> tuple[list[Job], bool]:
    """Newest first, keyset-paginated on (created_at, id): stable while new jobs arrive."""
    qs = qs.order_by("-created_at", "-pk")
    if after:
        created, pk = decode_cursor(after, size=2)
        try:
            created_at = datetime.fromisoformat(created)
            pk_value = uuid.UUID(pk)
        except ValueError:
            raise BadUserInput("'after' is not a cursor from this API.", field="after") from None
        qs = qs.filter(Q(created_at__lt=created_at) | Q(created_at=created_at, pk__lt=pk_value))
    rows = list(qs[: first + 1])
    return rows[:first], len(rows) > first


def job_cursor(job: Job) -> str:
    return encode_cursor([job.created_at.isoformat(), job.pk])


def queue_counts() -> list[dict]:
    """Per queue: waiting, running, failed, completed in the last 24 h (one query), workers."""
    since = timezone.now() - timedelta(hours=24)
    rows = {
        row["queue"]: row
        for row in Job.objects.filter(queue__in=queue_names())
        .values("queue")
        .annotate(
            waiting=Count("pk", filter=Q(state__in=[JobState.PENDING, JobState.RETRYING])),
            running=Count("pk", filter=Q(state=JobState.RUNNING)),
            failed=Count("pk", filter=Q(state=JobState.FAILED)),
            completed_last_24h=Count(
                "pk", filter=Q(state=JobState.COMPLETED, settled_at__gte=since)
            ),
        )
        .order_by()
    }
    workers, queued = _rq_numbers()
    out = []
    for name in queue_names():
        row = rows.get(name, {})
        out.append(
            {
                "name": name,
                "waiting": row.get("waiting", 0),
                "running": row.get("running", 0),
                "failed": row.get("failed", 0),
                "completed_last_24h": row.get("completed_last_24h", 0),
                "workers": workers.get(name),
                "rq_queued": queued.get(name),
            }
        )
    return out


def _rq_numbers() -> tuple[dict[str, int], dict[str, int]]:
    """Workers per queue and RQ queue lengths; empty when Redis can't be reached."""
    import django_rq
    from rq.worker import Worker

    try:
        queues = {name: django_rq.get_queue(name) for name in queue_names()}
        conn = next(iter(queues.values())).connection
        workers = {name: 0 for name in queues}
        for worker in Worker.all(connection=conn):
            for queue_name in worker.queue_names():
                if queue_name in workers:
                    workers[queue_name] += 1
        return workers, {name: queue.count for name, queue in queues.items()}
    except Exception:  # Redis down: the ledger counts still answer
        return {}, {}
