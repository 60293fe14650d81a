"""System → Jobs: the ledger in Django admin, live, with retry, cancel and schedules.

Thin on purpose: reads go through ``jobs.selectors``, writes through ``jobs.services`` /
``jobs.schedules`` / ``jobs.schedule_state``; this module checks permissions, calls them and
reports. Extra pages are ``get_urls`` patterns wrapped in ``admin_site.admin_view``.

Permissions: seeing anything needs ``jobs.view_job``; Retry ``jobs.retry_job`` and Cancel
``jobs.cancel_job`` (each with ``jobs.view_job``); Run now and enable/disable
``jobs.run_schedule``; the quick buttons ``jobs.run_schedule`` plus what the operation needs
elsewhere (``bundles.change_bundle`` for the bundle ones); deleting settled jobs
``jobs.delete_job``. Staff without the permission get 403.
"""

from __future__ import annotations

import json
import re
from urllib.parse import urlencode

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db import connection
from django.db.models import QuerySet
from django.http import Http404, HttpResponseNotAllowed, HttpResponseRedirect, JsonResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from jobs import conf, selectors
from jobs.admin.display import hourly_chart_svg, job_timeline, pretty_json_html
from jobs.admin.filters import CausedByFilter, KindFilter, QueueFilter, StaleFilter, TargetFilter
from jobs.admin.links import deny_unpermitted_action, jobs_changelist_url, jobs_queued_message
from jobs.audit import audit_jobs
from jobs.models import ACTIVE_STATES, SETTLED_STATES, Job, JobState
from jobs.quick_actions import get_quick_action, quick_actions
from jobs.services import (
    JobError,
    job_cancel,
    job_retry,
    job_retry_now,
    jobs_delete_settled,
    queue_pause,
    queue_resume,
)
from jobs.targets import target_url
from jobs.timefmt import reltime

# How many jobs one "retry all failed matching" request retries at most.
RETRY_MATCHING_LIMIT = 5000


# --- paging without COUNT(*) over the whole ledger ----------------------------------------------


class EstimatedCountPaginator(Paginator):
    """Counts at most ``cap`` + 1 rows; beyond that it asks PostgreSQL's planner for an
    estimate (SQLite: shows "more than cap"). A page never costs a full ``COUNT(*)``."""

    cap = 10_000

    @cached_property
    def count(self) -> int:
        qs: QuerySet[Job] = self.object_list  # type: ignore[assignment]  # the job list's
        exact = qs.order_by()[: self.cap + 1].count()
        self.is_estimate = exact > self.cap
        if not self.is_estimate:
            self.display_count = f"{exact:,}"
            return exact
        estimate = _planner_estimate(qs)
        if estimate and estimate > self.cap:
            self.display_count = f"about {estimate:,}"
            return estimate
        self.display_count = f"more than {self.cap:,}"
        return exact

    is_estimate = False
    display_count = ""


def _planner_estimate(qs) -> int | None:
    if connection.vendor != "postgresql":
        return None
    sql, params = qs.order_by().query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        plan = cursor.fetchone()[0]
    if isinstance(plan, str):
        plan = json.loads(plan)
    return int(plan[0]["Plan"]["Plan Rows"])


# --- the admin ----------------------------------------------------------------------------------


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    # Chosen to fit 1366 px next to the admin's sidebar and filters (checked in Chromium with
    # long kinds and targets): the queue is in the filter, the strip and the kind's tooltip;
    # the last error is the progress message of a failed row; tries sit under the state and
    # the run time under "created" (all of it on the job page, with every attempt's error).
    list_display = (
        "short_id",
        "kind_display",
        "target_link",
        "state_and_tries",
        "progress_bar",
        "created_and_took",
    )
    list_display_links = ("short_id",)
    # The job page lists this many linked targets, then says how many more there are.
    SHOWN_TARGETS = 50
    list_filter = (
        QueueFilter,
        "state",
        KindFilter,
        "trigger",
        ("created_at", admin.DateFieldListFilter),
        StaleFilter,
        TargetFilter,
        CausedByFilter,
    )
    search_fields = ("target_label",)  # shows the box; get_search_results does the real work
    search_help_text = (
        "Job id (or its first characters), a target (a bundle's name or SKU...), dedup key, "
        "error text"
    )
    ordering = ("-created_at",)
    date_hierarchy = None
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    list_per_page = 50
    actions = ("retry_selected", "cancel_selected", "delete_settled")
    change_list_template = "admin/jobs/job/change_list.html"
    change_form_template = "admin/jobs/job/change_form.html"

    fieldsets = (
        (
            None,
            {
                "fields": (
                    "id",
                    "state_badge",
                    "progress_bar",
                    "attempts_display",
                    "queue",
                    "kind",
                    "target_link",
                    "linked_targets",
                    "trigger",
                    "reason",
                    "requested_by",
                    "merged_display",
                    "dedup_key",
                    "cancel_requested",
                    "parent_link",
                    "schedule_id",
                )
            },
        ),
        ("Payload and result", {"fields": ("payload_pretty", "result_pretty")}),
        (
            "Times (UTC)",
            {
                "fields": (
                    "created_time",
                    "dispatched_time",
                    "started_time",
                    "heartbeat_time",
                    "next_attempt_time",
                    "settled_time",
                    "duration",
                )
            },
        ),
        (
            "Delivery",
            {
                "classes": ("collapse",),
                "fields": (
                    "worker_name",
                    "rq_job_id",
                    "last_action",
                    "last_action_by",
                    "last_action_time",
                    "target_type",
                    "target_id",
                    "target_label",
                ),
            },
        ),
    )

    class Media:
        css = {"all": ("jobs/jobs.css",)}
        js = ("jobs/live.js",)

    # -- permissions -------------------------------------------------------------------------
    def has_add_permission(self, request) -> bool:
        return False  # jobs come from the one enqueue function, never from a form

    def has_delete_permission(self, request, obj=None) -> bool:
        # No Delete on a pending, running or retrying job: cancel it first.
        if obj is not None and obj.state in ACTIVE_STATES:
            return False
        return super().has_delete_permission(request, obj)

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # the ledger is written by the runner; people retry or cancel

    # Retry and cancel act on jobs the user must be allowed to see (as over GraphQL).
    def has_retry_permission(self, request) -> bool:
        return self.has_view_permission(request) and request.user.has_perm("jobs.retry_job")

    def has_cancel_permission(self, request) -> bool:
        return self.has_view_permission(request) and request.user.has_perm("jobs.cancel_job")

    def has_run_schedule_permission(self, request) -> bool:
        return request.user.has_perm("jobs.run_schedule")

    def _require(self, request, perm: str) -> None:
        allowed = {
            "retry_job": self.has_retry_permission,
            "cancel_job": self.has_cancel_permission,
        }.get(perm, lambda r: r.user.has_perm(f"jobs.{perm}"))
        if not allowed(request):
            raise PermissionDenied

    # -- list --------------------------------------------------------------------------------
    def get_queryset(self, request):
        return super().get_queryset(request).select_related("requested_by")

    def get_search_results(self, request, queryset, search_term):
        if not search_term.strip():
            return queryset, False
        return selectors.job_search_filter(queryset, term=search_term), False

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # ours deletes settled jobs only, with confirmation
        return actions

    def has_pause_queue_permission(self, request) -> bool:
        return self.has_view_permission(request) and request.user.has_perm("jobs.pause_queue")

    def _overview_context(self, request, chart_range: str) -> dict:
        if chart_range not in selectors.CHART_RANGES:
            chart_range = "24h"
        now = timezone.now()
        settled = selectors.settled_last_24h(now=now)  # the strip's 24 h and the 24 h chart
        chart = selectors.jobs_chart(range_name=chart_range, now=now, settled=settled)
        return {
            "health": selectors.system_health(now=now, settled=settled),
            "chart_svg": hourly_chart_svg(chart),
            "chart_range": chart_range,
            "chart_ranges": list(selectors.CHART_RANGES),
            "kind_timings": selectors.kind_timings(hours=24, now=now),
            "can_pause": self.has_pause_queue_permission(request),
            "changelist_url": reverse("admin:jobs_job_changelist"),
        }

    def changelist_view(self, request, extra_context=None):
        deny_unpermitted_action(self, request)  # 403, not "No action selected"
        # ``chart`` picks the chart's range; it is no filter, so the changelist never sees it.
        chart_range = request.GET.get("chart", "24h")
        if "chart" in request.GET:
            request.GET = request.GET.copy()
            request.GET.pop("chart")
        extra = {
            **self._overview_context(request, chart_range),
            "overview_url": reverse("admin:jobs_job_overview"),
            "workers_url": reverse("admin:jobs_job_workers"),
            "live_url": reverse("admin:jobs_job_live"),
            "schedules_url": reverse("admin:jobs_schedule_changelist"),
            "quick_actions": quick_actions(user=request.user),
            "can_run_schedule": self.has_run_schedule_permission(request),
            "can_retry": self.has_retry_permission(request),
            "retry_matching_url": reverse("admin:jobs_job_retry_matching")
            + ("?" + request.GET.urlencode() if request.GET else ""),
            "changelist_url": reverse("admin:jobs_job_changelist"),
            "can_cancel": self.has_cancel_permission(request),
            "can_discard": request.user.has_perm("jobs.delete_job"),
            "filter_query": "?" + request.GET.urlencode() if request.GET else "",
            **(extra_context or {}),
        }
        return super().changelist_view(request, extra_context=extra)

    # -- columns -----------------------------------------------------------------------------
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
            '{}<span class="job-subline">{} tries</span>',
            self.state_badge(obj),
            self.attempts_display(obj),
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
        items = []
        for link in links[: self.SHOWN_TARGETS]:
            text = link.label or f"{link.target_type} {link.target_id}"
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
        return f"{obj.merged_count} later request(s) merged into this job"

    @admin.display(description="parent")
    def parent_link(self, obj: Job) -> str:
        if not obj.parent_id:
            return "—"
        url = reverse("admin:jobs_job_change", args=[obj.parent_id])
        return format_html('<a href="{}">{}</a>', url, str(obj.parent_id)[:8])

    def change_view(self, request, object_id, form_url="", extra_context=None):
        job = self.get_object(request, object_id)
        extra = dict(extra_context or {})
        if job is not None:
            audit = selectors.job_audit(job_id=job.pk)
            children = list(Job.objects.filter(parent_id=job.pk).order_by("created_at")[:200])
            extra.update(
                {
                    "job": job,
                    "attempt_errors": list(reversed(job.errors or [])),
                    "timeline": job_timeline(job, audit),
                    "audit": audit,
                    "children": children,
                    "children_summary": selectors.job_children_summary(job_id=job.pk)
                    if children
                    else None,
                    "children_url": jobs_changelist_url(parent__exact=str(job.pk)),
                    "live_url": reverse("admin:jobs_job_live"),
                    "can_retry": self.has_retry_permission(request)
                    and job.state in (JobState.FAILED, JobState.CANCELLED),
                    "can_cancel": self.has_cancel_permission(request)
                    and job.state in ACTIVE_STATES,
                    "can_retry_now": self.has_retry_permission(request)
                    and job.state == JobState.RETRYING,
                    "retry_now_url": reverse("admin:jobs_job_retry_now", args=[job.pk]),
                    "retry_url": reverse("admin:jobs_job_retry", args=[job.pk]),
                    "cancel_url": reverse("admin:jobs_job_cancel", args=[job.pk]),
                    "title": f"Job {str(job.pk)[:8]} · {job.kind}",
                    "header": {
                        "state": self.state_badge(job),
                        "progress": self.progress_bar(job),
                        "attempts": self.attempts_display(job),
                        "duration": self.duration(job),
                        "target": self.target_link(job),
                    },
                }
            )
        return super().change_view(request, object_id, form_url, extra_context=extra)

    # -- extra URLs --------------------------------------------------------------------------
    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("live/", wrap(self.live_view), name="jobs_job_live"),
            path("overview/", wrap(self.overview_view), name="jobs_job_overview"),
            path("workers/", wrap(self.workers_view), name="jobs_job_workers"),
            path(
                "queues/<str:queue>/<str:how>/",
                wrap(self.queue_pause_view),
                name="jobs_job_queue_pause",
            ),
            path(
                "<uuid:object_id>/retry-now/", wrap(self.retry_now_view), name="jobs_job_retry_now"
            ),
            path("schedules/", wrap(self.schedules_view), name="jobs_job_schedules"),
            path("quick/<slug:slug>/", wrap(self.quick_action_view), name="jobs_job_quick"),
            path("retry-matching/", wrap(self.retry_matching_view), name="jobs_job_retry_matching"),
            path("matching/<str:how>/", wrap(self.matching_view), name="jobs_job_matching"),
            path("<uuid:object_id>/retry/", wrap(self.retry_view), name="jobs_job_retry"),
            path("<uuid:object_id>/cancel/", wrap(self.cancel_view), name="jobs_job_cancel"),
            *super().get_urls(),
        ]

    def _context(self, request, **extra):
        return {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "app_label": self.opts.app_label,
            "has_view_permission": self.has_view_permission(request),
            **extra,
        }

    def live_view(self, request):
        """JSON: state, progress, attempts of the given jobs (``?ids=a,b``), for live refresh."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        ids = [i for i in request.GET.get("ids", "").split(",") if i]
        return JsonResponse(
            {"jobs": selectors.job_live_rows(ids=ids), "now": timezone.now().isoformat()}
        )

    def overview_view(self, request):
        """The queues strip and chart alone (HTML), for the list's live refresh."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        return TemplateResponse(
            request,
            "admin/jobs/job/overview.html",
            self._overview_context(request, request.GET.get("chart", "24h")),
        )

    def workers_view(self, request):
        """System → Workers: every RQ worker, its current job and heartbeat; dead ones flagged."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        now = timezone.now()
        found = selectors.workers(now=now)
        return TemplateResponse(
            request,
            "admin/jobs/job/workers.html",
            self._context(
                request,
                title="Workers",
                workers=found,
                now=now,
                dead_after=selectors.WORKER_DEAD_AFTER_SECONDS,
                changelist_url=reverse("admin:jobs_job_changelist"),
            ),
        )

    def queue_pause_view(self, request, queue, how):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if how not in ("pause", "resume"):
            raise Http404("pause or resume")
        if not self.has_pause_queue_permission(request):
            raise PermissionDenied
        try:
            if how == "pause":
                queue_pause(queue=queue, user=request.user)
                text = f"Queue {queue} paused: its jobs wait (pending) until you resume it."
            else:
                sent = queue_resume(queue=queue, user=request.user)
                text = f"Queue {queue} resumed; {sent} waiting job{'s' if sent != 1 else ''} sent."
        except JobError as exc:
            self.message_user(request, exc.message, messages.ERROR)
        else:
            self.message_user(request, text, messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:jobs_job_changelist"))

    def retry_now_view(self, request, object_id):
        return self._retry_button(request, object_id, job_retry_now, "runs now")

    def retry_view(self, request, object_id):
        return self._retry_button(request, object_id, job_retry, "will run again")

    def _retry_button(self, request, object_id, service, done: str):
        """A job page's Retry / Retry now button: POST only, the service checks and audits."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        self._require(request, "retry_job")
        try:
            job = service(job_id=object_id, user=request.user)
        except JobError as exc:
            self.message_user(request, exc.message, messages.ERROR)
        else:
            self.message_user(request, f"Job {str(job.pk)[:8]} {done}.", messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:jobs_job_change", args=[object_id]))

    def cancel_view(self, request, object_id):
        """POST cancels; a running job first gets a confirmation page (it is stopped mid-way)."""
        self._require(request, "cancel_job")
        job = Job.objects.filter(pk=object_id).first()
        if job is None:
            raise Http404("No such job")
        needs_confirmation = job.state == JobState.RUNNING
        if request.method != "POST" or (needs_confirmation and request.POST.get("post") != "yes"):
            return TemplateResponse(
                request,
                "admin/jobs/job/confirm_cancel.html",
                self._context(request, title="Stop a running job?", job=job, object=job),
            )
        try:
            job = job_cancel(job_id=object_id, user=request.user)
        except JobError as exc:
            self.message_user(request, exc.message, messages.ERROR)
        else:
            text = (
                "asked to stop (it stops at its next progress report)"
                if job.state == JobState.RUNNING
                else "cancelled"
            )
            self.message_user(request, f"Job {str(job.pk)[:8]} {text}.", messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:jobs_job_change", args=[object_id]))

    def retry_matching_view(self, request):
        """Retry every failed job matching the list's current filters, after a confirmation."""
        return self.matching_view(request, "retry")

    # "Retry / cancel all matching", "Discard failed matching": (permission, states, verb, which).
    MATCHING = {
        "retry": ("retry_job", (JobState.FAILED,), "retry", "failed"),
        "cancel": ("cancel_job", tuple(ACTIVE_STATES), "cancel", "pending, retrying or running"),
        "discard": ("delete_job", (JobState.FAILED,), "discard (delete)", "failed"),
    }

    def matching_view(self, request, how):
        """Retry every failed job, cancel every active one, or delete every failed one,
        matching the list's filters — the whole filtered set, not the page — after a
        confirmation that states the count."""
        if how not in self.MATCHING:
            raise Http404("retry, cancel or discard")
        perm, states, verb, which = self.MATCHING[how]
        if not self.has_view_permission(request):
            raise PermissionDenied
        self._require(request, perm)
        try:
            cl = self.get_changelist_instance(request)
        except IncorrectLookupParameters:
            # Junk filters in the address: answer as the list itself does (?e=1).
            return HttpResponseRedirect(reverse("admin:jobs_job_changelist") + "?e=1")
        chosen = cl.get_queryset(request).filter(state__in=states)
        total = chosen.order_by()[: RETRY_MATCHING_LIMIT + 1].count()
        back = reverse("admin:jobs_job_changelist") + (
            "?" + request.GET.urlencode() if request.GET else ""
        )
        if request.method == "POST" and request.POST.get("post") == "yes":
            ids = list(chosen.values_list("pk", flat=True)[:RETRY_MATCHING_LIMIT])
            if how == "discard":
                done, skipped = jobs_delete_settled(job_ids=ids, user=request.user), 0
            else:
                service = job_retry if how == "retry" else job_cancel
                done = skipped = 0
                for pk in ids:
                    try:
                        service(job_id=pk, user=request.user)
                        done += 1
                    except JobError:
                        skipped += 1  # retried, cancelled or settled by someone else meanwhile
            self.message_user(
                request,
                f"{done} job(s): {verb} done"
                + (f"; {skipped} had changed state and were skipped" if skipped else "")
                + ("; more remain, run it again" if total > RETRY_MATCHING_LIMIT else "")
                + ".",
                messages.SUCCESS,
            )
            return HttpResponseRedirect(back)
        return TemplateResponse(
            request,
            "admin/jobs/job/confirm_matching.html",
            self._context(
                request,
                title=f"{verb.capitalize()} every {which} job matching the filter?",
                verb=verb,
                which=which,
                total=min(total, RETRY_MATCHING_LIMIT),
                more=total > RETRY_MATCHING_LIMIT,
                sample=list(chosen[:10]),
                filters=request.GET.urlencode(),
                back=back,
            ),
        )

    def quick_action_view(self, request, slug):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        self._require(request, "run_schedule")
        action = get_quick_action(slug)
        if action is None:
            raise Http404("No such quick action")
        if not action.allowed(request.user):
            raise PermissionDenied
        try:
            jobs = action.run(user=request.user)
        except Exception as exc:  # a service's typed error: say it, change nothing
            message = getattr(exc, "message", None) or str(exc)
            self.message_user(request, f"{action.label}: {message}", messages.ERROR)
        else:
            audit_jobs(
                user=request.user, jobs=jobs, message=f"Triggered: {action.label}", added=True
            )
            self.message_user(request, jobs_queued_message(jobs, what=action.label))
        return HttpResponseRedirect(reverse("admin:jobs_job_changelist"))

    # -- schedules: System → Schedules (jobs.admin.schedules); the old address redirects -----
    def schedules_view(self, request):
        return HttpResponseRedirect(reverse("admin:jobs_schedule_changelist"))

    # -- actions -----------------------------------------------------------------------------
    @admin.action(description="Retry selected failed/cancelled jobs", permissions=["retry"])
    def retry_selected(self, request, queryset):
        retried, skipped = [], 0
        for pk in queryset.filter(state__in=(JobState.FAILED, JobState.CANCELLED)).values_list(
            "pk", flat=True
        ):
            try:
                retried.append(job_retry(job_id=pk, user=request.user))
            except JobError:
                skipped += 1
        skipped += queryset.exclude(state__in=(JobState.FAILED, JobState.CANCELLED)).count()
        self.message_user(
            request,
            f"{len(retried)} job(s) will run again"
            + (
                f"; {skipped} skipped (only failed or cancelled jobs can be retried)"
                if skipped
                else ""
            )
            + ".",
            messages.SUCCESS if retried else messages.WARNING,
        )

    @admin.action(description="Cancel selected jobs", permissions=["cancel"])
    def cancel_selected(self, request, queryset):
        active = queryset.filter(state__in=ACTIVE_STATES)
        running = list(active.filter(state=JobState.RUNNING)[:20])
        if running and request.POST.get("post") != "yes":
            return self._confirm_action(
                request,
                queryset,
                action="cancel_selected",
                title="Stop running jobs?",
                question=(
                    "Some of the selected jobs are running. Cancelling asks them to stop at "
                    "their next progress report; work already done stays done."
                ),
                objects=running,
                button="Yes, cancel them",
            )
        cancelled, skipped = [], 0
        for pk in active.values_list("pk", flat=True):
            try:
                cancelled.append(job_cancel(job_id=pk, user=request.user))
            except JobError:
                skipped += 1
        skipped += queryset.filter(state__in=SETTLED_STATES).count()
        self.message_user(
            request,
            f"{len(cancelled)} job(s) cancelled"
            + (f"; {skipped} skipped (already settled)" if skipped else "")
            + ".",
            messages.SUCCESS if cancelled else messages.WARNING,
        )
        return None

    @admin.action(description="Delete selected settled jobs", permissions=["delete"])
    def delete_settled(self, request, queryset):
        settled = queryset.filter(state__in=SETTLED_STATES)
        if request.POST.get("post") != "yes":
            return self._confirm_action(
                request,
                queryset,
                action="delete_settled",
                title="Delete settled jobs?",
                question=(
                    f"{settled.count()} settled job(s) will be deleted from the ledger, with "
                    "their children. Pending, running and retrying jobs are kept, and so is a "
                    "settled parent whose children are still active."
                ),
                objects=list(settled[:20]),
                button="Yes, delete them",
            )
        ids = list(queryset.values_list("pk", flat=True))
        # The service keeps active jobs and parents with active children (the purge's rule),
        # and writes the deletion entries.
        count = jobs_delete_settled(job_ids=ids, user=request.user)
        kept = Job.objects.filter(pk__in=ids).count()
        self.message_user(
            request,
            f"{count} settled job(s) deleted"
            + (f"; {kept} kept (not settled, or with active children)" if kept else "")
            + ".",
            messages.SUCCESS if count else messages.WARNING,
        )
        return None

    def _confirm_action(self, request, queryset, *, action, title, question, objects, button):
        return TemplateResponse(
            request,
            "admin/jobs/job/confirm_action.html",
            self._context(
                request,
                title=title,
                question=question,
                objects=objects,
                action=action,
                button=button,
                # "Select all" over the filter: the filter in the URL says which, not a list of ids.
                selected=[]
                if request.POST.get("select_across") == "1"
                else [str(pk) for pk in queryset.values_list("pk", flat=True)],
                action_checkbox_name=helpers.ACTION_CHECKBOX_NAME,
                select_across=request.POST.get("select_across", "0"),
                back=reverse("admin:jobs_job_changelist") + "?" + urlencode(request.GET),
            ),
        )


# System → Schedules registers itself on import (its own module and templates).
from jobs.admin import schedules as _schedules  # noqa: E402, F401
