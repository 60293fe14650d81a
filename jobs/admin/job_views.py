"""The job admin's own pages, added with ``get_urls`` (each wrapped in ``admin_view``): the live
JSON, the overview strip, workers, pause / resume, the job page's buttons, "all matching" and the
quick actions. Each checks its permission and calls a service; nothing else."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseNotAllowed, HttpResponseRedirect, JsonResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone

from jobs import selectors
from jobs.admin.links import jobs_queued_message
from jobs.admin.mixin_base import JobAdminBase
from jobs.audit import audit_jobs
from jobs.error_groups.views import error_group_urls
from jobs.errors import JobError
from jobs.models import ACTIVE_STATES, Job, JobState
from jobs.quick_actions import get_quick_action
from jobs.services import (
    job_cancel,
    job_retry,
    job_retry_now,
    jobs_delete_settled,
    queue_pause,
    queue_resume,
)
from jobs.wording import plural

# How many jobs one "retry all failed matching" request retries at most.
RETRY_MATCHING_LIMIT = 5000


class JobViews(JobAdminBase):
    """Mixed into ``JobAdmin``: its extra URLs and their views."""

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
            *error_group_urls(self),  # System → Jobs → Errors (jobs.error_groups.views)
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
                f"{plural(done, 'job')}: {verb} done"
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

    # -- schedules: System → Schedules (jobs.admin.schedule_admin); the old address redirects
    def schedules_view(self, request):
        return HttpResponseRedirect(reverse("admin:jobs_schedule_changelist"))
