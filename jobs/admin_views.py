"""Helpers and extra pages of System → Jobs: audit entries, quick actions, the SVG chart,
cron in words, the job timeline.

The views themselves are methods of ``JobAdmin`` (``jobs/admin.py``) so they go through
``admin_site.admin_view``; what they compute lives here and in ``jobs.selectors``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from django.contrib.admin.models import ADDITION, CHANGE, LogEntry
from django.urls import reverse
from django.utils.dateparse import parse_datetime
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from jobs.models import Job, JobState
from jobs.selectors import HourBucket

# --- audit --------------------------------------------------------------------------------------


def audit_jobs(*, user, jobs: Iterable[Job], message: str, added: bool = False) -> None:
    """Admin log entries saying who did what to these jobs (shown on the job page)."""
    jobs = [j for j in jobs if j is not None]
    if not jobs or not getattr(user, "is_authenticated", False):
        return
    LogEntry.objects.log_actions(
        user_id=user.pk,
        queryset=jobs,
        action_flag=ADDITION if added else CHANGE,
        change_message=message,
        single_object=len(jobs) == 1,
    )


def jobs_changelist_url(*, ids: Iterable | None = None, **params: str) -> str:
    """System → Jobs filtered to exactly these jobs (``?id__in=…``) or by the given params."""
    from urllib.parse import urlencode

    url = reverse("admin:jobs_job_changelist")
    query = dict(params)
    if ids is not None:
        query["id__in"] = ",".join(str(i) for i in ids)
    return f"{url}?{urlencode(query)}" if query else url


# Past this many ids a ``?id__in=`` link grows beyond what servers accept in a URL.
MAX_IDS_IN_LINK = 50


def jobs_queued_message(jobs: list[Job], *, what: str) -> SafeString:
    """ "N jobs queued" with a link to the list of exactly those jobs.

    A large bulk job (its parent and many batch jobs) links to the parent's page instead, which
    lists every batch with their combined progress.
    """
    unique = list({j.pk: j for j in jobs}.values())
    n = len(unique)
    url = jobs_changelist_url(ids=[j.pk for j in unique])
    roots = [j for j in unique if j.parent_id is None]
    if n > MAX_IDS_IN_LINK and len(roots) == 1:
        root = roots[0]
        if all(j.parent_id == root.pk for j in unique if j is not root):
            url = reverse("admin:jobs_job_change", args=[root.pk])
    return format_html(
        '{}: {} job{} queued. <a href="{}">See {} in System → Jobs</a>.',
        what,
        n,
        "" if n == 1 else "s",
        url,
        "it" if n == 1 else "them",
    )


def deny_unpermitted_action(model_admin, request) -> None:
    """Raise 403 when the POSTed action exists but this user may not run it.

    Django's default answers "No action selected" with a redirect; a 403 says what happened.
    """
    from django.core.exceptions import PermissionDenied

    if request.method != "POST" or "action" not in request.POST:
        return
    name = request.POST.get("action", "")
    known = {n for _f, n, _d in model_admin._get_base_actions()}
    if name in known and name not in model_admin.get_actions(request):
        raise PermissionDenied


# --- quick actions (buttons on the jobs page) ---------------------------------------------------


@dataclass(frozen=True)
class QuickAction:
    slug: str
    label: str
    description: str
    run: Callable[..., list[Job]]  # run(user=...) -> the jobs it queued
    # Needed besides jobs.run_schedule: the same permission the operation needs from any other
    # door (the bundle admin's actions, GraphQL), so the jobs page is not a way around it.
    permissions: tuple[str, ...] = ()

    def allowed(self, user) -> bool:
        return user.has_perm("jobs.run_schedule") and all(
            user.has_perm(p) for p in self.permissions
        )


_QUICK_ACTIONS: dict[str, QuickAction] = {}


def register_quick_action(action: QuickAction) -> None:
    """Apps add buttons to the jobs page (bundles: checks and recompute all)."""
    _QUICK_ACTIONS[action.slug] = action


def quick_actions(*, user=None) -> list[QuickAction]:
    """All quick actions, or those ``user`` may run."""
    return [a for a in _QUICK_ACTIONS.values() if user is None or a.allowed(user)]


def get_quick_action(slug: str) -> QuickAction | None:
    return _QUICK_ACTIONS.get(slug)


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
    for frac in (0, 0.5, 1):
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
        label = f"{b.hour:%H}:00 UTC: {b.completed} completed, {b.failed} failed"
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
                    f"{b.hour:%H}h",
                )
            )
    total_ok = sum(b.completed for b in buckets)
    total_bad = sum(b.failed for b in buckets)
    return format_html(
        '<svg class="jobs-chart" viewBox="0 0 {} {}" role="img" aria-label="{}">{}</svg>',
        CHART_W,
        CHART_H,
        f"Jobs per hour over the last {len(buckets)} hours: {total_ok} completed, "
        f"{total_bad} failed",
        mark_safe("".join(parts)),  # noqa: S308 - every part was built with format_html
    )


# --- timeline -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TimelineEvent:
    at: datetime
    label: str
    detail: str = ""
    css: str = ""


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
    for error in job.errors or []:
        at = parse_datetime(error.get("at") or "")
        if at:
            first_line = (error.get("message") or "").strip().splitlines()[:1]
            events.append(
                TimelineEvent(
                    at,
                    f"Attempt {error.get('attempt', '?')} failed",
                    first_line[0] if first_line else "",
                    "failed",
                )
            )
    if job.started_at:
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
        css = {JobState.COMPLETED: "completed", JobState.FAILED: "failed"}.get(job.state, "")
        events.append(
            TimelineEvent(job.settled_at, job.get_state_display(), job.progress_message, css)
        )
    return sorted(events, key=lambda e: e.at)


def pretty_json_html(value) -> SafeString:
    import json

    from django.core.serializers.json import DjangoJSONEncoder

    if value is None or value == {} or value == []:
        return format_html('<span class="quiet">{}</span>', "—")
    text = json.dumps(value, indent=2, sort_keys=True, cls=DjangoJSONEncoder, ensure_ascii=False)
    return format_html('<pre class="jobs-json">{}</pre>', text)


def definition_list(rows: Iterable[tuple[str, str]]) -> SafeString:
    return format_html_join("", "<dt>{}</dt><dd>{}</dd>", rows)
