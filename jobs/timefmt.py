"""How every page shows a job time: the exact time with seconds, or relative ("3 s ago",
"retry in 27 s") with the exact time on hover. Plain functions, so the admin, the templates'
filters (``jobs.templatetags.humanize_jobs``) and other apps' admins share one format."""

from __future__ import annotations

from datetime import UTC

from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.html import format_html


def exact_time(value) -> str:
    """An ISO string or datetime as "2026-12-01 21:04:05 UTC" (one format on the whole page)."""
    if not value:
        return "—"
    if isinstance(value, str):
        parsed = parse_datetime(value)
        if parsed is None:
            return value
        value = parsed
    if timezone.is_aware(value):
        value = value.astimezone(UTC)
    return f"{value:%Y-%m-%d %H:%M:%S} UTC"


def reltime(value, future: str = "in") -> str:
    """A ``<time>`` saying "3 s ago" / "in 27 s" (``future`` replaces "in": "retry in") with
    the exact time, seconds included, on hover ("2026-12-01 21:04:05 UTC"); ``jobs/live.js``
    keeps it ticking. One format for every job time on every page."""
    if not value:
        return "—"
    if isinstance(value, str):
        value = parse_datetime(value) or value
        if isinstance(value, str):
            return value
    seconds = (timezone.now() - value).total_seconds()
    text = f"{relative(seconds)} ago" if seconds >= 0 else f"{future} {relative(-seconds)}"
    return format_html(
        '<time class="job-rel" datetime="{}" title="{}" data-future="{}">{}</time>',
        value.isoformat(),
        exact_time(value),
        future,
        text,
    )


def relative(seconds: float) -> str:
    """Whole seconds in words, as ``jobs/live.js`` writes them: "27 s", "3 min 04 s"."""
    s = max(0, round(seconds))
    if s < 120:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    if s < 86400:
        return f"{s // 3600} h {s % 3600 // 60:02d} min"
    return f"{s // 86400} d {s % 86400 // 3600:02d} h"
