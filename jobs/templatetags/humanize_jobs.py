"""Small filters for the jobs admin templates."""

from __future__ import annotations

from datetime import UTC

from django import template
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.html import format_html

register = template.Library()


@register.filter
def thousands(value) -> str:
    """1234567 → "1,234,567" (without loading django.contrib.humanize)."""
    try:
        return f"{int(value):,}"
    except (TypeError, ValueError):
        return "" if value is None else str(value)


@register.filter
def age(seconds) -> str:
    """A number of seconds in words with seconds kept: "27 s", "3 min 04 s", "2 h 05 min"."""
    if seconds is None or seconds == "":
        return "—"
    total = int(float(seconds))
    if total < 120:
        return f"{float(seconds):.0f} s" if total >= 10 else f"{float(seconds):.1f} s"
    if total < 3600:
        return f"{total // 60} min {total % 60:02d} s"
    if total < 86400:
        return f"{total // 3600} h {total % 3600 // 60:02d} min"
    return f"{total // 86400} d {total % 86400 // 3600:02d} h"


@register.filter
def since(value, now) -> str:
    """How long ago ``value`` (a datetime) was, relative to ``now``: "12 s"."""
    if value is None or now is None:
        return "—"
    return age((now - value).total_seconds())


@register.filter
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


@register.filter
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
