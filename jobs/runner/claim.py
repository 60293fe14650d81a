"""The claim: mark a ledger row running for this attempt, or say why it is not run.

A delivery is run only while its row is pending or retrying, not asked to cancel, and this very
delivery is the row's current one (a re-dispatch replaced an older one). One conditional
statement claims it and reads it back; only a claim that misses takes the locked path to find
out why (cancelled, settled, superseded).

The fast path, kept because ``bench/bench_jobs.py`` ("claim + finish") shows why: the statement
is written out (``claim_statement``), not built with ``QuerySet.update``. The ORM cannot return
the updated row (Django 5.2), so its claim is an UPDATE and a SELECT, and on PostgreSQL a
transaction around the ``SKIP LOCKED`` subquery: per claim, median 0.14 ms written out against
1.00 ms through the ORM on SQLite (7x), 4.3 ms against 9.7 ms on PostgreSQL (2.3x; a machine at
load 8). Every other write of the runner goes through the ORM (the finish did too: +0.2 ms).
"""

from __future__ import annotations

from typing import Any

from django.db import connections, transaction
from django.utils import timezone

from jobs.liveness import INLINE_PREFIX
from jobs.models import Job, JobState
from jobs.runner.settle import on_settle, settle_row

# The claim's SQL text by (database alias, vendor, inline, skip_locked): made once.
_SQL_CACHE: dict[tuple, str] = {}


def claim(job_id: Any, *, worker_name: str, rq_job_id: str) -> tuple[Job | None, str]:
    """Mark the row running. Returns (job, "") or (None, why it was skipped).

    One conditional ``UPDATE … RETURNING`` claims it and reads it back; only a claim that
    misses takes the locked path below to find out why (cancelled, settled, superseded).
    """
    connection = connections[Job.objects.db]
    if not connection.features.has_select_for_update_skip_locked:
        # SQLite: no row locks to wait on (a statement waiting for the write lock dies with its
        # process), so one autocommit statement is the claim.
        claimed = claim_statement(job_id, worker_name=worker_name, rq_job_id=rq_job_id)
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
                claimed = claim_statement(job_id, worker_name=worker_name, rq_job_id=rq_job_id)
    if claimed is not None:
        return claimed, ""
    return None, why_not_claimed(job_id, rq_job_id=rq_job_id)


def try_claim(job_id: Any, *, worker_name: str, rq_job_id: str) -> Job | None:
    """The claim, if it can be had at once: on PostgreSQL a row someone holds locked is skipped
    (``FOR UPDATE SKIP LOCKED``) rather than waited for. None when it was not claimed, for
    whatever reason (``claim`` finds out which)."""
    skip_locked = connections[Job.objects.db].features.has_select_for_update_skip_locked
    return claim_statement(
        job_id, worker_name=worker_name, rq_job_id=rq_job_id, skip_locked=skip_locked
    )


def why_not_claimed(job_id: Any, *, rq_job_id: str) -> str:
    """Why a claim missed (under the row lock); a row asked to cancel is settled cancelled."""
    with transaction.atomic():
        job = Job.objects.select_for_update().filter(pk=job_id).first()
        if job is None:
            return "vanished from the ledger"
        if job.state not in (JobState.PENDING, JobState.RETRYING):
            return f"state is {job.state}"
        if job.cancel_requested:
            settle_row(job, JobState.CANCELLED, message="Cancelled before it started")
            on_settle(job)
            return "cancelled before it started"
        return f"superseded by RQ job {job.rq_job_id}"


def claim_statement(
    job_id: Any, *, worker_name: str, rq_job_id: str, skip_locked: bool = False
) -> Job | None:
    """The claim's one ``UPDATE … RETURNING``: the row as it is after the UPDATE, or None.

    Phase 1, the text: made once per database alias, vendor and shape (``RETURNING`` where the
    database has it, ``SKIP LOCKED`` where it has row locks) and kept. Phase 2, the parameters:
    prepared by the model's own fields, as the ORM would send them. Phase 3, the row: read
    back by ``RawQuerySet``, which converts it as it would a ``SELECT``'s (+0.17 ms a claim on
    SQLite against converters of our own, kept once: a price paid for no cache of our own).
    """
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
    if not connection.features.can_return_columns_from_insert:  # SQLite < 3.35
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return Job.objects.filter(pk=job_id).first() if cursor.rowcount else None
    # The ORM converts the RETURNING row as it would a SELECT's (``RawQuerySet``).
    found = list(Job.objects.raw(sql, params))
    return found[0] if found else None


def _claim_sql(connection, *, inline: bool, skip_locked: bool) -> str:
    key = (connection.alias, connection.vendor, inline, skip_locked)
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


def _pk_param(job_id, connection):
    pk = Job._meta.pk
    return pk.get_db_prep_value(pk.to_python(job_id), connection)


def _datetime_param(value, connection):
    return Job._meta.get_field("started_at").get_db_prep_value(value, connection)
