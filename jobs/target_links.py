"""A job's links to what it touches (``JobTarget`` rows): the job page, the jobs list's target
filter and GraphQL's ``targetType``/``targetId`` find a job from any of its targets.

Written in bulk: a catalog-wide job links 100,000s of bundles, so the rows travel as one JSON
(SQLite) or array (PostgreSQL) parameter per statement.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper

from jobs.models import Job, JobTarget
from jobs.target_types import Target, TargetIds

LinkRow = tuple[str, str, str]  # (target type, target id, label)


def link_rows(main: Target | None, more: Iterable[Target] | TargetIds) -> list[LinkRow]:
    """The link rows, main first; groups (no id) are not linked. A repeated target is
    skipped by the insert, so the first one (with its label) is kept."""
    rows: list[LinkRow] = []
    if main is not None and main.type and main.id:
        rows.append((main.type[:32], str(main.id)[:64], main.label[:255]))
    if isinstance(more, TargetIds):
        kind = more.type[:32]
        rows.extend((kind, str(i)[:64], "") for i in more.ids)
        return rows
    for item in more:
        target = Target.of(item)
        if target is not None and target.type and target.id:
            rows.append((target.type[:32], str(target.id)[:64], target.label[:255]))
    return rows


def link(job_pk: Any, rows: list[LinkRow], *, fresh: bool = False) -> None:
    """Write ``rows`` as links of the job ``job_pk``."""
    insert_links(((job_pk, row) for row in rows), fresh=fresh)


# Link rows per statement: a catalog-wide job links 100,000s of bundles.
LINKS_PER_STATEMENT = 50_000


def insert_links(links: Iterable[tuple[Any, LinkRow]], *, fresh: bool = False) -> None:
    """Write (job id, target) link rows; one already there is skipped (a merged request may
    name targets its job has). One statement per ``LINKS_PER_STATEMENT`` rows on SQLite and
    PostgreSQL (the rows travel as one JSON / array parameter): ``bulk_create`` compiled SQL
    per row, which cost more than the bundles' own recompute. ``fresh``: the jobs were just
    created, so repeats are dropped here and PostgreSQL skips ``ON CONFLICT``'s probe of the
    unique index before every row (a third of a 100,000-link insert)."""
    connection = connections[JobTarget.objects.db]
    pk_field = Job._meta.pk
    seen: set[tuple] = set()  # a fresh job's targets so far (its rows come one after another)
    current = None
    chunk: list[tuple] = []
    for job_pk, (kind, target_id, label) in links:
        if fresh:
            if job_pk != current:
                current, seen = job_pk, set()
            if (kind, target_id) in seen:
                continue
            seen.add((kind, target_id))
        chunk.append((pk_field.get_db_prep_value(job_pk, connection), kind, target_id, label))
        if len(chunk) >= LINKS_PER_STATEMENT:
            _insert_link_rows(connection, chunk, fresh=fresh)
            chunk = []
    if chunk:
        _insert_link_rows(connection, chunk, fresh=fresh)


def _insert_link_rows(connection: BaseDatabaseWrapper, rows: list[tuple], *, fresh: bool) -> None:
    table = connection.ops.quote_name(JobTarget._meta.db_table)
    columns = "job_id, target_type, target_id, label"
    if connection.vendor == "sqlite":
        sql = (
            f"INSERT OR IGNORE INTO {table} ({columns}) SELECT json_extract(value, '$[0]'), "
            "json_extract(value, '$[1]'), json_extract(value, '$[2]'), "
            "json_extract(value, '$[3]') FROM json_each(%s)"
        )
        params: list[Any] = [json.dumps(rows, default=str)]
    elif connection.vendor == "postgresql":
        sql = (
            f"INSERT INTO {table} ({columns}) SELECT * FROM "
            "unnest(%s::uuid[], %s::varchar[], %s::varchar[], %s::varchar[])"
            + ("" if fresh else " ON CONFLICT DO NOTHING")
        )
        params = [list(column) for column in zip(*rows, strict=True)]
    else:
        JobTarget.objects.bulk_create(
            [JobTarget(job_id=r[0], target_type=r[1], target_id=r[2], label=r[3]) for r in rows],
            ignore_conflicts=True,
        )
        return
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
