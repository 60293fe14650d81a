"""The hot path's two hand-written statements: the claim (``UPDATE … RETURNING``) and the finish.

Kept written out because ``bench/bench_jobs.py`` shows why (2026-12-07, a 2-core machine
shared with other work; medians). The ORM cannot return the updated row (Django 5.2): its claim
is an UPDATE and a SELECT (and on PostgreSQL a transaction around the ``SKIP LOCKED``
subquery). Per job, claim + finish: 0.23 ms written out against 1.38 ms through the ORM on
SQLite (claim 7x, finish 3.5x), 8.3 ms against 15.6 ms on PostgreSQL at load 8 (claim 2.3x,
finish 1.2x). In the runner, CPU per no-op job (``run_inline``, SQLite): 0.36 ms as here;
0.69 ms with the finish through ``QuerySet.update``; 0.58 ms with the claim's row read back by
``RawQuerySet`` instead of the converters below; 0.94 ms with both (2.6x).

Phase 1, the text: made once per database alias and vendor (quoted names, ``RETURNING`` where
the database has it, ``SKIP LOCKED`` where it has row locks) and kept in ``_SQL_CACHE``.
Phase 2, the parameters: prepared by the model's own fields (``get_db_prep_value``), so a
datetime, a UUID or a JSON result reaches the database exactly as the ORM would send it.
Phase 3, the row read back: converted by the same converters a ``SELECT`` of the columns would
use (SQLite: datetimes, UUIDs, booleans; JSON on both), looked up once and kept in
``_CONVERTERS``, then made a ``Job`` by ``Model.from_db``.

What it does not do: anything but these two statements; every other write of the runner goes
through the ORM.
"""

from __future__ import annotations

from typing import Any

from django.db import connections
from django.utils import timezone

from jobs.liveness import INLINE_PREFIX
from jobs.models import Job, JobState

# Per database alias and vendor: the statement text by (kind, inline, skip_locked), and the
# RETURNING columns' converters.
_SQL_CACHE: dict[tuple, str] = {}
_CONVERTERS: dict[str, list] = {}
_ATTNAMES = [field.attname for field in Job._meta.concrete_fields]


def claim_statement(
    job_id: Any, *, worker_name: str, rq_job_id: str, skip_locked: bool = False
) -> Job | None:
    """The claim's one ``UPDATE … RETURNING``: the row as it is after the UPDATE, or None."""
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


def finish_statement(job: Job, result: Any, *, now) -> bool:
    """Complete ``job``'s current attempt with ``result``: one conditional UPDATE. False when
    the attempt is no longer running (reconcile settled it meanwhile: it wins)."""
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
        return bool(cursor.rowcount)


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


def _pk_param(job_id, connection):
    pk = Job._meta.pk
    return pk.get_db_prep_value(pk.to_python(job_id), connection)


def _datetime_param(value, connection):
    return Job._meta.get_field("started_at").get_db_prep_value(value, connection)
