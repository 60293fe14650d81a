"""The engine's SQL dialect: which databases it runs on, ids as one parameter, money as
scaled integers, and values adapted for a write.

Money is read as integers of 10⁻⁴ (every money column has 4 decimal places): exact on
PostgreSQL's numeric and on SQLite, which stores decimals as floats (15 significant digits
round-trip, and these columns hold at most 14).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from functools import lru_cache

from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.db.models import Model
from django.utils.dateparse import parse_datetime

MONEY_PLACES = 4
MONEY_SCALE = 10**MONEY_PLACES


class UnsupportedDatabase(ImproperlyConfigured):
    """The engine's SQL runs on PostgreSQL and SQLite ≥ 3.33 only."""


def require_supported_database() -> None:
    """Refuse other backends clearly: the SQL here needs ``UPDATE … FROM`` (SQLite 3.33) and
    ``json_each`` (which Django's JSONField needs anyway), or PostgreSQL."""
    if connection.vendor == "postgresql":
        return
    if connection.vendor == "sqlite" and sqlite3.sqlite_version_info >= (3, 33):
        return
    version = f" {sqlite3.sqlite_version}" if connection.vendor == "sqlite" else ""
    raise UnsupportedDatabase(
        f"Bundle evaluation needs PostgreSQL or SQLite ≥ 3.33, not {connection.vendor}{version}."
    )


def is_postgresql() -> bool:
    return connection.vendor == "postgresql"


def table(model: type[Model]) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def scaled_money_sql(expr: str) -> str:
    """SQL for ``expr`` (a decimal money column) as an integer number of 10⁻⁴ units."""
    if is_postgresql():
        return f"ROUND(({expr}) * {MONEY_SCALE})::bigint"
    return f"CAST(ROUND(({expr}) * {MONEY_SCALE}) AS INTEGER)"


def money_from_scaled(scaled: int | None) -> Decimal | None:
    return None if scaled is None else Decimal(int(scaled)).scaleb(-MONEY_PLACES)


# A catalog's rules repeat a few values (10 % off, 5.00 off): each is made a Decimal once.
@lru_cache(maxsize=4096)
def rule_value_from_scaled(scaled: int) -> Decimal:
    """A rule's value (never NULL) from 10⁻⁴ units."""
    return Decimal(int(scaled)).scaleb(-MONEY_PLACES)


def scaled_from_money(amount: Decimal | None) -> int | None:
    return None if amount is None else int(amount.scaleb(MONEY_PLACES))


def aware(value: object) -> datetime | None:
    """SQLite hands back naive UTC datetimes (or text); PostgreSQL aware ones."""
    if value is None:
        return None
    if not isinstance(value, datetime):
        parsed = parse_datetime(str(value))
        if parsed is None:
            raise ValueError(f"Not a datetime from the database: {value!r}")
        value = parsed
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def id_list_sql() -> str:
    """The body of ``x IN (…)`` for ``id_list_params(ids)``: one parameter for the whole list."""
    if is_postgresql():
        return "SELECT unnest(string_to_array(%s, ',')::bigint[])"
    return "SELECT value FROM json_each(%s)"


def id_list_params(ids: Sequence[int]) -> list[str]:
    # One text parameter, not one per id: psycopg's list dumper checks every element in
    # Python (a tenth of a catalog recompute's client time), and Django's SQLite cursor
    # rewrites every ``%s`` of a statement with a regular expression.
    if is_postgresql():
        return [",".join(map(str, map(int, ids)))]
    return [json.dumps(list(map(int, ids)))]


def stamp(now: datetime) -> str | None:
    """``now`` adapted for this database; on PostgreSQL as ISO text, which both the JSON rows
    and a ``%s`` parameter take (no isoformat per row)."""
    value = connection.ops.adapt_datetimefield_value(now)
    return value.isoformat() if isinstance(value, datetime) else value


def price_param(price: Decimal | None) -> str | None:
    """A price as the text both databases parse back exactly (no per-row JSON ``default``)."""
    return None if price is None else str(price)
