"""Cron lines (5 fields, UTC): check them, find the next run, say them in words.

croniter (already a dependency of rq 3) does the arithmetic and cron-descriptor the words;
rq-scheduler keeps its own parser (``crontab``) for the times it schedules.
"""

from __future__ import annotations

from datetime import UTC, datetime

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


def next_run(cron: str, *, after: datetime | None = None) -> datetime:
    """The next time ``cron`` fires after ``after`` (default now), as an aware UTC datetime."""
    after = (after or datetime.now(UTC)).astimezone(UTC)
    return croniter(cron, after).get_next(datetime).astimezone(UTC)


def in_words(cron: str) -> str:
    """``"0 2 * * *"`` -> ``"At 02:00 UTC"``; a line it cannot read comes back as it is."""
    options = Options()
    options.use_24hour_time_format = True
    try:
        validate(cron)
        words = ExpressionDescriptor(cron, options).get_description()
    except (FormatException, ValueError, KeyError, IndexError):
        return cron
    # Times of day are UTC ("every minute", "15 minutes past the hour" have none).
    if cron.split()[1] != "*":
        words = words.replace(",", " UTC,", 1) if "," in words else f"{words} UTC"
    return words
