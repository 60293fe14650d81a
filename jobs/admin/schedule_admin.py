"""System → Schedules: the ``Schedule`` table in Django admin.

List with next run, last run and its state, enabled, missed fires; add and edit with the
service's validation as form errors; enable / disable / run now (buttons and actions); each
schedule's history (its jobs and fires) on its page. Writes go through ``jobs.scheduling``,
which checks the permission and writes the admin log entry, so the admin does not log again.

Permissions: ``jobs.view_schedule`` (or ``jobs.view_job``) to see, ``jobs.add_schedule`` /
``jobs.change_schedule`` to add, edit, enable and disable, ``jobs.run_schedule`` for run now —
each together with the permissions the schedule's request declares (the service checks; a
refusal is a form error or a message, never a 403 page or a 500).
"""

from __future__ import annotations

import json
import logging

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from jobs.admin.links import jobs_changelist_url, jobs_queued_message
from jobs.admin.schedule_form import ScheduleForm
from jobs.errors import JobPermissionDenied
from jobs.models import Job, Schedule, ScheduleFire
from jobs.request_functions import UnknownRequest, get_request
from jobs.scheduling.cron import in_words
from jobs.scheduling.run_now import run_now
from jobs.scheduling.status import scheduler_status
from jobs.scheduling.store import EDITABLE, schedule_create, schedule_set_enabled, schedule_update
from jobs.scheduling.sync import registered_runs
from jobs.scheduling.validation import ScheduleError
from jobs.timefmt import reltime

logger = logging.getLogger(__name__)
HISTORY_ROWS = 20


@admin.register(Schedule)
class ScheduleAdmin(admin.ModelAdmin):
    form = ScheduleForm
    list_display = (
        "name_and_description",
        "cron_in_words",
        "request_name",
        "next_run",
        "last_run",
        "row_buttons",
    )  # a skipped fire shows under the last run: a column of its own was empty most days;
    # no "enabled" column: next run says "disabled", the row's button Enable or Disable (and
    # the filter picks either), which keeps the list inside 1366 px beside the sidebar
    list_display_links = ("name_and_description",)
    list_select_related = ("last_job",)
    list_filter = ("enabled",)
    search_fields = ("name", "description", "request")
    actions = ("enable_selected", "disable_selected", "run_selected")
    readonly_fields = ("next_run_time", "last_run_time", "last_job", "last_skipped", "changed_by")

    class Media:
        js = ("jobs/live.js",)  # relative times ("in 2 h 05 min"), the exact one on hover

    change_list_template = "admin/jobs/schedule/change_list.html"
    change_form_template = "admin/jobs/schedule/change_form.html"

    def get_readonly_fields(self, request, obj=None):
        # The name is the schedule's stable id (jobs and Redis refer to it).
        return (*self.readonly_fields, "name") if obj else self.readonly_fields

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        return type(form.__name__, (form,), {"user": request.user})

    def get_fields(self, request, obj=None):
        return ["name", *EDITABLE, *(self.readonly_fields if obj else ())]

    def has_view_permission(self, request, obj=None) -> bool:
        # Operators who see the jobs see the schedules that make them (as before the table).
        return super().has_view_permission(request, obj) or request.user.has_perm("jobs.view_job")

    def has_run_permission(self, request) -> bool:
        return request.user.has_perm("jobs.run_schedule")

    def _may_do_the_work(self, request, obj: Schedule) -> bool:
        """Whether the user holds what the schedule's request needs (buttons they could not
        use are not shown; the service refuses them anyway)."""
        try:
            return not get_request(obj.request).missing_permissions(request.user)
        except UnknownRequest:
            return True  # nothing to check: running it says the request is unknown

    # -- saving through the service (it validates, logs and re-registers) ----------------------
    def save_model(self, request, obj, form, change):
        data = {f: form.cleaned_data.get(f) for f in EDITABLE}
        data["arguments"] = data.get("arguments") or {}
        if change:
            saved = schedule_update(schedule_id=obj.name, user=request.user, **data)
        else:
            saved = schedule_create(user=request.user, name=form.cleaned_data["name"], **data)
        obj.pk = saved.pk
        obj.refresh_from_db()

    def log_addition(self, request, obj, message):
        return None  # the service wrote it

    def log_change(self, request, obj, message):
        return None  # the service wrote it, naming what changed

    # -- list ------------------------------------------------------------------------------------
    def changelist_view(self, request, extra_context=None):
        try:
            request._registered_runs = registered_runs()
        except Exception:  # Redis down: the stored next runs are still shown
            request._registered_runs = None
        extra = {
            "scheduler": scheduler_status(),
            "now": timezone.now(),
            **(extra_context or {}),
        }
        return super().changelist_view(request, extra_context=extra)

    @admin.display(description="schedule", ordering="name")
    def name_and_description(self, obj: Schedule):
        return format_html(
            "<strong>{}</strong><br><span class='quiet'>{}</span>", obj.name, obj.description
        )

    @admin.display(description="when")
    def cron_in_words(self, obj: Schedule):
        return format_html("<code>{}</code><br>{}", obj.cron, in_words(obj.cron, obj.timezone))

    @admin.display(description="request", ordering="request")
    def request_name(self, obj: Schedule):
        return format_html('<span class="jobs-request">{}</span>', obj.request)  # one line

    @admin.display(description="next run")  # the exact UTC time on hover
    def next_run(self, obj: Schedule):
        if not obj.enabled:
            return format_html("<span class='quiet'>{}</span>", "disabled")
        registered = getattr(self._request, "_registered_runs", None)
        at = (registered or {}).get(obj.name) or obj.next_run_at
        text = reltime(at)
        if registered is not None and obj.name not in registered:
            return format_html(
                "{} <span class='job-pill warn' title='{}'>not registered</span>",
                text,
                "rq-scheduler does not hold it yet (is the scheduler running?)",
            )
        return text

    @admin.display(description="last run")
    def last_run(self, obj: Schedule):
        return format_html("{}{}", self._last_run(obj), self.missed(obj))

    def _last_run(self, obj: Schedule):
        job = obj.last_job
        if job is None:
            return (
                format_html("<span class='quiet'>{}</span>", "never")
                if not obj.last_run_at
                else format_html("{} (inline)", reltime(obj.last_run_at))
            )
        return format_html(
            "<a href='{}'>{}</a> <span class='job-state job-state-{}'>{}</span> · "
            "<a href='{}'>all runs</a>",
            reverse("admin:jobs_job_change", args=[job.pk]),
            reltime(job.created_at),
            job.state,
            job.get_state_display(),
            jobs_changelist_url(schedule_id=obj.name),
        )

    @admin.display(description="missed")
    def missed(self, obj: Schedule):
        if not obj.last_skipped_at:
            return ""
        return format_html(
            "<span class='job-pill warn jobs-missed' title='{}'>skipped {}</span>",
            obj.last_skipped_note,
            reltime(obj.last_skipped_at),
        )

    @admin.display(description="next run")
    def next_run_time(self, obj: Schedule):
        return reltime(obj.next_run_at)

    @admin.display(description="last run")
    def last_run_time(self, obj: Schedule):
        return reltime(obj.last_run_at)

    @admin.display(description="last skipped fire")
    def last_skipped(self, obj: Schedule):
        return obj.last_skipped_note or "—"

    @admin.display(description="")
    def row_buttons(self, obj: Schedule):
        request = self._request
        parts = []
        if not self._may_do_the_work(request, obj):
            return ""
        if self.has_run_permission(request):
            parts.append(
                self._post_button(reverse("admin:jobs_schedule_run", args=[obj.pk]), "Run now")
            )
        if self.has_change_permission(request, obj):
            parts.append(
                self._post_button(
                    reverse("admin:jobs_schedule_toggle", args=[obj.pk]),
                    "Disable" if obj.enabled else "Enable",
                    enabled="0" if obj.enabled else "1",
                )
            )
        return format_html("".join(["{}"] * len(parts)), *parts) if parts else ""

    def _post_button(self, url: str, label: str, **values):
        """A button of Django's changelist form that posts that form (its CSRF token and all)
        to ``url`` instead: a ``<form>`` of its own inside the changelist form is invalid HTML
        (the browser drops the first row's, so its button submitted the changelist)."""
        name, value = next(iter(values.items()), ("", ""))
        return format_html(
            "<button type='submit' class='button jobs-row-button' formaction='{}' "
            "formmethod='post' formnovalidate{}>{}</button>",
            url,
            format_html(" name='{}' value='{}'", name, value) if name else "",
            label,
        )

    def get_changelist_instance(self, request):
        self._request = request  # row buttons need the user and the CSRF token
        return super().get_changelist_instance(request)

    # -- actions ---------------------------------------------------------------------------------
    def _set_enabled(self, request, queryset, enabled: bool) -> None:
        done = []
        for name in queryset.values_list("name", flat=True):
            try:
                schedule_set_enabled(schedule_id=name, enabled=enabled, user=request.user)
            except (ScheduleError, JobPermissionDenied) as exc:
                self.message_user(request, f"{name}: {exc}", messages.ERROR)
            else:
                done.append(name)
        if done:
            word = "enabled" if enabled else "disabled"
            self.message_user(request, f"{', '.join(done)} {word}.", messages.SUCCESS)

    @admin.action(description="Enable selected schedules", permissions=["change"])
    def enable_selected(self, request, queryset):
        self._set_enabled(request, queryset, True)

    @admin.action(description="Disable selected schedules", permissions=["change"])
    def disable_selected(self, request, queryset):
        self._set_enabled(request, queryset, False)

    @admin.action(description="Run selected schedules now", permissions=["run"])
    def run_selected(self, request, queryset):
        jobs = []
        for name in queryset.values_list("name", flat=True):
            try:
                jobs.append(self._run(request, name))
            except (_RunRefused, JobPermissionDenied) as exc:
                self.message_user(request, f"{name}: {exc}", messages.ERROR)
        queued = [j for j in jobs if j is not None]
        inline = len(jobs) - len(queued)
        if queued:
            self.message_user(request, jobs_queued_message(queued, what="Run now"))
        if inline:
            self.message_user(request, f"{inline} ran inline (nothing queued).", messages.SUCCESS)

    # -- one schedule: history, buttons ----------------------------------------------------------
    def change_view(self, request, object_id, form_url="", extra_context=None):
        schedule = self.get_object(request, object_id)
        extra = dict(extra_context or {})
        if schedule is not None:
            extra.update(
                history=Job.objects.filter(schedule_id=schedule.name)
                .select_related("requested_by")
                .order_by("-created_at")[:HISTORY_ROWS],
                fires=ScheduleFire.objects.filter(schedule=schedule)
                .select_related("job")
                .order_by("-fire_at")[:HISTORY_ROWS],
                jobs_url=jobs_changelist_url(schedule_id=schedule.name),
                in_words=in_words(schedule.cron, schedule.timezone),
                run_url=reverse("admin:jobs_schedule_run", args=[schedule.pk]),
                toggle_url=reverse("admin:jobs_schedule_toggle", args=[schedule.pk]),
                can_run=self.has_run_permission(request)
                and self._may_do_the_work(request, schedule),
                can_toggle=self.has_change_permission(request, schedule)
                and self._may_do_the_work(request, schedule),
                scheduler=scheduler_status(),
                now=timezone.now(),  # the status line's "Now … UTC"
                arguments_json=json.dumps(schedule.arguments, indent=2),
            )
        return super().change_view(request, object_id, form_url, extra_context=extra)

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("<int:pk>/run/", wrap(self.run_view), name="jobs_schedule_run"),
            path("<int:pk>/toggle/", wrap(self.toggle_view), name="jobs_schedule_toggle"),
            *super().get_urls(),
        ]

    def _back(self, request, pk: int):
        nxt = request.POST.get("next", "")
        if nxt == "change":
            return HttpResponseRedirect(reverse("admin:jobs_schedule_change", args=[pk]))
        return HttpResponseRedirect(reverse("admin:jobs_schedule_changelist"))

    def run_view(self, request, pk: int):
        """Run a schedule's job now — also when the schedule is disabled: disabling stops the
        cron runs, while "Run now" is an explicit request, so it runs (and the audit says so)."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_run_permission(request):
            raise PermissionDenied
        schedule = Schedule.objects.filter(pk=pk).first()
        if schedule is None:
            self.message_user(request, f"No schedule with id {pk}.", messages.ERROR)
            return self._back(request, pk)
        note = "" if schedule.enabled else " (schedule disabled: run once on request)"
        try:
            job = self._run(request, schedule.name)
        except JobPermissionDenied:
            raise PermissionDenied from None  # like every button: 403 (the service logged it)
        except _RunRefused as exc:
            self.message_user(request, str(exc), messages.ERROR)
        else:
            if job is None:  # the relay runs inline: nothing queued
                self.message_user(request, f"{schedule.name} ran now{note}.", messages.SUCCESS)
            else:
                self.message_user(
                    request, jobs_queued_message([job], what=f"Run {schedule.name}{note}")
                )
        return self._back(request, pk)

    def _run(self, request, name: str):
        """``run_now`` with every failure as a ``_RunRefused`` saying why: a refusal, bad
        arguments (the service logged both), or an unexpected error (logged here)."""
        try:
            return run_now(name, user=request.user)
        except ScheduleError as exc:
            raise _RunRefused(exc.message) from exc
        except JobPermissionDenied:
            raise  # the caller answers it (403 for the button, a message for the action)
        except Exception as exc:
            logger.exception("Run now of schedule %s failed", name)
            raise _RunRefused(
                f"Schedule {name} did not run: {type(exc).__name__} (see the server log)."
            ) from exc

    def toggle_view(self, request, pk: int):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_change_permission(request):
            raise PermissionDenied
        enable = request.POST.get("enabled") == "1"
        schedule = Schedule.objects.filter(pk=pk).first()
        if schedule is None:
            self.message_user(request, f"No schedule with id {pk}.", messages.ERROR)
            return self._back(request, pk)
        try:
            schedule_set_enabled(schedule_id=schedule.name, enabled=enable, user=request.user)
        except JobPermissionDenied:
            raise PermissionDenied from None  # like every button: 403 (the service logged it)
        except ScheduleError as exc:
            self.message_user(request, exc.message, messages.ERROR)
        else:
            self.message_user(
                request,
                f"Schedule {schedule.name} {'enabled' if enable else 'disabled'}.",
                messages.SUCCESS,
            )
        return self._back(request, pk)


class _RunRefused(Exception):
    """A run-now that did not run; its text is the admin message."""
