"""The one way in: every trigger records a ledger row here and hands it to RQ on commit.

* The row is written in the caller's transaction; RQ hears of it only when that transaction
  commits (``transaction.on_commit``), so a rolled-back transaction enqueues nothing.
* If Redis is unreachable at commit, the row stays with ``dispatched_at`` unset and the relay
  (``jobs.relay.relay``) sends it later. The caller never sees a Redis error.
* A dedup key merges the request into a job that has not started yet; a unique constraint on
  the key (pending rows only) makes two racing requests end up with one row, and the merge
  locks the row so two racing merges both keep their change.
* Every send to RQ claims the row first (a conditional UPDATE on ``dispatched_at``) and goes
  out under an RQ id of its own, so two processes dispatching one row send it once, and a
  stale copy that reaches a worker is told apart from the current one.
* ``enqueue_many`` records many jobs of one kind at once (one INSERT, no dedup) and dispatches
  each on commit the same way.
"""

from __future__ import annotations

import json
import logging
import math
import uuid
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import django_rq
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from redis.exceptions import RedisError

from jobs.models import Job, JobState, JobTrigger
from jobs.registry import JobKind, get_kind

logger = logging.getLogger(__name__)

# Dotted path of the single RQ entrypoint; RQ imports it in the worker.
RUNNER_ENTRYPOINT = "jobs.runner.perform"
# RQ keeps the outcome of our runner only briefly: the ledger is the record.
RQ_RESULT_TTL = 3600
RQ_FAILURE_TTL = 7 * 24 * 3600

Merge = Callable[[dict, dict], dict]


class InvalidJobRequest(ValueError):
    """The enqueue call itself is wrong (unknown trigger, payload not JSON, ...)."""


def enqueue(
    kind: str,
    *,
    payload: dict,
    trigger: str,
    reason: str = "",
    requested_by=None,
    target: tuple[str, str, str] | None = None,
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

    ``dispatch_on_commit=False`` records the row without telling RQ: for ``--sync`` callers
    that run it right away with ``jobs.runner.run_inline``.

    ``queue`` overrides the kind's queue; ``run_after`` holds the row back until then (kept in
    ``next_attempt_at``, so the relay honours it too).
    """
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
    requested_by=None,
    targets: Sequence[tuple[str, str, str] | None] | None = None,
    parent: Job | None = None,
    dispatch_on_commit: bool = True,
) -> list[Job]:
    """Record one job of ``kind`` per payload, in one INSERT, and dispatch them all on commit.

    For many jobs asked for at once (a bulk job's batches): the rows are validated like
    ``enqueue`` before any is written, written in the caller's transaction with a single
    ``bulk_create``, and handed to RQ in order by one on-commit callback; each goes through
    ``dispatch``, so a Redis outage leaves the rest for the relay. No dedup key: every payload
    gets a row of its own. ``reason_for(index, payload)`` (index from 0) gives each row's
    reason, ``targets`` (one per payload, or None) each row's target. Returns the rows in the
    order of ``payloads``.
    """
    job_kind = get_kind(kind)  # raises UnknownJobKind
    _check_trigger(trigger)
    payloads = list(payloads)
    if targets is not None and len(targets) != len(payloads):
        raise InvalidJobRequest(
            f"Got {len(targets)} targets for {len(payloads)} payloads; give one per payload"
        )
    for payload in payloads:
        _check_json(payload)
    if not payloads:
        return []
    rows = [
        Job(
            **_row_fields(
                job_kind,
                payload=payload,
                trigger=trigger,
                reason=reason_for(index, payload) if reason_for else "",
                requested_by=requested_by,
                target=targets[index] if targets is not None else None,
                parent=parent,
            )
        )
        for index, payload in enumerate(payloads)
    ]
    # Primary keys are UUIDs made in Python, so the rows know their ids without a read back.
    jobs = Job.objects.bulk_create(rows)

    if dispatch_on_commit:
        job_ids = [job.pk for job in jobs]

        def dispatch_all() -> None:
            for job_id in job_ids:
                dispatch(job_id)  # never raises; an unsent row waits for the relay

        transaction.on_commit(dispatch_all)
    return jobs


def _row_fields(
    job_kind: JobKind,
    *,
    payload: dict,
    trigger: str,
    reason: str,
    requested_by,
    target: tuple[str, str, str] | None,
    parent: Job | None,
) -> dict[str, Any]:
    """The columns of a new pending ledger row (dedup key aside)."""
    target_type, target_id, target_label = target or ("", "", "")
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


def rq_job_id_for(job: Job) -> str:
    """A new RQ job id for one send of the row: letters, digits and '-' only (RQ's rule).

    Unique per send, not just per attempt: RQ pushes a second copy when an id is enqueued
    twice, and that copy's outcome would then be taken for the running one's.
    """
    return f"job-{job.pk}-{job.attempts + 1}-{uuid.uuid4().hex[:8]}"


def dispatch(job_id, *, delay: int = 0, expect_dispatched_at=None) -> bool:
    """Hand the ledger row to RQ (now, or after ``delay`` seconds). True if it was sent.

    The row is claimed first: only if its ``dispatched_at`` is still ``expect_dispatched_at``
    (default: never sent) is it marked sent and named with a new RQ id, in one conditional
    UPDATE. So of two processes dispatching the same row (an on-commit dispatch and the relay,
    two relays), one sends and the other sends nothing.

    Never raises for Redis trouble: the claim is undone and the relay sends the row later.
    """
    try:
        job = Job.objects.get(pk=job_id)
    except Job.DoesNotExist:
        logger.warning("Job %s vanished before dispatch", job_id)
        return False
    if job.state not in (JobState.PENDING, JobState.RETRYING) or job.cancel_requested:
        return False
    try:
        job_kind = get_kind(job.kind)
    except LookupError:
        job_kind = None
    timeout = job_kind.timeout if job_kind else 600
    if not delay and job.next_attempt_at and job.next_attempt_at > timezone.now():
        delay = math.ceil((job.next_attempt_at - timezone.now()).total_seconds())  # run_after
    rq_id = rq_job_id_for(job)
    # Claim and name the delivery before sending, so the runner can tell it from stale copies.
    claimed = Job.objects.filter(
        pk=job.pk,
        state__in=(JobState.PENDING, JobState.RETRYING),
        cancel_requested=False,
        attempts=job.attempts,
        dispatched_at=expect_dispatched_at,
    ).update(rq_job_id=rq_id, dispatched_at=timezone.now())
    if not claimed:
        return False  # another process sent it, a worker started it, or it was cancelled
    try:
        queue = django_rq.get_queue(job.queue)
        options: dict[str, Any] = {
            "args": (str(job.pk),),
            "job_id": rq_id,
            # RQ raises JobTimeoutException inside the handler after this long; the runner
            # records it as the attempt's error and retries like any other failure.
            "job_timeout": timeout,
            "result_ttl": RQ_RESULT_TTL,
            "failure_ttl": RQ_FAILURE_TTL,
            "description": f"{job.kind} {job.target_label or job.target_id}".strip(),
            "meta": {"ledger_id": str(job.pk), "kind": job.kind, "progress": job.progress},
        }
        if job_kind and job_kind.dispatch_options:
            options.update(job_kind.dispatch_options(job.payload or {}))
        if delay > 0:
            # RQ keeps scheduled times in whole seconds (truncated): round up, so a retry never
            # comes earlier than its backoff.
            at = timezone.now() + timedelta(seconds=delay)
            if at.microsecond:
                at = at.replace(microsecond=0) + timedelta(seconds=1)
            queue.enqueue_at(at, RUNNER_ENTRYPOINT, **options)
        else:
            queue.enqueue(RUNNER_ENTRYPOINT, **options)
    except (RedisError, OSError) as exc:  # Redis down, refused, timed out: relay sends it later.
        logger.warning(
            "Could not dispatch job %s to RQ queue %s (%s); relay will retry",
            job.pk,
            job.queue,
            exc,
        )
        _unclaim(job.pk, rq_id)
        return False
    except Exception:  # anything else is still not the caller's problem, but keep the trace
        logger.exception(
            "Could not dispatch job %s to RQ queue %s; relay will retry", job.pk, job.queue
        )
        _unclaim(job.pk, rq_id)
        return False
    return True


def _unclaim(job_pk, rq_id: str) -> None:
    # Only our own claim: if anything moved the row on meanwhile, leave it be.
    Job.objects.filter(pk=job_pk, rq_job_id=rq_id).update(dispatched_at=None)
