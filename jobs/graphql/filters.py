"""Ledger reads for the GraphQL job queries: filters, keyset pages, queue counts.

Kept apart from the resolvers so they stay thin; inputs are validated here and refused with
BAD_USER_INPUT naming the allowed values.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import django_rq
import graphene
from django.db.models import Prefetch, Q, QuerySet

from api.errors import BadUserInput
from api.graphql_utils import clean_text, decode_cursor, encode_cursor, parse_int_id
from jobs import selectors
from jobs.models import Job, JobState
from jobs.pause import pauses
from jobs.registry import all_kinds, is_filterable_kind
from jobs.selectors import queue_names
from jobs.target_types import all_target_types, get_target_type


def target_filter_arguments() -> dict[str, graphene.ID]:
    """The generic ``targetType``/``targetId`` filters plus each registered target type's own
    argument (the bundles app's ``bundleId``)."""
    args = {
        "target_type": graphene.String(description="A registered target type, e.g. bundle"),
        "target_id": graphene.ID(description="With targetType: jobs linked to this object"),
    }
    for target_type in all_target_types():
        if target_type.filter_argument:
            args[target_type.filter_argument] = graphene.ID(
                description=f"Jobs linked to this {target_type.label.lower()}"
            )
    return args


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def _target_filter(
    target_type: str | None, target_id: str | None, extra: dict
) -> tuple[str | None, str | None]:
    """(type, id) to filter by, from targetType/targetId or a type's own argument."""
    for registered in all_target_types():
        arg = registered.filter_argument
        if arg and extra.get(arg) is not None:
            target_type, target_id, field = registered.name, extra.pop(arg), _camel(arg)
            break
    else:
        field = "targetId"
    if extra:
        raise BadUserInput(f"Unknown filter {', '.join(map(_camel, extra))}.")
    if target_type is None:
        if target_id is not None:
            raise BadUserInput("'targetId' needs 'targetType'.", field="targetId")
        return None, None
    found = get_target_type(target_type)
    if found is None:
        known = ", ".join(t.name for t in all_target_types())
        raise BadUserInput(
            f"Unknown target type {str(target_type)[:50]!r}: use one of {known}.",
            field="targetType",
        )
    registered = found
    if target_id is None:
        return registered.name, None
    if registered.numeric_ids:
        noun = registered.label.lower()
        return registered.name, str(parse_int_id(target_id, field=field, noun=noun))
    return registered.name, clean_text(str(target_id), field=field, max_length=64)


def filtered_jobs(
    *,
    queue: str | None = None,
    state: str | None = None,
    kind: str | None = None,
    target_type: str | None = None,
    target_id: str | None = None,
    search: str | None = None,
    **target_args,
) -> QuerySet[Job]:
    """Jobs matching the filters (each optional), through the admin's selector; unknown values
    → BAD_USER_INPUT naming the allowed ones."""
    if queue is not None and queue not in queue_names():
        raise BadUserInput(
            f"Unknown queue {queue!r}: use one of {', '.join(queue_names())}.", field="queue"
        )
    if state is not None and state not in JobState.values:
        raise BadUserInput(
            f"Unknown state {state!r}: use one of {', '.join(JobState.values)}.", field="state"
        )
    if kind is not None and not is_filterable_kind(kind):
        kinds = ", ".join(k.name for k in all_kinds())
        raise BadUserInput(
            f"Unknown kind {kind!r}: use one of {kinds}, or a Django task's dotted path.",
            field="kind",
        )
    target_type, target_id = _target_filter(target_type, target_id, dict(target_args))
    # Id, target (bundle name or SKU...), dedup key, error text: the admin's search box.
    term = clean_text(search, field="search", max_length=200)
    return selectors.job_list(
        queue=queue,
        state=state,
        kind=kind,
        target_type=target_type,
        target_id=target_id,
        search=term or None,
    )


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
    """Per queue: the admin strip's counts (one grouped query), workers and RQ's length."""
    counts = selectors.queue_counts()
    workers = selectors.workers_by_queue()
    queued = _rq_lengths()
    paused = pauses()
    latency = selectors.queue_latency()
    out = []
    for name in queue_names():
        row = counts.get(name, {})
        out.append(
            {
                "name": name,
                "waiting": row.get("waiting", 0),
                "running": row.get("running", 0),
                "failed": row.get("failed", 0),
                "completed_last_24h": row.get("completed_24h", 0),
                "workers": None if workers is None else workers.get(name, 0),
                "rq_queued": queued.get(name),
                "paused": name in paused,
                "paused_by": selectors.pause_author(paused.get(name)) or None,
                "paused_at": paused[name].paused_at if name in paused else None,
                "oldest_waiting_seconds": latency.get(name, {}).get("oldest_waiting_seconds"),
                "completed_per_minute": latency.get(name, {}).get("completed_per_minute", 0.0),
                "failed_per_minute": latency.get(name, {}).get("failed_per_minute", 0.0),
            }
        )
    return out


def _rq_lengths() -> dict[str, int]:
    """Jobs waiting in each RQ queue; empty when Redis can't be reached."""
    try:
        return {name: django_rq.get_queue(name).count for name in queue_names()}
    except Exception:  # Redis down: the ledger counts still answer
        return {}
