"""What the System → Jobs pages display: the SVG chart, cron in words, the job timeline,
pretty JSON.

The views themselves are methods of ``JobAdmin`` (``jobs/admin.py``) so they go through
``admin_site.admin_view``; what they compute lives here and in ``jobs.selectors``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime

from django.contrib.admin.models import LogEntry
from django.core.serializers.json import DjangoJSONEncoder
from django.utils.dateparse import parse_datetime
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

from jobs.audit import audit_jobs  # noqa: F401 (its old import path)
from jobs.models import Job, JobState
from jobs.selectors import HourBucket

# --- chart --------------------------------------------------------------------------------------

CHART_W, CHART_H, CHART_PAD_L, CHART_PAD_B, CHART_PAD_T = 720, 150, 36, 22, 10


def hourly_chart_svg(buckets: list[HourBucket]) -> SafeString:
    """Completed (up) and failed (stacked on top) jobs per hour as a small inline SVG.

    Colours come from CSS classes (``jobs.css``) so the chart follows the admin's theme.
    """
    top = max([b.completed + b.failed for b in buckets] + [1])
    plot_w = CHART_W - CHART_PAD_L - 4
    plot_h = CHART_H - CHART_PAD_B - CHART_PAD_T
    step = plot_w / max(len(buckets), 1)
    bar_w = max(step - 2, 1)
    parts = []
    # The middle grid line only when it has a whole number to show (not "1, 0, 0").
    for frac in (0, 0.5, 1) if top >= 2 else (0, 1):
        y = CHART_PAD_T + plot_h * (1 - frac)
        parts.append(
            format_html(
                '<line class="grid" x1="{}" x2="{}" y1="{}" y2="{}"/>'
                '<text class="axis" x="{}" y="{}" text-anchor="end">{}</text>',
                CHART_PAD_L,
                CHART_W - 4,
                f"{y:.1f}",
                f"{y:.1f}",
                CHART_PAD_L - 4,
                f"{y + 4:.1f}",
                round(top * frac),
            )
        )
    for i, b in enumerate(buckets):
        x = CHART_PAD_L + i * step + 1
        h_ok = plot_h * b.completed / top
        h_bad = plot_h * b.failed / top
        y_ok = CHART_PAD_T + plot_h - h_ok
        y_bad = y_ok - h_bad
        label = f"{b.hour:%Y-%m-%d %H:%M} UTC: {b.completed} completed, {b.failed} failed"
        parts.append(
            format_html(
                '<g><title>{}</title><rect class="completed" x="{}" y="{}" width="{}" '
                'height="{}"/><rect class="failed" x="{}" y="{}" width="{}" height="{}"/></g>',
                label,
                f"{x:.1f}",
                f"{y_ok:.1f}",
                f"{bar_w:.1f}",
                f"{h_ok:.1f}",
                f"{x:.1f}",
                f"{y_bad:.1f}",
                f"{bar_w:.1f}",
                f"{h_bad:.1f}",
            )
        )
        if i % 3 == 0:
            parts.append(
                format_html(
                    '<text class="axis" x="{}" y="{}" text-anchor="middle">{}</text>',
                    f"{x + bar_w / 2:.1f}",
                    CHART_H - 6,
                    f"{b.hour:%H:%M}" if b.hour.minute else f"{b.hour:%H}h",
                )
            )
    total_ok = sum(b.completed for b in buckets)
    total_bad = sum(b.failed for b in buckets)
    return format_html(
        '<svg class="jobs-chart" viewBox="0 0 {} {}" role="img" aria-label="{}">{}</svg>',
        CHART_W,
        CHART_H,
        f"Jobs per interval, {len(buckets)} intervals: {total_ok} completed, {total_bad} failed",
        mark_safe("".join(parts)),  # noqa: S308 - every part was built with format_html
    )


# --- timeline -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TimelineEvent:
    at: datetime
    label: str
    detail: str = ""
    css: str = ""
    after_seconds: float | None = None  # since the previous event


def _with_gaps(events: list[TimelineEvent]) -> list[TimelineEvent]:
    out, previous = [], None
    for event in sorted(events, key=lambda e: e.at):
        gap: float | None = None if previous is None else (event.at - previous).total_seconds()
        out.append(TimelineEvent(event.at, event.label, event.detail, event.css, gap))
        previous = event.at
    return out


def _on(error: dict) -> str:
    return f"on {error['worker']}" if error.get("worker") else ""


def job_timeline(job: Job, audit: list[LogEntry]) -> list[TimelineEvent]:
    """Created, dispatched, each attempt, retries/cancels asked by people, settled — by time."""
    events = [
        TimelineEvent(
            job.created_at,
            "Created",
            f"trigger {job.get_trigger_display().lower()}"
            + (f" by {job.requested_by}" if job.requested_by_id else "")
            + (f" — {job.reason}" if job.reason else ""),
        )
    ]
    if job.dispatched_at:
        events.append(TimelineEvent(job.dispatched_at, "Last dispatched", f"to queue {job.queue}"))
    # Each attempt: its start (recorded with its error; the current one's on the row), then
    # how it ended. Started goes in first, so a tie in time still reads in event order.
    current_started = False
    for error in job.errors or []:
        number = error.get("attempt", "?")
        started = parse_datetime(error.get("started") or "")
        if started:
            events.append(TimelineEvent(started, f"Attempt {number} started", _on(error)))
            current_started |= number == job.attempts
        at = parse_datetime(error.get("at") or "")
        if at:
            first_line = (error.get("message") or "").strip().splitlines()[:1]
            events.append(
                TimelineEvent(
                    at,
                    f"Attempt {number} failed",
                    first_line[0] if first_line else "",
                    "failed",
                )
            )
    if job.started_at and not current_started:
        events.append(
            TimelineEvent(
                job.started_at,
                f"Attempt {job.attempts} started",
                f"on {job.worker_name}" if job.worker_name else "",
            )
        )
    for entry in audit:
        events.append(
            TimelineEvent(
                entry.action_time,
                entry.get_change_message() or "Changed",
                f"by {entry.user}",
                "audit",
            )
        )
    if job.settled_at:
        settled_css: dict[str, str] = {JobState.COMPLETED: "completed", JobState.FAILED: "failed"}
        css = settled_css.get(job.state, "")
        events.append(
            TimelineEvent(job.settled_at, job.get_state_display(), job.progress_message, css)
        )
    return _with_gaps(events)


# Past this many lines, payload and result are collapsed behind a summary.
JSON_OPEN_LINES = 25


def pretty_json_html(value) -> SafeString:
    """Indented JSON; a list of plain values (a batch's 1,000 ids) stays on one wrapped line,
    and anything longer than a screen is collapsed behind a one-line summary."""
    if value is None or value == {} or value == []:
        return format_html('<span class="quiet">{}</span>', "—")
    text = json.dumps(value, indent=2, sort_keys=True, cls=DjangoJSONEncoder, ensure_ascii=False)
    text = _SCALAR_LIST.sub(_one_line, text)
    lines = text.count("\n") + 1
    pre = format_html('<pre class="jobs-json">{}</pre>', text)
    if lines <= JSON_OPEN_LINES and len(text) <= 4000:
        return pre
    return format_html(
        '<details class="jobs-json-long"><summary>{} lines, {} characters — show</summary>{}'
        "</details>",
        lines,
        f"{len(text):,}",
        pre,
    )


# An indented JSON list whose items are all scalars (numbers, strings, true/false/null).
_SCALAR = r'(?:-?\d[\d.eE+-]*|"(?:[^"\\]|\\.)*"|true|false|null)'
_SCALAR_LIST = re.compile(r"\[\n((?:[ ]*" + _SCALAR + r",?\n)+)[ ]*\]")


def _one_line(match: re.Match) -> str:
    items = [line.strip().rstrip(",") for line in match.group(1).splitlines()]
    return "[" + ", ".join(items) + "]"
