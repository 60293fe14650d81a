"""Hand a ledger row to RQ: claim it, send it under a fresh RQ id, unclaim it if Redis fails.

The lowest layer of the jobs app that talks to Redis: it imports only the models, the kind
registry and the settings, so the enqueue function, the runner (retries), the services
(retry) and the relay can all call it without import circles.
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import django_rq
from django.db.models import Case, Value, When
from django.utils import timezone
from redis.exceptions import RedisError
from rq import Queue

from jobs import conf
from jobs.models import Job, JobState
from jobs.pause import paused_on
from jobs.redis_client import config_key, server_key
from jobs.registry import get_kind

logger = logging.getLogger(__name__)

# Dotted path of the single RQ entrypoint; RQ imports it in the worker.
RUNNER_ENTRYPOINT = "jobs.runner.perform"


def rq_job_id_for(job: Job) -> str:
    """A new RQ job id for one send of the row: letters, digits and '-' only (RQ's rule).

    Unique per send, not just per attempt: RQ pushes a second copy when an id is enqueued
    twice, and that copy's outcome would then be taken for the running one's.
    """
    return f"job-{job.pk}-{job.attempts + 1}-{uuid.uuid4().hex[:8]}"


# The longest debounce a worker waits out itself (see ``dispatch``); a longer one goes through
# RQ's scheduler, which keeps whole seconds and polls once a second.
MAX_WORKER_DEBOUNCE = 2.0
# RQ job meta key: the epoch time before which the runner does not claim the row.
NOT_BEFORE = "not_before"


def dispatch(
    job_id: Any,
    *,
    delay: int = 0,
    debounce: float = 0,
    expect_dispatched_at: datetime | None = None,
) -> bool:
    """Hand the ledger row to RQ (now, or after ``delay`` seconds). True if it was sent.

    ``debounce`` (seconds, up to ``MAX_WORKER_DEBOUNCE``) sends the row now but has the runner
    claim it no earlier than that: the row stays pending meanwhile, so requests that merge into
    it (dedup, coalescing) keep landing in it. Exact to the millisecond, where RQ's scheduler
    (``delay``) rounds up to whole seconds and then waits for its next once-a-second poll; the
    price is a worker held for at most that long. A longer debounce is a ``delay``.

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
    if debounce > MAX_WORKER_DEBOUNCE:
        delay, debounce = max(delay, math.ceil(debounce)), 0
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
        queue = _queue(job.queue)
        if paused_on(queue.connection, job.queue):
            _unclaim(job.pk, rq_id)
            return False  # it waits, visibly pending; resuming the queue sends it
        options = _options(job, job_kind, rq_id, timeout)
        if debounce > 0 and delay <= 0:
            options["meta"][NOT_BEFORE] = time.time() + debounce
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


_queues: dict[tuple[str, str], Queue] = {}


def _queue(name: str) -> Queue:
    """``django_rq.get_queue(name)``, made once per queue configuration and process.

    django-rq builds a new Redis client (a new connection pool) on every call, so every send
    paid a TCP connect and redis-py's handshake. The client is fork-safe (redis-py resets its
    pool in a child process) and thread-safe; a changed configuration gets a client of its own.
    """
    key = config_key(name)
    queue = _queues.get(key)
    if queue is None:
        queue = _queues[key] = django_rq.get_queue(name)
    return queue


def _options(job: Job, job_kind, rq_id: str, timeout: int) -> dict[str, Any]:
    """RQ's enqueue options for one send of the row (the same for one send or many)."""
    options: dict[str, Any] = {
        "args": (str(job.pk),),
        "job_id": rq_id,
        # RQ raises JobTimeoutException inside the handler after this long; the runner
        # records it as the attempt's error and retries like any other failure.
        "job_timeout": timeout,
        "result_ttl": conf.rq_result_ttl(),
        "failure_ttl": conf.rq_failure_ttl(),
        "description": f"{job.kind} {job.target_label or job.target_id}".strip(),
        "meta": {"ledger_id": str(job.pk), "kind": job.kind, "progress": job.progress},
    }
    if job_kind and job_kind.dispatch_options:
        options.update(job_kind.dispatch_options(job.payload or {}))
    return options


# How many rows one claim UPDATE carries in ``dispatch_many``.
DISPATCH_CHUNK = 500


def dispatch_many(job_ids: Sequence) -> int:
    """Hand many never-sent rows to RQ: per chunk of ``DISPATCH_CHUNK`` rows one SELECT, one
    pause check per queue, one claim UPDATE, one read-back of the claim, and one Redis pipeline
    per Redis server (each queue's jobs on its own connection). Returns how many were sent.

    The claim is ``dispatch``'s (a row whose ``dispatched_at`` is no longer unset, or that
    started or was cancelled, is skipped), so a row is sent once even with a relay racing.
    Rows held back (``run_after``) go through ``dispatch`` one by one; rows of a paused queue
    are not claimed (they wait, pending). If a Redis fails, the claims of the rows meant for it
    are undone and the relay sends those rows later; never raises for it.
    """
    ids = list(dict.fromkeys(job_ids))
    sent = 0
    for start in range(0, len(ids), DISPATCH_CHUNK):
        sent += _dispatch_chunk(ids[start : start + DISPATCH_CHUNK])
    return sent


def _dispatch_chunk(ids: list) -> int:
    now = timezone.now()
    sendable = (JobState.PENDING, JobState.RETRYING)
    rows = list(
        Job.objects.filter(
            pk__in=ids, state__in=sendable, cancel_requested=False, dispatched_at=None
        ).order_by()
    )
    position = {pk: index for index, pk in enumerate(ids)}
    rows.sort(key=lambda row: position.get(row.pk, position.get(str(row.pk), 0)))  # given order
    later = [row for row in rows if row.next_attempt_at and row.next_attempt_at > now]
    rows = [row for row in rows if row not in later]
    sent = sum(1 for row in later if dispatch(row.pk))
    held = _held_queues({row.queue for row in rows})
    rows = [row for row in rows if row.queue not in held]  # they wait, visibly pending
    if not rows:
        return sent
    rq_ids = {row.pk: rq_job_id_for(row) for row in rows}
    # One UPDATE claims the chunk, each row under its own RQ id (a CASE over the primary key).
    Job.objects.filter(
        pk__in=list(rq_ids), state__in=sendable, cancel_requested=False, dispatched_at=None
    ).update(
        rq_job_id=Case(*[When(pk=pk, then=Value(rq_id)) for pk, rq_id in rq_ids.items()]),
        dispatched_at=now,
    )
    claimed = set(
        Job.objects.filter(pk__in=list(rq_ids), rq_job_id__in=list(rq_ids.values()))
        .order_by()
        .values_list("pk", flat=True)
    )
    rows = [row for row in rows if row.pk in claimed]
    # One pipeline per Redis server: each queue's jobs go to its own (RQ_QUEUES may give a
    # queue a Redis of its own); queues configured alike share one pipeline.
    by_server: dict[tuple, list[Job]] = {}
    for row in rows:
        by_server.setdefault(server_key(_queue(row.queue).connection), []).append(row)
    return sent + sum(_send_group(group, rq_ids) for group in by_server.values())


def _held_queues(names: set[str]) -> set[str]:
    """Of ``names``, the queues not to send to now: paused, or whose Redis cannot say."""
    held = set()
    for name in names:
        try:
            if paused_on(_queue(name).connection, name):
                held.add(name)
        except Exception as exc:  # Redis down: the relay sends them later
            logger.warning("Could not ask whether queue %s is paused (%s)", name, exc)
            held.add(name)
    return held


def _send_group(rows: list[Job], rq_ids: dict) -> int:
    """Send claimed ``rows`` (of queues on one Redis server) in one pipeline; on failure undo
    their claims (the relay sends them later). Returns how many were sent."""
    try:
        with _queue(rows[0].queue).connection.pipeline() as pipe:
            by_queue: dict[str, list] = {}
            for row in rows:
                by_queue.setdefault(row.queue, []).append(row)
            for name, queued in by_queue.items():
                datas = []
                for row in queued:
                    try:
                        job_kind = get_kind(row.kind)
                    except LookupError:
                        job_kind = None
                    options = _options(
                        row, job_kind, rq_ids[row.pk], job_kind.timeout if job_kind else 600
                    )
                    options["timeout"] = options.pop("job_timeout")
                    datas.append(Queue.prepare_data(RUNNER_ENTRYPOINT, **options))
                _queue(name).enqueue_many(datas, pipeline=pipe)
            pipe.execute()
    except Exception as exc:  # Redis down or anything else: the relay sends them later
        logger.warning("Could not dispatch %d jobs to RQ (%s); relay will retry", len(rows), exc)
        Job.objects.filter(
            pk__in=[row.pk for row in rows], rq_job_id__in=[rq_ids[row.pk] for row in rows]
        ).update(dispatched_at=None)
        return 0
    return len(rows)


def _unclaim(job_pk, rq_id: str) -> None:
    # Only our own claim: if anything moved the row on meanwhile, leave it be.
    Job.objects.filter(pk=job_pk, rq_job_id=rq_id).update(dispatched_at=None)
