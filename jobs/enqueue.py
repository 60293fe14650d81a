"""The one way in: every trigger records a ledger row here and hands it to RQ on commit.

* The row is written in the caller's transaction; RQ hears of it only when that transaction
  commits (``transaction.on_commit``), so a rolled-back transaction enqueues nothing.
* If Redis is unreachable at commit, the row stays with ``dispatched_at`` unset and the relay
  (``jobs.maintenance.relay.relay``) sends it later. The caller never sees a Redis error.
* A dedup key merges the request into a job that has not started yet; a unique constraint on
  the key (pending rows only) makes two racing requests end up with one row, and the merge
  locks the row so two racing merges both keep their change.
* Every send to RQ claims the row first (a conditional UPDATE on ``dispatched_at``) and goes
  out under an RQ id of its own, so two processes dispatching one row send it once, and a
  stale copy that reaches a worker is told apart from the current one.
* ``enqueue_many`` records many jobs of one kind at once (one INSERT, no dedup) and dispatches
  them on commit with one claim UPDATE and one Redis pipeline per chunk.
* ``enqueue_coalesced`` adds ids to the open (pending) job of a key, up to a capacity; a full
  job is closed (its key cleared) and the rest go to a new one. The same partial unique
  constraint as dedup keeps one open job per key, so racing requests fill one job.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any

from django.db import IntegrityError, transaction
from django.db.models import F

from jobs.dispatch import dispatch, dispatch_many
from jobs.models import Job, JobState, JobTrigger
from jobs.registry import JobKind, get_kind
from jobs.target_links import insert_links, link, link_rows
from jobs.target_types import Target, TargetIds

if TYPE_CHECKING:
    from django.contrib.auth.base_user import AbstractBaseUser

logger = logging.getLogger(__name__)

Merge = Callable[[dict, dict], dict]


class InvalidJobRequest(ValueError):
    """The enqueue call itself is wrong (unknown trigger, payload not JSON, ...)."""


def enqueue(
    kind: str,
    *,
    payload: dict,
    trigger: str,
    reason: str = "",
    requested_by: AbstractBaseUser | None = None,
    target: Target | tuple[str, str, str] | None = None,
    targets: Iterable[Target] | TargetIds = (),
    dedup_key: str | None = None,
    parent: Job | None = None,
    merge: Merge | None = None,
    dispatch_on_commit: bool = True,
    queue: str | None = None,
    run_after: datetime | None = None,
) -> Job:
    """Record a job of ``kind`` and dispatch it to its RQ queue when the transaction commits.

    With ``dedup_key``, a pending (never started) job with the same key is returned instead,
    its ``merged_count`` increased and, if ``merge`` is given, its payload replaced by
    ``merge(old_payload, new_payload)``.

    ``target`` is the job's main target (shown in lists); it and every one of ``targets``
    become ``JobTarget`` link rows, so filters find the job by any object it touches. A merged
    request adds its targets to the pending job.

    ``dispatch_on_commit=False`` records the row without telling RQ: for ``--sync`` callers
    that run it right away with ``jobs.runner.run_inline``.

    ``queue`` overrides the kind's queue; ``run_after`` holds the row back until then (kept in
    ``next_attempt_at``, so the relay honours it too).
    """
    target = Target.of(target)
    links = link_rows(target, targets)
    job_kind = get_kind(kind)  # raises UnknownJobKind
    if queue:
        job_kind = replace(job_kind, queue=queue)
    _check_trigger(trigger)
    _check_json(payload)
    fields = _row_fields(
        job_kind,
        payload=payload,
        trigger=trigger,
        reason=reason,
        requested_by=requested_by,
        target=target,
        parent=parent,
    )
    fields["dedup_key"] = dedup_key or None
    fields["next_attempt_at"] = run_after

    if dedup_key:
        # A savepoint so a lost race (IntegrityError) leaves the caller's transaction usable.
        for _ in range(3):
            existing = _merge_into_pending(dedup_key, payload, merge)
            if existing is not None:
                link(existing.pk, links)
                return existing
            try:
                with transaction.atomic():
                    job = Job.objects.create(**fields)
            except IntegrityError:
                # Another request created the pending row between our look and our insert.
                continue
            break
        else:  # pragma: no cover - would need the other row to vanish three times over
            raise RuntimeError(f"Could not enqueue or merge job with dedup key {dedup_key!r}")
    else:
        job = Job.objects.create(**fields)
    link(job.pk, links, fresh=True)

    if dispatch_on_commit:
        job_id = job.pk
        transaction.on_commit(lambda: dispatch(job_id))
    return job


def enqueue_many(
    kind: str,
    *,
    payloads: Sequence[dict],
    trigger: str,
    reason_for: Callable[[int, dict], str] | None = None,
    requested_by: AbstractBaseUser | None = None,
    targets: Sequence[Target | tuple[str, str, str] | None] | None = None,
    links: Sequence[Iterable[Target] | TargetIds] | None = None,
    parent: Job | None = None,
    dispatch_on_commit: bool = True,
) -> list[Job]:
    """Record one job of ``kind`` per payload, in one INSERT, and dispatch them all on commit.

    For many jobs asked for at once (a bulk job's batches): the rows are validated like
    ``enqueue`` before any is written, written in the caller's transaction with a single
    ``bulk_create``, and handed to RQ in order by one on-commit callback; each goes through
    ``dispatch``, so a Redis outage leaves the rest for the relay. No dedup key: every payload
    gets a row of its own. ``reason_for(index, payload)`` (index from 0) gives each row's
    reason, ``targets`` (one per payload, or None) each row's main target, ``links`` (one
    iterable per payload) each row's further targets; all become link rows in one INSERT.
    Returns the rows in the order of ``payloads``.
    """
    job_kind = get_kind(kind)  # raises UnknownJobKind
    _check_trigger(trigger)
    payloads = list(payloads)
    if targets is not None and len(targets) != len(payloads):
        raise InvalidJobRequest(
            f"Got {len(targets)} targets for {len(payloads)} payloads; give one per payload"
        )
    if links is not None and len(links) != len(payloads):
        raise InvalidJobRequest(
            f"Got {len(links)} link lists for {len(payloads)} payloads; give one per payload"
        )
    for payload in payloads:
        _check_json(payload)
    if not payloads:
        return []
    mains = [Target.of(targets[i]) if targets is not None else None for i in range(len(payloads))]
    rows = [
        Job(
            **_row_fields(
                job_kind,
                payload=payload,
                trigger=trigger,
                reason=reason_for(index, payload) if reason_for else "",
                requested_by=requested_by,
                target=mains[index],
                parent=parent,
            )
        )
        for index, payload in enumerate(payloads)
    ]
    # Primary keys are UUIDs made in Python, so the rows know their ids without a read back.
    jobs = Job.objects.bulk_create(rows)
    insert_links(
        (
            (job.pk, row)
            for index, job in enumerate(jobs)
            for row in link_rows(mains[index], links[index] if links is not None else ())
        ),
        fresh=True,
    )

    if dispatch_on_commit:
        job_ids = [job.pk for job in jobs]

        # Bounded SQL and one Redis pipeline per chunk; never raises (the relay sends the rest).
        transaction.on_commit(lambda: dispatch_many(job_ids))
    return jobs


def enqueue_coalesced(
    kind: str,
    *,
    key: str,
    ids_field: str,
    ids: Sequence[int],
    capacity: int,
    payload: dict,
    trigger: str,
    reason: str = "",
    requested_by: AbstractBaseUser | None = None,
    target_type: str,
    label: Callable[[int], str] = lambda count: f"{count} targets",
    dispatch_on_commit: bool = True,
    debounce: float = 0,
    parent: Job | None = None,
) -> list[Job]:
    """Put ``ids`` into open jobs of ``kind`` under ``key``: at most ``capacity`` ids a job.

    While a job is pending it absorbs new ids (``payload[ids_field]`` grows, ``merged_count``
    counts the requests it absorbed, each id becomes a ``JobTarget`` link); once a worker has
    started it, new ids go to a new job, so a change that arrives during a run is still
    applied. A job that reaches ``capacity`` is closed (its dedup key cleared) and the next
    ids open another. ``payload`` gives the other fields of a new job. Returns the jobs the
    ids went to (new ones are dispatched on commit, like ``enqueue``'s; with ``debounce`` a
    worker starts a new one no sooner than that many seconds after it, so a burst fills one job).
    A new job gets ``parent`` (the job that asked), so it is listed with what caused it.
    """
    job_kind = get_kind(kind)  # raises UnknownJobKind
    _check_trigger(trigger)
    _check_json(payload)
    if capacity < 1:
        raise InvalidJobRequest(f"Capacity must be at least 1, got {capacity}")
    remaining = list(dict.fromkeys(int(i) for i in ids))
    touched: list[Job] = []
    for _ in range(len(remaining) // capacity + 10):  # bounded: every pass places ids or retries
        if not remaining:
            break
        absorbed = _absorb_into_open(key, ids_field, remaining, capacity, target_type, label)
        if absorbed is not None:
            job, remaining = absorbed
            if job is not None and job not in touched:
                touched.append(job)
            continue
        take, rest = remaining[:capacity], remaining[capacity:]
        fields = _row_fields(
            job_kind,
            payload={**payload, ids_field: take},
            trigger=trigger,
            reason=reason,
            requested_by=requested_by,
            target=Target(target_type, str(take[0]) if len(take) == 1 else "", label(len(take))),
            parent=parent,
        )
        fields["dedup_key"] = None if len(take) >= capacity else key
        try:
            with transaction.atomic():
                job = Job.objects.create(**fields)
        except IntegrityError:
            continue  # another request opened a job for the key meanwhile: fill that one
        link(job.pk, link_rows(None, TargetIds(target_type, take)), fresh=True)
        if dispatch_on_commit:
            transaction.on_commit(partial(dispatch, job.pk, debounce=debounce))
        touched.append(job)
        remaining = rest
    else:  # pragma: no cover - would need the open job to vanish over and over
        raise RuntimeError(f"Could not place ids in jobs for key {key!r}")
    return touched


def _absorb_into_open(
    key: str,
    ids_field: str,
    ids: list[int],
    capacity: int,
    target_type: str,
    label: Callable[[int], str],
) -> tuple[Job | None, list[int]] | None:
    """Fill the open job of ``key`` with as many of ``ids`` as fit: (the job, ids left over),
    or None when there is no open job (or it started meanwhile)."""
    with transaction.atomic():
        # A row lock (PostgreSQL) or the IMMEDIATE transaction's write lock (SQLite) orders
        # racing absorbs; a worker's claim waits for it or makes the filter miss the row.
        job = (
            Job.objects.select_for_update()
            .filter(dedup_key=key, state=JobState.PENDING)
            .only("pk", "payload", "merged_count")
            .first()
        )
        if job is None:
            return None
        have = [int(i) for i in (job.payload or {}).get(ids_field) or []]
        known = set(have)
        new = [i for i in ids if i not in known]
        take, rest = new[: max(0, capacity - len(have))], new[max(0, capacity - len(have)) :]
        total = len(have) + len(take)
        updates: dict[str, Any] = {"target_label": label(total)[:255]}
        if total > 1:
            updates["target_id"] = ""  # no longer one target: the links name them all
        updated = Job.objects.filter(pk=job.pk, state=JobState.PENDING).update(
            **updates,
            payload={**job.payload, ids_field: have + take},
            merged_count=F("merged_count") + 1,
            dedup_key=None if total >= capacity else key,  # full: the next ids open a new job
        )
        if not updated:
            return None
        link(job.pk, link_rows(None, TargetIds(target_type, take)))
    job.refresh_from_db()
    return job, rest


def _row_fields(
    job_kind: JobKind,
    *,
    payload: dict,
    trigger: str,
    reason: str,
    requested_by,
    target: Target | None,
    parent: Job | None,
) -> dict[str, Any]:
    """The columns of a new pending ledger row (dedup key aside)."""
    target_type, target_id, target_label = (
        (target.type, target.id, target.label) if target else ("", "", "")
    )
    user = requested_by if getattr(requested_by, "is_authenticated", False) else None
    return {
        "queue": job_kind.queue,
        "kind": job_kind.name,
        "payload": payload,
        "trigger": trigger,
        "reason": (reason or "")[:255],
        "requested_by": user,
        "target_type": str(target_type)[:32],
        "target_id": str(target_id)[:64],
        "target_label": str(target_label)[:255],
        "parent": parent,
        "max_attempts": job_kind.max_attempts,
        "state": JobState.PENDING,
    }


def _check_trigger(trigger: str) -> None:
    if trigger not in JobTrigger.values:
        raise InvalidJobRequest(
            f"Unknown trigger {trigger!r} (expected one of {', '.join(JobTrigger.values)})"
        )


def _merge_into_pending(dedup_key: str, payload: dict, merge: Merge | None) -> Job | None:
    """Fold this request into the pending job with the key, if one exists. Else None."""
    # Read-merge-write under a row lock: a second merge waits and then merges into the first
    # one's payload instead of overwriting it. (SQLite has no row locks; there the IMMEDIATE
    # transaction takes the database's write lock at BEGIN, which serialises the same way.)
    with transaction.atomic():
        existing = (
            Job.objects.select_for_update()
            .filter(dedup_key=dedup_key, state=JobState.PENDING)
            .first()
        )
        if existing is None:
            return None
        updates: dict[str, Any] = {"merged_count": F("merged_count") + 1}
        if merge is not None:
            new_payload = merge(dict(existing.payload), dict(payload))
            _check_json(new_payload)
            updates["payload"] = new_payload
        # Conditional on still pending: if a worker started it meanwhile, the change must get
        # a job of its own (the running one may already have read the old data).
        updated = Job.objects.filter(pk=existing.pk, state=JobState.PENDING).update(**updates)
        if not updated:
            return None
    existing.refresh_from_db()
    return existing


def _check_json(payload: Any) -> None:
    if not isinstance(payload, dict):
        raise InvalidJobRequest("Job payload must be a dict of JSON values (ids, not objects)")
    try:
        json.dumps(payload)
    except (TypeError, ValueError) as exc:
        raise InvalidJobRequest(f"Job payload must be JSON-serialisable: {exc}") from exc
