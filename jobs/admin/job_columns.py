"""The job admin's columns and read-only detail fields: small HTML bits from one row each (no
query per row: the list selects ``requested_by`` along)."""

from __future__ import annotations

import re

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from jobs import conf, selectors
from jobs.admin.display import pretty_json_html
from jobs.models import ACTIVE_STATES, Job, JobState, QueuePause
from jobs.target_types import target_labels, target_url
from jobs.timefmt import reltime
from jobs.wording import plural


class JobColumns:
    """Mixed into ``JobAdmin``: what ``list_display`` and the fieldsets name."""

    # The job page lists this many linked targets, then says how many more there are.
    SHOWN_TARGETS = 50

    @admin.display(description="id")
    def short_id(self, obj: Job) -> str:
        return str(obj.pk)[:8]

    @admin.display(description="kind", ordering="kind")
    def kind_display(self, obj: Job) -> str:
        # A break chance after each "_" or ".": "consistency_check" takes two short lines.
        parts = re.split(r"(?<=[_.])", obj.kind)
        return format_html(
            '<span class="job-kind" title="queue {}">{}</span>',
            obj.queue,
            format_html_join(mark_safe("<wbr>"), "{}", ((p,) for p in parts)),  # noqa: S308
        )

    @admin.display(description="state", ordering="state")
    def state_and_tries(self, obj: Job) -> str:
        return format_html(
            '{}<span class="job-subline">{} tries{}</span>',
            self.state_badge(obj),
            self.attempts_display(obj),
            self.paused_note(obj),
        )

    def paused_note(self, obj: Job) -> str:
        """ "queue paused" on a job that waits in a paused queue (``in_paused_queue`` is the
        admin queryset's annotation; a job read elsewhere asks the table)."""
        if obj.state not in (JobState.PENDING, JobState.RETRYING):
            return ""
        paused = getattr(obj, "in_paused_queue", None)
        if paused is None:
            paused = QueuePause.objects.filter(queue=obj.queue).exists()
        if not paused:
            return ""
        return format_html(
            ' <span class="job-pill warn job-paused-note" title="Queue {} is paused: the job '
            'waits until it is resumed">queue paused</span>',
            obj.queue,
        )

    @admin.display(description="created", ordering="created_at")
    def created_and_took(self, obj: Job) -> str:
        took = self.duration(obj)
        if took == "—":
            return self.created(obj)
        return format_html('{}<span class="job-subline">took {}</span>', self.created(obj), took)

    @admin.display(description="created", ordering="created_at")
    def created(self, obj: Job) -> str:
        # Relative ("12 s ago", ticking in live.js), the exact time with seconds on hover.
        return reltime(obj.created_at)

    @admin.display(description="target")
    def target_link(self, obj: Job) -> str:
        label = obj.target_label or obj.target_id or "—"
        url = target_url(obj.target_type, obj.target_id)
        if url:
            return format_html(
                '<a class="job-target" href="{}" title="{}">{}</a>', url, label, label
            )
        return format_html('<span class="job-target" title="{}">{}</span>', label, label)

    @admin.display(description="linked targets")
    def linked_targets(self, obj: Job) -> str:
        """Every object the job touches (the link table), each linked to its admin page."""
        links = list(obj.target_links.order_by("pk")[: self.SHOWN_TARGETS + 1])
        if not links:
            return "—"
        shown = links[: self.SHOWN_TARGETS]
        names: dict[str, dict[str, str]] = {}  # unlabeled links, named per type in one call
        for link in shown:
            if not link.label:
                names.setdefault(link.target_type, {})[link.target_id] = ""
        for target_type, unnamed in names.items():
            unnamed.update(target_labels(target_type, list(unnamed)))
        items = []
        for link in shown:
            text = link.label or names[link.target_type][link.target_id]
            url = target_url(link.target_type, link.target_id)
            items.append(format_html('<a href="{}">{}</a>', url, text) if url else text)
        more = ""
        if len(links) > self.SHOWN_TARGETS:
            total = obj.target_links.count()
            more = format_html(" and {} more", total - self.SHOWN_TARGETS)
        return format_html("{}{}", format_html_join(", ", "{}", ((i,) for i in items)), more)

    @admin.display(description="state", ordering="state")
    def state_badge(self, obj: Job) -> str:
        # Active rows carry the badge, hidden unless stale, so the live refresh can show it.
        stale = ""
        if obj.state in ACTIVE_STATES:
            stale = format_html(
                ' <span class="job-pill bad job-stale" data-job-id="{}" data-live="stale" '
                'title="Running, but no heartbeat for over {} s: its worker may have died"{}>'
                "stale</span>",
                obj.pk,
                conf.stale_after_seconds(),
                "" if selectors.job_is_stale(obj) else mark_safe(" hidden"),  # noqa: S308
            )
        return format_html(
            '<span class="job-state job-state-{}" data-job-id="{}" data-live="state" '
            'data-state="{}">{}</span>{}',
            obj.state,
            obj.pk,
            obj.state,
            obj.get_state_display(),
            stale,
        )

    @admin.display(description="progress", ordering="progress")
    def progress_bar(self, obj: Job) -> str:
        # A failed or retrying row shows its last error here (the list has no error column).
        message, css = obj.progress_message, ""
        if obj.state in (JobState.FAILED, JobState.RETRYING):
            error = selectors.last_error_line(obj)
            if error:
                message, css = error, " job-error-line"
        return format_html(
            '<div class="job-progress" data-job-id="{}" data-live="progress">'
            '<div class="job-progress-track" role="progressbar" aria-valuemin="0" '
            'aria-valuemax="100" aria-valuenow="{}"><div class="job-progress-fill job-state-{}" '
            'style="width: {}%"></div></div><span class="job-progress-text">{}%</span> '
            '<span class="job-progress-message{}" title="{}">{}</span></div>',
            obj.pk,
            obj.progress,
            obj.state,
            obj.progress,
            obj.progress,
            css,
            message,
            message,
        )

    def header_progress(self, obj: Job) -> str:
        """The job page's header: bar, then "100 % · 10/10 batches" on one line."""
        return format_html(
            '<div class="job-progress job-progress-inline" data-job-id="{}" data-live="progress">'
            '<div class="job-progress-track" role="progressbar" aria-valuemin="0" '
            'aria-valuemax="100" aria-valuenow="{}"><div class="job-progress-fill job-state-{}" '
            'style="width: {}%"></div></div> <span class="job-progress-text">{} %</span>'
            '<span class="job-progress-message" title="{}">{}</span></div>',
            obj.pk,
            obj.progress,
            obj.state,
            obj.progress,
            obj.progress,
            obj.progress_message,
            obj.progress_message,
        )

    @admin.display(description="tries")
    def attempts_display(self, obj: Job) -> str:
        return format_html(
            '<span data-job-id="{}" data-live="attempts">{}/{}</span>',
            obj.pk,
            obj.attempts,
            obj.max_attempts,
        )

    @admin.display(description="took")
    def duration(self, obj: Job) -> str:
        seconds = selectors.duration_seconds(obj)
        if seconds is None:
            return "—"
        text = f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"
        return format_html('<span data-job-id="{}" data-live="duration">{}</span>', obj.pk, text)

    @admin.display(description="last error")
    def last_error(self, obj: Job) -> str:
        line = selectors.last_error_line(obj)
        return format_html(
            '<span class="job-error-line" data-job-id="{}" data-live="error" title="{}">{}</span>',
            obj.pk,
            line,
            line[:120],
        )

    # -- detail fields -----------------------------------------------------------------------
    # Times: exact with seconds, relative once live.js ticks ("3 s ago"), exact on hover.
    @admin.display(description="created")
    def created_time(self, obj: Job) -> str:
        return reltime(obj.created_at)

    @admin.display(description="last dispatched")
    def dispatched_time(self, obj: Job) -> str:
        return reltime(obj.dispatched_at)

    @admin.display(description="started (this attempt)")
    def started_time(self, obj: Job) -> str:
        return reltime(obj.started_at)

    @admin.display(description="last heartbeat")
    def heartbeat_time(self, obj: Job) -> str:
        return reltime(obj.heartbeat_at)

    @admin.display(description="next attempt")
    def next_attempt_time(self, obj: Job) -> str:
        return reltime(obj.next_attempt_at, "retry in")

    @admin.display(description="settled")
    def settled_time(self, obj: Job) -> str:
        return reltime(obj.settled_at)

    @admin.display(description="last action at")
    def last_action_time(self, obj: Job) -> str:
        return reltime(obj.last_action_at)

    @admin.display(description="payload")
    def payload_pretty(self, obj: Job) -> str:
        return pretty_json_html(obj.payload)

    @admin.display(description="result")
    def result_pretty(self, obj: Job) -> str:
        return pretty_json_html(obj.result)

    @admin.display(description="merged requests")
    def merged_display(self, obj: Job) -> str:
        if not obj.merged_count:
            return "none"
        return f"{plural(obj.merged_count, 'later request')} merged into this job"

    @admin.display(description="parent")
    def parent_link(self, obj: Job) -> str:
        if not obj.parent_id:
            return "—"
        url = reverse("admin:jobs_job_change", args=[obj.parent_id])
        return format_html('<a href="{}">{}</a>', url, str(obj.parent_id)[:8])
