"""Writing a planned batch: bundles, their shells and search entries, in bulk, on SQLite
(``UPDATE … FROM`` copies from the bundle rows just written) or PostgreSQL (one statement
from one JSON array). Nothing here sends signals, so writing shells never looks like a
catalog change to the receivers that schedule jobs."""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from datetime import datetime

from django.db import connection
from django.db.models import Field, Model
from django.utils import timezone

from .. import integrity
from ..models import Bundle, Product, ProductVariant, SearchEntry
from ..search import refresh_documents
from .evaluate import Outcome
from .plan import Writes, plan
from .sql import id_list_params, id_list_sql, is_postgresql, price_param, stamp, table

# The columns a recompute writes.
BUNDLE_FIELDS = [
    "computed_price",
    "computed_availability",
    "no_saving",
    "status",
    "status_before_broken",
    "broken_reasons",
    "last_recomputed_at",
    "updated_at",
]
# A bundle whose status and reasons stay: only its values and times.
_BUNDLE_VALUE_FIELDS = [
    "computed_price",
    "computed_availability",
    "no_saving",
    "last_recomputed_at",
    "updated_at",
]
ENTRY_FIELDS = ["title", "sku", "body", "price", "availability", "status", "indexed_at"]


def _json_value(value: object) -> object:
    """Decimals and datetimes as the text PostgreSQL parses back exactly."""
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _column(model: type[Model], name: str) -> Field:
    """``model``'s concrete field ``name`` (the engine writes only columns, never a relation's
    reverse side or a generic key)."""
    field = model._meta.get_field(name)
    assert isinstance(field, Field), f"{model.__name__}.{name} is not a column"
    return field


def _db_type(field: Field) -> str:
    kind = field.db_type(connection)
    assert kind is not None, f"{field} has no column type"  # a concrete column always has one
    return kind


def bulk_update(model: type[Model], fields: Sequence[str], rows: list[list]) -> None:
    """``UPDATE`` these columns of many rows (each row: values of ``fields`` then its pk),
    the engine's one bulk update. Values are already adapted to the database.

    PostgreSQL: one ``UPDATE … FROM json_array_elements(<the rows as JSON>)``; SQLite: one
    ``executemany``. Django's ``bulk_update`` builds a ``CASE WHEN`` per row and field and
    costs milliseconds of Python per row; this costs microseconds.
    """
    if not rows:
        return
    meta = model._meta
    qn = connection.ops.quote_name
    name, pk = qn(meta.db_table), qn(meta.pk.column)
    columns = [_column(model, f) for f in fields]
    with connection.cursor() as cursor:
        if not is_postgresql():
            assignments = ", ".join(f"{qn(f.column)} = %s" for f in columns)
            cursor.executemany(f"UPDATE {name} SET {assignments} WHERE {pk} = %s", rows)
            return
        types = [_db_type(f) for f in [*columns, meta.pk]]
        types = ["bigint" if t == "bigint" or "serial" in t else t for t in types]
        # The rows travel as one JSON array of arrays, unpacked by position: json.dumps is C
        # and the statement stays short whatever the row count (psycopg's array dumper quoted
        # every value in Python: a third of a catalog recompute's time).
        # (a jsonb column's value is already JSON text: ->> hands it to the cast as is)
        values = ", ".join(f"(e->>{i})::{kind}" for i, kind in enumerate(types))
        assignments = ", ".join(f"{qn(f.column)} = v.c{i}" for i, f in enumerate(columns))
        names = ", ".join([*(f"c{i}" for i in range(len(columns))), "pk"])
        sql = (
            f"UPDATE {name} AS t SET {assignments} "
            f"FROM (SELECT {values} FROM json_array_elements(%s::json) AS e) AS v({names}) "
            f"WHERE t.{pk} = v.pk"
        )
        cursor.execute(sql, [json.dumps(rows, default=_json_value)])


def write(
    outcomes: Sequence[Outcome],
    *,
    now: datetime,
    index: bool,
    force: bool = False,
    created: Collection[int] = (),
) -> set[int]:
    """Write what differs (``plan``) for bundles whose shell exists (and, with ``index``,
    whose search entry exists); returns the ids of bundles that changed.

    A shell variant, and a search entry whose text is unchanged, mirror their bundle's new
    values: SQLite copies them from the bundle rows just written (one ``UPDATE … FROM`` per
    table); PostgreSQL writes bundles, shells and entries in one statement from one JSON array.
    """
    w = plan(outcomes, index=index, force=force, created=created)
    at = stamp(now)
    index_at = stamp(timezone.now()) if index else at
    bulk_update(
        Product,
        ["name", "is_bundle_shell", "updated_at"],
        [[o.row.name, True, at, o.row.shell_product_id] for o in w.products],
    )
    if is_postgresql():
        _write_postgresql(w, at, index_at)
    else:
        _write_sqlite(w, at, index_at)
    bulk_update(
        SearchEntry,
        ENTRY_FIELDS,
        [
            [
                o.row.name,
                o.row.sv_sku,
                body,
                price_param(o.price),
                o.availability,
                o.status,
                index_at,
                o.row.entry_id,
            ]
            for o, body in w.rewritten
        ],
    )
    if w.documents:
        refresh_documents(w.documents)
    return w.changed


def _bundle_values(o: Outcome) -> list:
    """A written bundle's price, availability, no-saving flag, status, status before broken
    and reasons, as parameters (the first six of ``BUNDLE_FIELDS``)."""
    reasons = json.dumps(o.broken_reasons) if o.broken_reasons else "[]"
    return [
        price_param(o.price),
        o.availability,
        o.no_saving,
        o.status,
        o.status_before_broken,
        reasons,
    ]


def _write_sqlite(w: Writes, at: str | None, index_at: str | None) -> None:
    bulk_update(
        Bundle,
        BUNDLE_FIELDS,
        [[*_bundle_values(o), at, at, o.row.id] for o in w.stale],
    )
    bulk_update(
        Bundle,
        _BUNDLE_VALUE_FIELDS,
        [
            [price_param(o.price), o.availability, o.no_saving, at, at, o.row.id]
            for o in w.values_only
        ],
    )
    if w.touched:  # recomputed, nothing to change: only the time is stamped
        touched = [o.row.id for o in w.touched]
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table(Bundle)} SET last_recomputed_at = %s WHERE id IN ({id_list_sql()})",
                [at, *id_list_params(touched)],
            )
    for relinked in (False, True):
        _copy_to_shells([o.row.id for o, r in w.shells if r is relinked], at, relink=relinked)
    entries, join = table(SearchEntry), "t.bundle_id = b.id"
    for status_changed in (False, True):
        ids = [o.row.id for o, changed in w.copied if changed is status_changed]
        assignments = f"status = b.status, {_ENTRY_FROM_BUNDLE}" if status_changed else None
        _copy_from_bundles(entries, assignments or _ENTRY_FROM_BUNDLE, join, ids, index_at)


def _write_postgresql(w: Writes, at: str | None, index_at: str | None) -> None:
    """Bundles, their shells and their entries' values in one statement: one JSON array of
    every bundle of the batch, unpacked once, feeding an UPDATE per table (PostgreSQL's
    writable CTEs). Indexed columns may be SET to the value they have: an update stays
    heap-only (HOT) as long as their values do not change."""
    shells = {o.row.id for o, _relink in w.shells}
    copied = {o.row.id for o, _status in w.copied}
    rows = [
        [
            o.row.id,
            *_bundle_values(o),
            what,
            o.row.shell_variant_id,
            o.row.shell_product_id,
            o.row.name,
            o.row.currency,
            o.row.id in shells,
            o.row.id in copied,
        ]
        for what, group in ((2, w.stale), (2, w.values_only), (1, w.touched))
        for o in group
    ]
    if not rows:
        return
    qn = connection.ops.quote_name
    db_type = {
        name: _db_type(_column(Bundle, name))
        for name in ("computed_price", "computed_availability", "broken_reasons")
    }
    bundles, variants, entries = table(Bundle), table(ProductVariant), table(SearchEntry)
    sql = f"""
        WITH v AS MATERIALIZED (
            SELECT (e->>0)::bigint AS pk, (e->>1)::{db_type["computed_price"]} AS price,
                   (e->>2)::{db_type["computed_availability"]} AS avail,
                   (e->>3)::boolean AS no_saving, e->>4 AS status, e->>5 AS before,
                   (e->>6)::{db_type["broken_reasons"]} AS reasons, (e->>7)::integer AS what,
                   (e->>8)::bigint AS shell_id, (e->>9)::bigint AS shell_product,
                   e->>10 AS name, e->>11 AS currency, (e->>12)::boolean AS copy_shell,
                   (e->>13)::boolean AS copy_entry
            FROM json_array_elements(%s::json) AS e
        ),
        written AS (
            UPDATE {bundles} AS t SET {qn("computed_price")} = v.price,
                   {qn("computed_availability")} = v.avail, {qn("no_saving")} = v.no_saving,
                   {qn("status")} = v.status, {qn("status_before_broken")} = v.before,
                   {qn("broken_reasons")} = v.reasons, {qn("last_recomputed_at")} = %s,
                   {qn("updated_at")} = %s
            FROM v WHERE t.id = v.pk AND v.what = 2
        ),
        stamped AS (
            UPDATE {bundles} AS t SET {qn("last_recomputed_at")} = %s FROM v
            WHERE t.id = v.pk AND v.what = 1
        ),
        shells AS (
            UPDATE {variants} AS t SET product_id = v.shell_product, name = v.name,
                   price = COALESCE(v.price, 0), currency = v.currency, stock_on_hand = v.avail,
                   allocated = 0, enabled = (v.status = '{integrity.ACTIVE}'), deleted_at = NULL,
                   updated_at = %s
            FROM v WHERE t.id = v.shell_id AND v.copy_shell
        )
        UPDATE {entries} AS t SET price = v.price, availability = v.avail, status = v.status,
               indexed_at = %s
        FROM v WHERE t.bundle_id = v.pk AND v.copy_entry
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, [json.dumps(rows), at, at, at, at, index_at])


def _copy_from_bundles(
    target: str, assignments: str, join: str, ids: list[int], at: str | None
) -> None:
    """``UPDATE target AS t SET assignments FROM bundles b WHERE join``, for these bundles."""
    if not ids:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {target} AS t SET {assignments} FROM {table(Bundle)} AS b "
            f"WHERE {join} AND b.id IN ({id_list_sql()})",
            [at, *id_list_params(ids)],
        )


# What a shell variant mirrors of its bundle, in SQL.
# SQLite rewrites the entries of every index whose column is SET, even to the same value, so
# the indexed columns (a variant's product, an entry's status) are only SET when they change.
_SHELL_FROM_BUNDLE = (
    "name = b.name, price = COALESCE(b.computed_price, 0), currency = b.currency, "
    "stock_on_hand = b.computed_availability, allocated = 0, "
    f"enabled = (b.status = '{integrity.ACTIVE}'), deleted_at = NULL, updated_at = %s"
)
_ENTRY_FROM_BUNDLE = (
    "price = b.computed_price, availability = b.computed_availability, indexed_at = %s"
)


def _copy_to_shells(bundle_ids: list[int], at: str | None, *, relink: bool) -> None:
    assignments = (
        f"product_id = b.shell_product_id, {_SHELL_FROM_BUNDLE}" if relink else _SHELL_FROM_BUNDLE
    )
    _copy_from_bundles(
        table(ProductVariant), assignments, "t.id = b.shell_variant_id", bundle_ids, at
    )
