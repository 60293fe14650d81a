"""The job list's actions (retry, cancel, delete settled), with a POST confirmation page for the
destructive ones, like ``delete_selected``."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.template.response import TemplateResponse
from django.urls import reverse

from jobs.admin.mixin_base import JobAdminBase
from jobs.errors import JobError
from jobs.models import ACTIVE_STATES, SETTLED_STATES, Job, JobState
from jobs.services import (
    job_cancel,
    job_retry,
    jobs_delete_settled,
)
from jobs.wording import plural


class JobActions(JobAdminBase):
    """Mixed into ``JobAdmin``: the actions its ``actions`` names."""

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
            f"{plural(len(retried), 'job')} will run again"
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
            f"{plural(len(cancelled), 'job')} cancelled"
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
                    f"{plural(settled.count(), 'settled job')} will be deleted from the ledger, "
                    "with their children. Pending, running and retrying jobs are kept, and so is a "
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
            f"{plural(count, 'settled job')} deleted"
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
