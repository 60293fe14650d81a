"""Small filters for the jobs admin templates."""

from __future__ import annotations

from django import template

from jobs.timefmt import exact_time, reltime

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


# One format on every page: jobs.timefmt.
register.filter("exact_time", exact_time)
register.filter("reltime", reltime)
