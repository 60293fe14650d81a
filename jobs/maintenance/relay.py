"""Keep the ledger and RQ in step when something went wrong between them.

* ``relay()`` sends jobs RQ never got: rows still waiting whose dispatch failed (Redis down at
  commit) or whose RQ job vanished (Redis restarted empty, job expired, delivery failed).
  A waiting row whose delivery RQ failed (or whose RQ worker died holding it) before the runner
  claimed it gets a failed attempt with RQ's reason first.
* ``reconcile()`` settles running rows whose worker is gone: the work horse was killed (RQ
  failed the job without callbacks), the whole worker died (``jobs.liveness``: gone from RQ's
  registry or silent, and the row silent too; an RQ job Redis lost is no sign of death), or
  the row's heartbeat is older than ``JOBS_STALE_AFTER_SECONDS``. Each becomes a failed
  attempt with a clear message, retried by the kind's policy or failed for good. A parent
  awaiting its children (``jobs.parents``) is checked instead: settled if its children are.

Both run every few seconds in one live worker (``jobs.worker.LedgerWatch``), every minute from
the scheduler (``relay-and-reconcile``) and from ``manage.py jobs relay``, always through
``relay_and_reconcile``, which holds one Redis lock (``RECONCILE_LOCK_KEY``) for the pass. Even
without it they would not run a job twice: the relay claims each row before sending it (see
``jobs.enqueue.dispatch``) and every state change here is conditional on the row's current
state and attempt.
"""

from __future__ import annotations

import contextlib
import logging
from datetime import timedelta

import django_rq
from django.db.models import Q
from django.utils import timezone
from redis.exceptions import RedisError
from rq.command import send_stop_job_command
from rq.exceptions import NoSuchJobError
from rq.job import Job as RQJob
from rq.job import JobStatus

from jobs import conf
from jobs.dispatch import dispatch
from jobs.liveness import WorkerSeen, is_awaiting_children, is_inline, worker_death, workers_seen
from jobs.models import Job, JobState
from jobs.parents import park_if_parent
from jobs.parents import repair as repair_parents
from jobs.pause import sync_paused
from jobs.redis_client import by_server, redis_for
from jobs.registry import UnknownJobKind, get_kind
from jobs.runner import SETTLED_BY_WORKER, record_failure, record_undelivered

logger = logging.getLogger(__name__)

# A dispatch younger than this may still be in flight in another process: leave it alone.
DISPATCH_GRACE_SECONDS = 15
# RQ states in which the runner is certainly no longer executing the delivery.
_RQ_DEAD = {
    s.value for s in (JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED, JobStatus.FINISHED)
}
# RQ states in which a waiting delivery is no longer going to run.
_RQ_NOT_WAITING = _RQ_DEAD
# Held (in Redis, so across machines) by whoever runs relay + reconcile: the cron entry, a
# worker's maintenance pass, the command. Expires by itself if its holder dies mid-pass.
RECONCILE_LOCK_KEY = "jobs:reconcile-lock"
RECONCILE_LOCK_TTL = 300


def _status(rq_job: RQJob) -> str:
    status = rq_job.get_status(refresh=False)
    return getattr(status, "value", status) or ""


def _connection():
    return django_rq.get_connection(conf.job_queues()[0])


def _fetch_rq_jobs(rows: list[Job]) -> dict[str, RQJob | None]:
    """The RQ job of each row's ``rq_job_id``, asked on its queue's own Redis (RQ_QUEUES may
    give a queue a server of its own: asked elsewhere, its jobs would look lost)."""
    found: dict[str, RQJob | None] = {}
    for names in by_server({row.queue for row in rows}).values():
        conn = redis_for(names[0])
        ids = [row.rq_job_id for row in rows if row.queue in names]
        for start in range(0, len(ids), 200):
            chunk = ids[start : start + 200]
            try:
                rq_jobs = RQJob.fetch_many(chunk, connection=conn)
            except NoSuchJobError:
                # A hash RQ cannot read ("Unexpected job format": Redis lost the job, then a
                # late write put a few fields back, such as RQ's own bookkeeping when a horse
                # finishes) must not stop the whole pass: one by one, and it counts as gone.
                rq_jobs = [_fetch_or_none(rq_id, conn) for rq_id in chunk]
            found.update(zip(chunk, rq_jobs, strict=True))
    return found


def _fetch_or_none(rq_id: str, conn) -> RQJob | None:
    try:
        return RQJob.fetch(rq_id, connection=conn)
    except NoSuchJobError:
        return None


def relay(*, grace_seconds: int = DISPATCH_GRACE_SECONDS, limit: int = 1000) -> int:
    """Dispatch waiting jobs that RQ does not have. Returns how many were sent."""
    now = timezone.now()
    cutoff = now - timedelta(seconds=grace_seconds)
    waiting = Q(state=JobState.PENDING, created_at__lt=cutoff) | Q(
        state=JobState.RETRYING, next_attempt_at__lte=now
    )
    rows = list(
        Job.objects.filter(waiting, cancel_requested=False)
        .filter(Q(dispatched_at__isnull=True) | Q(dispatched_at__lt=cutoff))
        .order_by("created_at")
        .only("pk", "queue", "rq_job_id", "dispatched_at", "state", "next_attempt_at")[:limit]
    )
    if not rows:
        return 0
    dispatched = [r for r in rows if r.dispatched_at and r.rq_job_id]
    rq_jobs = _fetch_rq_jobs(dispatched) if dispatched else {}
    seen = _workers_seen() if dispatched else WorkerSeen({})
    sent = 0
    for row in rows:
        if row.dispatched_at and row.rq_job_id:
            rq_job = rq_jobs.get(row.rq_job_id)
            status = _status(rq_job) if rq_job is not None else ""
            if rq_job is not None and status == JobStatus.STARTED.value:
                if not _started_by_dead_worker(rq_job, seen, now=now):
                    continue  # a live worker is about to claim it
                why = f"its worker {rq_job.worker_name} died before the runner claimed the job"
                if record_undelivered(
                    row.pk,
                    rq_job_id=row.rq_job_id,
                    worker_name=rq_job.worker_name or "",
                    message=f"Delivery failed: {why} (RQ job {row.rq_job_id})",
                ):
                    continue  # its retry is dispatched by record_failure
            elif (
                rq_job is not None
                and status == JobStatus.SCHEDULED.value
                and row.next_attempt_at is not None
                and row.next_attempt_at < cutoff
            ):
                # Overdue in RQ's scheduled registry: the worker holding RQ's scheduler lock
                # died (the lock outlives it by minutes). Sent now; the old copy is superseded.
                logger.warning("Job %s: its RQ scheduler is not moving it; sending it now", row.pk)
                if dispatch(row.pk, expect_dispatched_at=row.dispatched_at, delay=0):
                    sent += 1
                continue
            elif rq_job is not None and status not in _RQ_NOT_WAITING:
                continue  # RQ still has it queued / scheduled
            elif rq_job is not None and status == JobStatus.FAILED.value:
                reason = _rq_failure(rq_job) or "no reason given"
                if record_undelivered(
                    row.pk,
                    rq_job_id=row.rq_job_id,
                    worker_name=rq_job.worker_name or "",
                    message=f"Delivery failed before the runner claimed the job: {reason} "
                    f"(RQ job {row.rq_job_id})",
                ):
                    continue
            logger.warning("Job %s was dispatched but RQ lost it; sending it again", row.pk)
        # Claimed by a conditional UPDATE on the dispatched_at we saw: if another relay or an
        # on-commit dispatch got there first, this sends nothing.
        if dispatch(row.pk, expect_dispatched_at=row.dispatched_at):
            sent += 1
    if sent:
        logger.info("Relay sent %d undispatched job(s)", sent)
    return sent


def _workers_seen() -> WorkerSeen:
    """RQ's live workers on every job queue's Redis (a queue may have a server of its own)."""
    heartbeats: dict = {}
    for names in by_server(conf.job_queues()).values():
        heartbeats.update(workers_seen(redis_for(names[0])).heartbeats)
    return WorkerSeen(heartbeats)


def _rq_failure(rq_job: RQJob) -> str:
    """The last line of RQ's failure text for ``rq_job`` (its reason), or ""."""
    with contextlib.suppress(Exception):
        latest = rq_job.latest_result()
        lines = (getattr(latest, "exc_string", "") or "").strip().splitlines()
        return lines[-1].strip() if lines else ""
    return ""


def _started_by_dead_worker(rq_job: RQJob, seen: WorkerSeen, *, now) -> bool:
    name = rq_job.worker_name
    if not name:
        return False
    silent = seen.silent_for(name, now=now)
    return silent is None or silent > conf.worker_silent_after()


def reconcile(*, stale_after: int | None = None) -> list[Job]:
    """Settle running rows whose worker died. Returns the rows it changed."""
    stale_after = stale_after or conf.stale_after_seconds()
    now = timezone.now()
    # Parked parents: their children settle them; this counts a settle hook lost with a dying
    # process (only those children, through a partial index).
    changed = [Job.objects.get(pk=pk) for pk in repair_parents()]
    # Payload, result and errors are not needed to judge (record_failure reads the row again).
    running = list(Job.objects.filter(state=JobState.RUNNING).defer("payload", "result", "errors"))
    running = [r for r in running if not is_awaiting_children(r)]
    if not running:
        return changed
    delivered = [r for r in running if r.rq_job_id and not is_inline(r)]
    rq_jobs = _fetch_rq_jobs(delivered) if delivered else {}
    seen = _workers_seen()
    for row in running:
        reason = _death_reason(row, rq_jobs, seen, now=now, stale_after=stale_after)
        if reason is None:
            _escalate_cancel(row, now=now)
            continue
        logger.warning("Job %s (attempt %s): %s", row.pk, row.attempts, reason)
        parked = park_if_parent(row)
        if parked is not None:  # its children carry the work: it waits for them, not failed
            if parked.is_settled:
                changed.append(parked)
            _stop_rq_job(row)
            continue
        try:
            kind = get_kind(row.kind)
        except UnknownJobKind:
            kind = None
        updated = record_failure(
            row, message=reason, kind=kind, dispatch_retry=True, expect_attempt=row.attempts
        )
        if updated.state != JobState.RUNNING:
            changed.append(updated)
        _stop_rq_job(row)
    return changed


def _death_reason(row: Job, rq_jobs, seen: WorkerSeen, *, now, stale_after: int):
    last_sign = row.heartbeat_at or row.started_at or row.created_at
    silent_for = (now - last_sign).total_seconds()
    # An inline run (``--sync``, a bulk parent's child) has no RQ job and no RQ worker: only
    # its heartbeat says whether it is alive.
    inline = is_inline(row)
    if not inline and row.rq_job_id and row.rq_job_id in rq_jobs:
        rq_job = rq_jobs[row.rq_job_id]
        started_long_ago = row.started_at and (now - row.started_at).total_seconds() > 5
        # RQ no longer knowing the job (Redis restarted empty, its key expired) says nothing
        # about the worker running it, which may well be alive and heartbeating the row:
        # only the worker's silence and the row's tell (``worker_death`` below).
        if rq_job is not None and started_long_ago and _is_this_run(row, rq_job):
            status = _status(rq_job)
            if status in _RQ_DEAD:
                detail = ""
                if status == JobStatus.FAILED.value:
                    latest = rq_job.latest_result()
                    lines = (getattr(latest, "exc_string", "") or "").strip().splitlines()
                    detail = f": {lines[-1]}" if lines else ""
                return (
                    f"Worker died: RQ marked job {row.rq_job_id} {status}{detail} "
                    f"(worker {row.worker_name})"
                )
    if (died := worker_death(row, seen, now=now)) is not None:
        return died
    if silent_for > stale_after:
        return f"Worker died or hung: no heartbeat for {int(silent_for)}s (limit {stale_after}s)"
    return None


def _is_this_run(row: Job, rq_job: RQJob) -> bool:
    """Whether the RQ job's outcome tells anything about the row's current run.

    A copy that another worker took, or that the runner skipped (the row was already running),
    ends ``finished`` while the real run goes on: its status is no sign of death. Nor is a
    horse that finished and left the recording to its worker (``SETTLED_BY_WORKER``), which
    does it a moment later; if that worker died first, ``worker_death`` tells.
    """
    if rq_job.worker_name and row.worker_name and rq_job.worker_name != row.worker_name:
        return False
    if _status(rq_job) == JobStatus.FINISHED.value:
        with contextlib.suppress(Exception):
            value = getattr(rq_job.latest_result(), "return_value", None)
            if isinstance(value, dict) and ("skipped" in value or SETTLED_BY_WORKER in value):
                return False
    return True


def _stop_rq_job(row: Job) -> None:
    """Best effort: if RQ still runs the abandoned delivery somewhere, stop it."""
    if not row.rq_job_id or is_inline(row):
        return

    # Raises when the job is not executing any more (the usual case).
    with contextlib.suppress(Exception):
        send_stop_job_command(redis_for(row.queue), row.rq_job_id)


CANCEL_ESCALATE_AFTER_SECONDS = 30


def _escalate_cancel(row: Job, *, now) -> None:
    """A running job asked to cancel that ignores it for long is stopped the hard way."""
    if not row.cancel_requested or not row.last_action_at:
        return
    if (now - row.last_action_at).total_seconds() < CANCEL_ESCALATE_AFTER_SECONDS:
        return
    logger.warning("Job %s ignores its cancel request; stopping its work horse", row.pk)
    _stop_rq_job(row)


def relay_and_reconcile(*, lock_timeout: float = 0) -> dict:
    """The every-minute maintenance: both passes under the ledger lock, never raising (it runs
    unattended).

    Waits up to ``lock_timeout`` seconds for a pass running elsewhere; if the lock stays taken,
    does nothing and says so under ``"skipped"``.
    """
    out: dict = {"relayed": 0, "reconciled": 0}
    try:
        lock = _connection().lock(
            RECONCILE_LOCK_KEY, timeout=RECONCILE_LOCK_TTL, thread_local=False
        )
        acquired = lock.acquire(
            blocking=lock_timeout > 0, blocking_timeout=lock_timeout if lock_timeout > 0 else None
        )
    except RedisError as exc:
        logger.warning("Relay/reconcile not run: Redis unreachable (%s)", exc)
        return {**out, "skipped": f"Redis unreachable: {exc}"}
    if not acquired:
        return {
            **out,
            "skipped": f"another relay/reconcile pass is running (lock {RECONCILE_LOCK_KEY})",
        }
    try:
        sync_paused()  # an emptied or restored Redis gets the table's pauses before any relay
        try:
            out["reconciled"] = len(reconcile())
        except Exception:
            logger.exception("Reconcile failed")
        try:
            out["relayed"] = relay()
        except Exception:
            logger.exception("Relay failed")
    finally:
        # Only our own lock (the token says so); it may have expired on a very long pass.
        with contextlib.suppress(Exception):
            lock.release()
    return out
