"""System → Jobs: the ledger's ``ModelAdmin`` (list, filters, permissions, the job page).

Thin on purpose: reads go through ``jobs.selectors``, writes through ``jobs.services``; its
columns, extra pages and actions live in ``job_columns``, ``job_views`` and ``job_actions``."""

from __future__ import annotations

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import Exists, OuterRef
from django.urls import reverse
from django.utils import timezone

from jobs import selectors
from jobs.admin.display import hourly_chart_svg, job_timeline
from jobs.admin.filters import CausedByFilter, KindFilter, QueueFilter, StaleFilter, TargetFilter
from jobs.admin.job_actions import JobActions
from jobs.admin.job_columns import JobColumns
from jobs.admin.job_views import JobViews
from jobs.admin.links import deny_unpermitted_action, jobs_changelist_url
from jobs.admin.paginator import EstimatedCountPaginator
from jobs.models import ACTIVE_STATES, Job, JobState, QueuePause
from jobs.quick_actions import quick_actions


@admin.register(Job)
class JobAdmin(JobColumns, JobViews, JobActions, admin.ModelAdmin):
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
    search_help_text = "Job id or its first characters, target name or SKU, dedup key, error"
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
        # ``in_paused_queue``: the list and the job page say "queue paused" where a job waits.
        paused = QueuePause.objects.filter(queue=OuterRef("queue"))
        return (
            super()
            .get_queryset(request)
            .select_related("requested_by")
            .annotate(in_paused_queue=Exists(paused))
        )

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
        health = selectors.system_health(now=now, settled=settled)
        return {
            "health": health,
            "totals": {  # the shut strip's one line; the panel has them per queue
                "waiting": sum(q.waiting for q in health.queues),
                "running": sum(q.running for q in health.queues),
                "failed": sum(q.failed for q in health.queues),
                "paused": [q.name for q in health.queues if q.paused],
            },
            "workers_url": reverse("admin:jobs_job_workers"),
            "schedules_url": reverse("admin:jobs_schedule_changelist"),
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
                        "paused": self.paused_note(job),
                        "progress": self.header_progress(job),
                        "attempts": self.attempts_display(job),
                        "duration": self.duration(job),
                        "target": self.target_link(job),
                    },
                }
            )
        return super().change_view(request, object_id, form_url, extra_context=extra)
