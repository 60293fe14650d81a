"""The one runner every handler goes through, in a worker (``perform``) or inline (``run_inline``).

It claims the ledger row (skipping cancelled, settled or duplicate deliveries), counts the
attempt, gives the handler a :class:`JobContext` for progress and cancellation, then records
the result, or the error with its traceback, and schedules the next attempt with the kind's
backoff. A heartbeat thread keeps ``heartbeat_at`` fresh so ``reconcile`` (``jobs/maintenance``)
can tell a slow job from a dead one.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.core.mail import mail_admins
from django.core.serializers.json import DjangoJSONEncoder
from django.db import OperationalError, connections, transaction
from django.utils import timezone
from rq import get_current_job

from jobs import conf
from jobs.context import AttemptSuperseded, JobCancelled, JobContext
from jobs.dispatch import MAX_WORKER_DEBOUNCE, NOT_BEFORE, RUNNER_ENTRYPOINT, dispatch
from jobs.liveness import INLINE_PREFIX
from jobs.models import SETTLED_STATES, Job, JobState
from jobs.parents import (
    AwaitChildren,
    check_parent,
    child_settled,
    ordered_children,
    park,
    park_if_parent,
)
from jobs.pause import paused_on
from jobs.registry import JobKind, UnknownJobKind, get_kind
from jobs.selectors import wait_for_job

logger = logging.getLogger(__name__)


class _Heartbeats(threading.Thread):
    """One daemon thread per process that touches ``heartbeat_at`` of every job running in it
    every ``JOBS_HEARTBEAT_INTERVAL`` seconds, and notices cancels.

    One long-lived thread rather than one per job: starting and joining a thread per job cost
    about as much as the job's own ledger writes (a worker running jobs in-process reuses it;
    a forked work horse starts its own). Several jobs can run at once in one process (a bulk
    parent running a child in place), so it beats for a set of them.
    """

    _instance: _Heartbeats | None = None
    _instance_lock = threading.Lock()

    def __init__(self) -> None:
        super().__init__(name="job-heartbeats", daemon=True)
        self.pid = os.getpid()
        self.due: dict[JobContext, float] = {}
        self.changed = threading.Condition()
        self.wake_at = 0.0  # when the thread's current wait ends (0: it is not waiting)

    @classmethod
    def get(cls) -> _Heartbeats:
        with cls._instance_lock:
            # A forked child inherits the object but not the thread: start its own.
            if cls._instance is None or cls._instance.pid != os.getpid():
                cls._instance = cls()
                cls._instance.start()
            return cls._instance

    def watch(self, ctx: JobContext) -> None:
        with self.changed:
            due = self.due[ctx] = time.monotonic() + conf.heartbeat_interval()
            # Wake the thread only if it would sleep past this job's first beat: waking it for
            # every job (it then only goes back to sleep) cost a thread switch per job.
            if due < self.wake_at:
                self.changed.notify()

    def unwatch(self, ctx: JobContext) -> None:
        with self.changed:
            self.due.pop(ctx, None)

    def run(self) -> None:
        while True:
            with self.changed:
                now = time.monotonic()
                beat = [ctx for ctx, at in self.due.items() if at <= now]
                for ctx in beat:
                    self.due[ctx] = now + conf.heartbeat_interval()
                if not beat:
                    # Idle, it wakes every interval: a job watched meanwhile is due no sooner.
                    self.wake_at = min(self.due.values(), default=now + conf.heartbeat_interval())
                    self.changed.wait(timeout=max(0.01, self.wake_at - now))
                    self.wake_at = 0.0
                    continue
            for ctx in beat:
                self._beat(ctx)
            if not self.due:
                connections.close_all()  # idle: do not hold this thread's connection

    def _beat(self, ctx: JobContext) -> None:
        try:
            # One query per beat: the UPDATE skips a row asked to cancel, and only then is the
            # flag read (once), so 100 running jobs cost 100 UPDATEs per interval, not 200.
            # Only this attempt's row: an old attempt's copy must not keep a new one alive.
            rows = ctx.current_attempt()
            if ctx._cancel:
                touched = rows.update(heartbeat_at=timezone.now())
            else:
                touched = rows.filter(cancel_requested=False).update(heartbeat_at=timezone.now())
                if not touched and rows.filter(cancel_requested=True).exists():
                    ctx._mark_cancel()
                    touched = rows.update(heartbeat_at=timezone.now())
        except Exception:
            logger.warning("Heartbeat for job %s failed", ctx.job.pk, exc_info=True)
            connections.close_all()
            return
        if not touched:
            self._superseded(ctx)

    def _superseded(self, ctx: JobContext) -> None:
        """This attempt is no longer the row's current one: stop beating for it, and stop it."""
        with self.changed:
            if self.due.pop(ctx, None) is None:
                return  # the handler already returned (and its result may be recorded): done
        ctx._mark_superseded()  # its next set_progress / check_cancelled raises
        if _in_work_horse:
            # A forked work horse runs one job: whatever it does next would run the job twice,
            # and a handler that never reports progress would go on. Its worker sees the horse
            # killed and records nothing (its write is conditional on this old attempt).
            logger.warning("Job %s: ending this work horse (attempt moved on)", ctx.job.pk)
            os.kill(os.getpid(), signal.SIGKILL)


# Set in a forked work horse (``jobs.worker.JobsWorker.main_work_horse``): one job, its own
# process, so a superseded attempt's horse may end itself.
_in_work_horse = False


def mark_work_horse() -> None:
    global _in_work_horse
    _in_work_horse = True


def perform(job_id: str) -> dict:
    """RQ entrypoint: run the ledger job ``job_id``. Returns a short summary for RQ's result."""
    rq_job = get_current_job()
    handover = _HANDOVERS.pop(rq_job.id, None) if rq_job is not None else None
    if handover is not None:  # in a work horse whose worker claimed the row before forking
        return _perform_handed_over(handover, rq_job)
    _drop_broken_connections()
    if rq_job is not None:
        _wait_out_debounce(rq_job)
    if rq_job is not None and _paused(rq_job):
        _hand_back(job_id, rq_job)
        return {"skipped": f"queue {rq_job.origin} is paused"}
    worker = (rq_job.worker_name if rq_job else None) or _local_name()
    job, skipped = _claim(job_id, worker_name=worker, rq_job_id=rq_job.id if rq_job else "")
    if job is None:
        logger.info("Job %s not run: %s", job_id, skipped)
        return {"skipped": skipped}
    job = _execute(job, rq_job)
    return {"state": job.state, "attempt": job.attempts}


# -- the forking worker's share (``jobs.worker.JobsWorker``) ---------------------------------
# A work horse that opened its own database connection paid for a new PostgreSQL backend
# (fork, authentication, cold catalog caches) and for its first ORM queries in a fresh
# copy-on-write heap: its claim took 15-17 ms, the worker's own claim and settle 2 ms each
# (8 ms against 1.5 ms on SQLite, where only the cold ORM and schema read cost). So the
# worker claims the row before it forks, on its own long-lived connection, and records the
# outcome the horse reports once the horse has exited. The horse opens a connection only when
# the handler touches the database (progress, cancel checks, its own queries, a heartbeat).

# Key of a worker's finished RQ job result: the worker, not the horse, records the outcome.
SETTLED_BY_WORKER = "settled_by_worker"
# How long the worker's claim may wait for SQLite's write lock before leaving the claim to the
# horse (which then waits as long as it takes, as it always has).
SQLITE_CLAIM_WAIT_MS = 250

_HANDOVERS: dict[str, Handover] = {}


@dataclass
class Handover:
    """A delivery the worker claimed (or skipped) before forking the horse that runs it."""

    rq_job_id: str
    job: Job | None  # the claimed row; None: nothing to run
    skipped: str = ""  # why not, when job is None
    report_path: str = ""  # where the horse writes its Outcome


def claim_for_horse(rq_job, *, worker_name: str) -> Handover | None:
    """In the worker, before the fork: the claim, if it can be had without waiting.

    None when the delivery is not a ledger job, or its row cannot be claimed at once (locked,
    cancelled, settled, superseded) or the database is away: the horse then goes through
    ``perform`` as a whole, as it would without a worker's help."""
    if rq_job.func_name != RUNNER_ENTRYPOINT or not rq_job.args:
        return None
    not_before = (rq_job.meta or {}).get(NOT_BEFORE)
    if not_before and float(not_before) > time.time():
        # A debounced delivery (a fan-out) is held by its horse, which waits out the window
        # as RQ's "started" job, merging requests meanwhile; rare, so no claim is saved here.
        return None
    job_id = rq_job.args[0]
    try:
        _drop_broken_connections()
        if _paused(rq_job):
            _hand_back(job_id, rq_job)
            handover = Handover(rq_job.id, None, skipped=f"queue {rq_job.origin} is paused")
        else:
            try:
                with _short_lock_wait():
                    job = try_claim(job_id, worker_name=worker_name, rq_job_id=rq_job.id)
            except OperationalError as exc:
                if "locked" not in str(exc):
                    raise
                job = None  # SQLite's write lock is held: the horse waits for it instead
            if job is None:
                return None
            # Made here, empty and private (0600, O_EXCL: no other local user can plant one):
            # the horse writes into it, the worker reads it and removes it.
            fd, path = tempfile.mkstemp(prefix="jobs-outcome-", suffix=".json")
            os.close(fd)
            handover = Handover(rq_job.id, job, report_path=path)
    except Exception:
        logger.warning("Worker could not claim job %s; its horse will", job_id, exc_info=True)
        connections.close_all()
        return None
    _HANDOVERS[rq_job.id] = handover
    return handover


@contextlib.contextmanager
def _short_lock_wait():
    """SQLite: let the claim wait at most ``SQLITE_CLAIM_WAIT_MS`` for the write lock (raising
    "database is locked" after), then restore the connection's own timeout. A no-op on
    databases with row locks (the claim skips a locked row there)."""
    connection = connections[Job.objects.db]
    if connection.vendor != "sqlite":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA busy_timeout")
        (previous,) = cursor.fetchone()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_CLAIM_WAIT_MS}")
        try:
            yield
        finally:
            cursor.execute(f"PRAGMA busy_timeout = {int(previous)}")


def _perform_handed_over(handover: Handover, rq_job) -> dict:
    """In the horse: run the handler on the row its worker claimed; report, do not record."""
    if handover.job is None:
        return {"skipped": handover.skipped}
    outcome = _run_handler(handover.job, rq_job)
    with open(handover.report_path, "w", encoding="utf-8") as report:
        json.dump(outcome.__dict__, report)  # cut short, it does not parse: no report
    return {"attempt": handover.job.attempts, "outcome": outcome.status, SETTLED_BY_WORKER: True}


def forget_handover(handover: Handover) -> None:
    """Drop a handover whose outcome will not be recorded here (its report file included)."""
    _HANDOVERS.pop(handover.rq_job_id, None)
    if handover.report_path:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(handover.report_path)


def settle_after_horse(handover: Handover, *, how_it_ended: str) -> Job | None:
    """In the worker, once the horse is gone: record what it reported, or, if it reported
    nothing (killed, stopped, crashed), a failed attempt saying how it ended. Every write is
    conditional on the attempt, so a settle that reconcile got to first is left alone."""
    job = handover.job
    outcome = None
    if job is not None:
        with (
            contextlib.suppress(FileNotFoundError, ValueError),  # no report, or a partial one
            open(handover.report_path, encoding="utf-8") as report,
        ):
            outcome = Outcome(**json.load(report))
    forget_handover(handover)
    if job is None:
        return None
    if outcome is not None:
        return _record(job, outcome, dispatch_retry=True)
    parked = park_if_parent(job)
    if parked is not None:  # its children carry the work: nothing of it died
        return parked
    kind = None
    with contextlib.suppress(UnknownJobKind):
        kind = get_kind(job.kind)
    return record_failure(
        job,
        message=f"Worker died: work horse {how_it_ended} while running attempt {job.attempts}",
        kind=kind,
        expect_attempt=job.attempts,
    )


def _hand_back(job_id, rq_job) -> None:
    """Sent before the pause: hand it back undispatched; resuming the queue sends it again."""
    Job.objects.filter(
        pk=job_id, rq_job_id=rq_job.id, state__in=(JobState.PENDING, JobState.RETRYING)
    ).update(dispatched_at=None, rq_job_id="")


def _wait_out_debounce(rq_job) -> None:
    """A debounced delivery (``dispatch(debounce=...)``) is claimed no earlier than its time:
    until then the row stays pending and keeps absorbing the requests that merge into it.
    Bounded by ``MAX_WORKER_DEBOUNCE``, whatever the meta says (clocks of two machines)."""
    not_before = (rq_job.meta or {}).get(NOT_BEFORE)
    if not_before:
        wait = min(float(not_before) - time.time(), MAX_WORKER_DEBOUNCE)
        if wait > 0:
            time.sleep(wait)  # the window itself: nothing to wait on but the clock


def _paused(rq_job) -> bool:
    """Is the delivery's queue paused? Asked on the RQ job's own connection: a new Redis
    client per job (``queue_paused``) cost a TCP connect and handshake, more than the rest of a
    no-op job's ledger work. False when Redis cannot be asked (nothing can run then)."""
    try:
        return paused_on(rq_job.connection, rq_job.origin)
    except Exception:
        logger.warning(
            "Could not ask Redis whether queue %s is paused", rq_job.origin, exc_info=True
        )
        return False


def _drop_broken_connections() -> None:
    """Close only connections that saw an error and fail a health check.

    Not ``close_old_connections``: with ``CONN_MAX_AGE = 0`` it closes every connection, so a
    worker that runs jobs in its own process (``JobsSimpleWorker``) would open a fresh one per
    job. A forking worker's horse starts without one anyway (hidden across the fork).
    """
    for conn in connections.all(initialized_only=True):
        if conn.connection is not None and conn.errors_occurred:
            if conn.is_usable():
                conn.errors_occurred = False
            else:
                conn.close()


def run_inline(job: Job) -> Job:
    """Run ``job`` in this process through the same runner (``--sync``; no Redis needed).

    Retries happen inline too, without the backoff wait, until the job settles. A parent's
    children run here too, one after the other (there may be no worker at all).
    """
    worker = _local_name(prefix="inline")
    while True:
        claimed, _skipped = _claim(job.pk, worker_name=worker, rq_job_id="")
        if claimed is None:
            job.refresh_from_db()
            if not job.is_settled and job.state == JobState.RUNNING:
                # A worker got it first (it was dispatched too): wait for that run instead.
                return wait_for_job(job.pk, timeout=get_kind(job.kind).timeout + 60)
            return job
        job = _execute(claimed, None, inline=True)
        if job.state == JobState.RUNNING:  # a parent awaiting its children
            return _run_children_inline(job)
        if job.state != JobState.RETRYING:
            return job


def _run_children_inline(parent: Job) -> Job:
    """Run a parked parent's unfinished children here, batch 1 first. Each child's settle
    counts it on the parent (the same hook as in a worker); one read of the parent's state per
    child tells whether it settled (stop on error, a cancel)."""
    waiting = ordered_children(parent.pk).filter(state__in=(JobState.PENDING, JobState.RETRYING))
    for child_id, due in list(waiting.values_list("pk", "next_attempt_at")):
        if due is not None:
            # A batch waiting out its retry's backoff runs when it is due, not before.
            time.sleep(max(0.0, (due - timezone.now()).total_seconds()))
        run_inline(Job(pk=child_id))
        if Job.objects.filter(pk=parent.pk, state__in=SETTLED_STATES).exists():
            break
    check_parent(parent.pk)  # one recount: a hook that failed here is made good at once
    return Job.objects.get(pk=parent.pk)


def _on_settle(row: Job) -> None:
    """A settled child tells its parent (after the commit, so the parent sees it settled)."""
    if row.parent_id and row.state in SETTLED_STATES:
        transaction.on_commit(lambda: child_settled(row))


def _local_name(prefix: str = "local") -> str:
    return f"{prefix}@{socket.gethostname()}:{os.getpid()}"


def _claim(job_id, *, worker_name: str, rq_job_id: str) -> tuple[Job | None, str]:
    """Mark the row running. Returns (job, "") or (None, why it was skipped).

    One conditional ``UPDATE … RETURNING`` claims it and reads it back; only a claim that
    misses takes the locked path below to find out why (cancelled, settled, superseded).
    """
    connection = connections[Job.objects.db]
    if not connection.features.has_select_for_update_skip_locked:
        # SQLite: no row locks to wait on (a statement waiting for the write lock dies with its
        # process), so one autocommit statement is the claim.
        claimed = _claim_statement(job_id, worker_name=worker_name, rq_job_id=rq_job_id)
    else:
        # PostgreSQL: one autocommit statement that never waits on a row lock (SKIP LOCKED).
        # Only a row someone holds locked (a merge into it, a cancel) takes the transaction:
        # a horse killed while its UPDATE waits on a row lock never sends the COMMIT, so its
        # claim is rolled back (in autocommit PostgreSQL would still apply it once the lock
        # frees, leaving a row "running" on a dead horse). BEGIN / COMMIT are two round trips
        # more per job, so only there.
        claimed = try_claim(job_id, worker_name=worker_name, rq_job_id=rq_job_id)
        if claimed is None:
            with transaction.atomic():
                claimed = _claim_statement(job_id, worker_name=worker_name, rq_job_id=rq_job_id)
    if claimed is not None:
        return claimed, ""
    return None, _why_not_claimed(job_id, rq_job_id=rq_job_id)


def try_claim(job_id, *, worker_name: str, rq_job_id: str) -> Job | None:
    """The claim, if it can be had at once: on PostgreSQL a row someone holds locked is skipped
    (``FOR UPDATE SKIP LOCKED``) rather than waited for. None when it was not claimed, for
    whatever reason (``_claim`` finds out which)."""
    skip_locked = connections[Job.objects.db].features.has_select_for_update_skip_locked
    return _claim_statement(
        job_id, worker_name=worker_name, rq_job_id=rq_job_id, skip_locked=skip_locked
    )


def _claim_statement(
    job_id, *, worker_name: str, rq_job_id: str, skip_locked: bool = False
) -> Job | None:
    """The claim's one ``UPDATE … RETURNING``: the row as it is after the UPDATE, or None.

    Written out rather than built with ``QuerySet.update``: compiling the ORM's UPDATE and
    converting its RETURNING row cost about 1 ms per job, several times the statement itself
    (see ``bench/bench_jobs.py``). The SQL text is made once per database and kept."""
    connection = connections[Job.objects.db]
    inline = not rq_job_id
    sql = _claim_sql(connection, inline=inline, skip_locked=skip_locked)
    pk, now = _pk_param(job_id, connection), _datetime_param(timezone.now(), connection)
    # An inline run (``--sync``, a bulk parent running a child) gets an id of its own: any RQ
    # copy of the row is then superseded, and reconcile knows to judge this run by its
    # heartbeat alone (there is no RQ job or RQ worker to ask).
    new_rq_id = f"{INLINE_PREFIX}{job_id}-" if inline else rq_job_id
    params = [JobState.RUNNING, now, now, worker_name[:255], "", new_rq_id, pk]
    params += [JobState.PENDING, JobState.RETRYING]
    if not inline:
        # An older delivery of this row (a re-dispatch replaced it) must not run.
        params += [rq_job_id, ""]
    if skip_locked:
        params.append(pk)
    with connection.cursor() as cursor:
        if not connection.features.can_return_columns_from_insert:  # SQLite < 3.35
            cursor.execute(sql, params)
            return Job.objects.filter(pk=job_id).first() if cursor.rowcount else None
        cursor.execute(sql, params)
        found = cursor.fetchone()
    return _job_from_row(connection, found) if found else None


# Per database alias and vendor: the claim's SQL text by (inline, skip_locked), and the
# RETURNING columns' converters.
_SQL_CACHE: dict[tuple, str] = {}
_CONVERTERS: dict[str, list] = {}


def _claim_sql(connection, *, inline: bool, skip_locked: bool) -> str:
    key = (connection.alias, connection.vendor, "claim", inline, skip_locked)
    if key in _SQL_CACHE:
        return _SQL_CACHE[key]
    q = connection.ops.quote_name
    table, pk = q(Job._meta.db_table), q(Job._meta.pk.column)
    rq_id = q("rq_job_id")
    # The new attempt's number is attempts + 1: SET expressions read the row before the UPDATE.
    new_rq_id = f"%s || CAST({q('attempts')} + 1 AS TEXT)" if inline else "%s"
    sql = (
        f"UPDATE {table} SET {q('state')} = %s, {q('attempts')} = {q('attempts')} + 1, "
        f"{q('started_at')} = %s, {q('heartbeat_at')} = %s, {q('worker_name')} = %s, "
        f"{q('next_attempt_at')} = NULL, {q('progress')} = 0, {q('progress_message')} = %s, "
        f"{rq_id} = {new_rq_id} "
        f"WHERE {pk} = %s AND {q('state')} IN (%s, %s) AND NOT {q('cancel_requested')}"
    )
    if not inline:
        sql += f" AND ({rq_id} = %s OR {rq_id} = %s)"
    if skip_locked:
        sql += f" AND {pk} IN (SELECT {pk} FROM {table} WHERE {pk} = %s FOR UPDATE SKIP LOCKED)"
    if connection.features.can_return_columns_from_insert:
        columns = ", ".join(q(field.column) for field in Job._meta.concrete_fields)
        sql += f" RETURNING {columns}"
    _SQL_CACHE[key] = sql
    return sql


def _job_from_row(connection, row) -> Job:
    """A ``Job`` from a RETURNING row of every concrete column, converted as a SELECT of the
    columns would be (SQLite: datetimes, UUIDs, booleans from text and integers; JSON fields on
    both)."""
    key = f"{connection.alias}:{connection.vendor}"
    converters = _CONVERTERS.get(key)
    if converters is None:
        converters = []
        for field in Job._meta.concrete_fields:
            col = field.get_col(Job._meta.db_table)
            found = (*connection.ops.get_db_converters(col), *col.get_db_converters(connection))
            converters.append((col, found))
        _CONVERTERS[key] = converters
    values = []
    for value, (col, found) in zip(row, converters, strict=True):
        for convert in found:
            value = convert(value, col, connection)
        values.append(value)
    return Job.from_db(connection.alias, _ATTNAMES, values)


_ATTNAMES = [field.attname for field in Job._meta.concrete_fields]


def _pk_param(job_id, connection):
    pk = Job._meta.pk
    return pk.get_db_prep_value(pk.to_python(job_id), connection)


def _datetime_param(value, connection):
    return Job._meta.get_field("started_at").get_db_prep_value(value, connection)


def _why_not_claimed(job_id, *, rq_job_id: str) -> str:
    with transaction.atomic():
        job = Job.objects.select_for_update().filter(pk=job_id).first()
        if job is None:
            return "vanished from the ledger"
        if job.state not in (JobState.PENDING, JobState.RETRYING):
            return f"state is {job.state}"
        if job.cancel_requested:
            _settle(job, JobState.CANCELLED, message="Cancelled before it started")
            _on_settle(job)
            return "cancelled before it started"
        return f"superseded by RQ job {job.rq_job_id}"


def _execute(job: Job, rq_job, *, inline: bool = False) -> Job:
    return _record(job, _run_handler(job, rq_job), dispatch_retry=not inline)


@dataclass
class Outcome:
    """How one run of a handler ended, as plain data: a forked work horse hands it to its
    worker, which records it (see :class:`Handover`)."""

    # "ok", "await" (a parent waiting for its children), "cancelled", "error", "superseded"
    # (the attempt is no longer the row's current one: nothing to record)
    status: str
    result: Any = None  # JSON-ready (ok, cancelled)
    message: str = ""  # error: "ExcType: text"
    traceback: str = ""


def _run_handler(job: Job, rq_job) -> Outcome:
    ctx = JobContext(job, rq_job)
    heartbeats = _Heartbeats.get()
    heartbeats.watch(ctx)
    try:
        kind = get_kind(job.kind)
        result = kind.run(ctx, dict(job.payload or {}))
        if isinstance(result, AwaitChildren):
            return Outcome("await")
        if result is not None:
            result = _jsonable(result)
    except AttemptSuperseded:
        return Outcome("superseded")
    except JobCancelled:
        return Outcome("cancelled")
    except Exception as exc:
        return Outcome(
            "error", message=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc()
        )
    finally:
        heartbeats.unwatch(ctx)
    return Outcome("cancelled" if ctx.cancel_seen else "ok", result)


def _record(job: Job, outcome: Outcome, *, dispatch_retry: bool) -> Job:
    """Store the outcome of ``job``'s current attempt (each write conditional on it)."""
    if outcome.status == "superseded":
        return Job.objects.filter(pk=job.pk).first() or job
    if outcome.status == "await":
        return park(job)
    if outcome.status == "ok":
        return _finish(job, outcome.result)
    if outcome.status == "cancelled":
        return _finish_cancelled(job, outcome.result)
    kind = None
    with contextlib.suppress(UnknownJobKind):
        kind = get_kind(job.kind)
    return record_failure(
        job,
        message=outcome.message,
        tb=outcome.traceback,
        kind=kind,
        dispatch_retry=dispatch_retry,
    )


def _jsonable(value: Any) -> Any:
    # Decimals, dates and UUIDs in a result become strings, like in an API response.
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder))


def _finish(job: Job, result: Any) -> Job:
    now = timezone.now()
    # One conditional UPDATE: if reconcile settled this attempt meanwhile, it wins. Written out
    # like the claim's (the ORM's compile cost more than the statement).
    connection = connections[Job.objects.db]
    params = [
        JobState.COMPLETED,
        Job._meta.get_field("result").get_db_prep_save(result, connection),
        _datetime_param(now, connection),
        _pk_param(job.pk, connection),
        JobState.RUNNING,
        job.attempts,
    ]
    with connection.cursor() as cursor:
        cursor.execute(_finish_sql(connection), params)
        settled = cursor.rowcount
    if not settled:
        return Job.objects.get(pk=job.pk)
    # No read back: the row is what this UPDATE made it (progress messages were written by the
    # handler's context, which keeps them on ``job`` too).
    job.state, job.result, job.progress = JobState.COMPLETED, result, 100
    job.settled_at, job.next_attempt_at = now, None
    _on_settle(job)
    return job


def _finish_sql(connection) -> str:
    key = (connection.alias, connection.vendor, "finish")
    if key not in _SQL_CACHE:
        q = connection.ops.quote_name
        _SQL_CACHE[key] = (
            f"UPDATE {q(Job._meta.db_table)} SET {q('state')} = %s, {q('result')} = %s, "
            f"{q('progress')} = 100, {q('settled_at')} = %s, {q('next_attempt_at')} = NULL "
            f"WHERE {q(Job._meta.pk.column)} = %s AND {q('state')} = %s AND {q('attempts')} = %s"
        )
    return _SQL_CACHE[key]


def _finish_cancelled(job: Job, result: Any) -> Job:
    with transaction.atomic():
        row = Job.objects.select_for_update().get(pk=job.pk)
        if row.state != JobState.RUNNING or row.attempts != job.attempts:
            return row
        row.result = result
        _settle(row, JobState.CANCELLED, message="Cancelled while running", extra=["result"])
        _on_settle(row)
    return row


def _settle(row: Job, state: str, *, message: str | None = None, extra=()) -> None:
    row.state = state
    row.settled_at = timezone.now()
    row.next_attempt_at = None
    fields = ["state", "settled_at", "next_attempt_at", *extra]
    if message is not None:
        row.progress_message = message[:255]
        fields.append("progress_message")
    row.save(update_fields=fields)


def record_failure(
    job: Job,
    *,
    message: str,
    tb: str = "",
    kind: JobKind | None = None,
    dispatch_retry: bool = True,
    expect_state: str = JobState.RUNNING,
    expect_attempt: int | None = None,
) -> Job:
    """Store a failed attempt; schedule the next one (kind's backoff) or fail for good.

    Used by the runner for handler errors and by the reconciler for dead workers.
    """
    with transaction.atomic():
        row = Job.objects.select_for_update().get(pk=job.pk)
        if row.state != expect_state:
            return row
        # Only the attempt that failed may be recorded (a newer one may be running by now).
        attempt = job.attempts if expect_attempt is None else expect_attempt
        if row.attempts != attempt:
            return row
        now = timezone.now()
        row.errors = [
            *(row.errors or []),
            {
                "attempt": row.attempts,
                "at": now.isoformat(),
                "message": message[:2000],
                "traceback": tb,
                "worker": row.worker_name,
            },
        ]
        retry_possible = kind is not None and row.attempts < row.max_attempts
        if row.cancel_requested or not retry_possible:
            state = JobState.CANCELLED if row.cancel_requested else JobState.FAILED
            _settle(row, state, message=message, extra=["errors"])
            _on_settle(row)
            if state == JobState.FAILED:
                transaction.on_commit(lambda: _mail_admins_failed(row))
            return row
        assert kind is not None  # retry_possible said so
        delay = kind.backoff_for(row.attempts) if dispatch_retry else 0
        row.state = JobState.RETRYING
        row.next_attempt_at = now + timedelta(seconds=delay)
        row.dispatched_at = None
        row.progress_message = f"Attempt {row.attempts} failed; retry in {delay}s"[:255]
        row.save(
            update_fields=[
                "state",
                "errors",
                "next_attempt_at",
                "dispatched_at",
                "progress_message",
            ]
        )
        if dispatch_retry:
            row_id = row.pk
            transaction.on_commit(lambda: dispatch(row_id, delay=delay))
    return row


def _mail_admins_failed(job: Job) -> None:
    """Tell the site admins (settings.ADMINS) that a job failed for good."""
    last = (job.errors or [{}])[-1]
    target = f" on {job.target_type} {job.target_label or job.target_id}" if job.target_id else ""
    body = (
        f"Job {job.pk} ({job.kind}{target}) failed after {job.attempts} attempt(s).\n\n"
        f"Last error: {last.get('message', '')}\n\n{last.get('traceback', '')}\n"
        f"Retry it from System > Jobs or with: manage.py jobs retry {job.pk}\n"
    )
    try:
        mail_admins(f"Job failed: {job.kind}{target}", body, fail_silently=True)
    except Exception:  # mail trouble must never break the runner
        logger.warning("Could not mail admins about failed job %s", job.pk, exc_info=True)


def record_undelivered(
    job_id, *, rq_job_id: str, message: str, worker_name: str = ""
) -> Job | None:
    """A delivery that RQ failed before the runner claimed the row (the horse was killed at
    start-up, its worker died): counted as a failed attempt with RQ's reason, then retried by
    the kind's policy or failed for good. Only while that delivery is still the row's current
    one and nobody claimed it; returns the row, or None when nothing was recorded."""
    with transaction.atomic():
        row = Job.objects.select_for_update().filter(pk=job_id).first()
        if row is None or row.state not in (JobState.PENDING, JobState.RETRYING):
            return None
        if row.rq_job_id != rq_job_id or row.cancel_requested:
            return None
        row.state = JobState.RUNNING
        row.attempts += 1
        row.started_at = row.heartbeat_at = timezone.now()
        row.worker_name = worker_name[:255]
        row.save(update_fields=["state", "attempts", "started_at", "heartbeat_at", "worker_name"])
        kind = None
        with contextlib.suppress(UnknownJobKind):
            kind = get_kind(row.kind)
        return record_failure(row, message=message, kind=kind, expect_attempt=row.attempts)
