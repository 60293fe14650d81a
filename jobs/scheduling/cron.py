"""Cron lines (5 fields, UTC): check them, find the next run, say them in words.

croniter (already a dependency of rq 3) does the arithmetic and cron-descriptor the words;
rq-scheduler keeps its own parser (``crontab``) for the times it schedules.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cron_descriptor import ExpressionDescriptor, FormatException, Options
from croniter import CroniterError, croniter


def validate(cron: str) -> None:
    """Raise ``ValueError`` naming the problem unless ``cron`` is a valid 5-field cron line."""
    if not isinstance(cron, str) or len(cron.split()) != 5:
        raise ValueError("a cron line has 5 fields: minute hour day-of-month month day-of-week")
    try:
        croniter(cron)
    except (CroniterError, ValueError, KeyError) as exc:
        raise ValueError(str(exc)) from exc


def validate_timezone(name: str) -> None:
    """Raise ``ValueError`` unless ``name`` is an IANA time zone (``UTC``, ``Europe/Berlin``)."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError) as exc:
        raise ValueError(f"unknown time zone {name!r} (use an IANA name such as UTC)") from exc


def next_run(cron: str, *, after: datetime | None = None, tz: str = "UTC") -> datetime:
    """The next time ``cron`` (read in ``tz``) fires after ``after`` (default now), in UTC."""
    after = (after or datetime.now(UTC)).astimezone(ZoneInfo(tz))
    return croniter(cron, after).get_next(datetime).astimezone(UTC)


def previous_run(cron: str, *, before: datetime | None = None, tz: str = "UTC") -> datetime:
    """The last time ``cron`` (read in ``tz``) fired at or before ``before`` (default now)."""
    before = (before or datetime.now(UTC)).astimezone(ZoneInfo(tz))
    # croniter's get_prev is strict; a second later makes a fire exactly at ``before`` count.
    return croniter(cron, before + timedelta(seconds=1)).get_prev(datetime).astimezone(UTC)


def in_words(cron: str, tz: str = "UTC") -> str:
    """``"0 2 * * *"`` -> ``"At 02:00 UTC"``; a line it cannot read comes back as it is."""
    options = Options()
    options.use_24hour_time_format = True
    try:
        validate(cron)
        words = ExpressionDescriptor(cron, options).get_description()
    except (FormatException, ValueError, KeyError, IndexError):
        return cron
    # Times of day are in the schedule's zone ("every minute" has none).
    if cron.split()[1] != "*":
        words = words.replace(",", f" {tz},", 1) if "," in words else f"{words} {tz}"
    return words
