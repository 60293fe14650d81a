"""Job actions for the bundle admin (mixed into ``BundleAdmin``) and the bundle quick buttons on
System → Jobs.

Every action goes through the request functions (``bundles.requests``, ``bundles.bulk``) — the
same ones GraphQL, commands and signals use — and answers "N jobs queued" with a link to
exactly those jobs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import path, reverse
from django.utils.translation import ngettext

from bundles import bulk, requests
from bundles.errors import BundleError
from bundles.models import Bundle
from bundles.selectors import bulk_batch_jobs
from jobs.admin.links import deny_unpermitted_action, jobs_changelist_url, jobs_queued_message
from jobs.audit import audit_jobs
from jobs.models import Job, JobTrigger
from jobs.quick_actions import QuickAction, register_quick_action
from jobs.selectors import jobs_for_target

# Up to this many bundles get one recompute / reindex job each (visible per bundle, deduped
# with the signal-driven ones); a bigger selection becomes one bulk job with batch children
# (the answer then links to the bulk job and every batch job).
PER_BUNDLE_LIMIT = 100
RECENT_JOBS = 10
# The quick buttons on System → Jobs change bundles: the permission the bundle admin's
# actions and the GraphQL mutations need too.
CHANGE_BUNDLE = "bundles.change_bundle"


def _bulk_jobs(**request) -> list[Job]:
    """A bulk job and its batch jobs (``bundles_bulk_enqueue``): the jobs the answer links to."""
    parent = bulk.bundles_bulk_enqueue(**request)
    return [parent, *bulk_batch_jobs(parent=parent)]


def bundles_counted(n: int) -> str:
    """ "1 bundle", "2 bundles"."""
    return ngettext("%(n)d bundle", "%(n)d bundles", n) % {"n": n}


def _bulk_reason(operation: str, n: int, where: str) -> str:
    """ "Bulk activate of 1 bundle from the bundle admin" (the job's reason)."""
    return f"Bulk {operation} of {bundles_counted(n)} from {where}"


if TYPE_CHECKING:  # mixed into a ModelAdmin only: type it as one
    from django.contrib.admin import ModelAdmin as _AdminBase
else:
    _AdminBase = object


class BundleJobsAdminMixin(_AdminBase):
    """Adds recompute / reindex / check / activate / archive actions, the bundle page's recent
    jobs and its "Recompute now" button. Mix in before ``admin.ModelAdmin``."""

    actions = (
        "recompute_selected",
        "reindex_selected",
        "check_selected",
        "activate_selected",
        "archive_selected",
    )
    change_form_template = "admin/bundles/bundle/change_form.html"

    # -- actions -----------------------------------------------------------------------------
    def changelist_view(self, request, extra_context=None):
        deny_unpermitted_action(self, request)  # 403, not "No action selected"
        return super().changelist_view(request, extra_context=extra_context)

    def _ids(self, queryset) -> list[int]:
        return list(queryset.order_by("pk").values_list("pk", flat=True))

    def _queued(self, request, jobs: list[Job], *, what: str) -> None:
        audit_jobs(user=request.user, jobs=jobs, message=f"Triggered: {what}", added=True)
        self.message_user(request, jobs_queued_message(jobs, what=what), messages.SUCCESS)

    def _run(self, request, what: str, enqueue) -> None:
        try:
            jobs = enqueue()
        except BundleError as exc:  # bad selection: say so, nothing was queued
            self.message_user(request, f"{what}: {exc.message}", messages.ERROR)
            return
        self._queued(request, jobs, what=what)

    def _per_bundle(self, request, queryset, *, operation: str, what: str, enqueue_one) -> None:
        """One job per bundle (``enqueue_one(bundle_id=..., label=..., **common)``), or one bulk
        job with batch children when the selection is bigger than ``PER_BUNDLE_LIMIT``."""
        rows = list(queryset.order_by("pk").values_list("pk", "name"))

        def enqueue() -> list[Job]:
            if len(rows) > PER_BUNDLE_LIMIT:
                return _bulk_jobs(
                    operation=operation,
                    bundle_ids=[pk for pk, _ in rows],
                    trigger=JobTrigger.ADMIN,
                    reason=_bulk_reason(operation, len(rows), "the bundle admin"),
                    requested_by=request.user,
                )
            return [
                enqueue_one(
                    bundle_id=pk,
                    label=name,
                    trigger=JobTrigger.ADMIN,
                    reason=f"{what} from the bundle admin",
                    requested_by=request.user,
                )
                for pk, name in rows
            ]

        self._run(request, what, enqueue)

    @admin.action(description="Recompute selected bundles (background job)", permissions=["change"])
    def recompute_selected(self, request, queryset):
        self._per_bundle(
            request,
            queryset,
            operation="recompute",
            what="Recompute",
            enqueue_one=requests.bundle_recompute_enqueue,
        )

    @admin.action(description="Reindex selected bundles (background job)", permissions=["change"])
    def reindex_selected(self, request, queryset):
        self._per_bundle(
            request,
            queryset,
            operation="reindex",
            what="Reindex",
            enqueue_one=requests.bundle_reindex_enqueue,
        )

    @admin.action(description="Check consistency of selected bundles (fix)", permissions=["change"])
    def check_selected(self, request, queryset):
        ids = self._ids(queryset)
        self._run(
            request,
            "Consistency check",
            lambda: [
                requests.bundles_check_enqueue(
                    scope=ids,
                    fix=True,
                    trigger=JobTrigger.ADMIN,
                    reason="Check from the bundle admin",
                    requested_by=request.user,
                )
            ],
        )

    def _bulk(self, request, queryset, operation: str, what: str) -> None:
        ids = self._ids(queryset)
        self._run(
            request,
            what,
            lambda: _bulk_jobs(
                operation=operation,
                bundle_ids=ids,
                trigger=JobTrigger.ADMIN,
                reason=_bulk_reason(operation, len(ids), "the bundle admin"),
                requested_by=request.user,
            ),
        )

    @admin.action(description="Activate selected bundles (background job)", permissions=["change"])
    def activate_selected(self, request, queryset):
        self._bulk(request, queryset, "activate", "Activate")

    @admin.action(description="Archive selected bundles (background job)", permissions=["change"])
    def archive_selected(self, request, queryset):
        self._bulk(request, queryset, "archive", "Archive")

    # -- bundle page -------------------------------------------------------------------------
    def get_urls(self):
        return [
            path(
                "<int:object_id>/recompute-now/",
                self.admin_site.admin_view(self.recompute_now_view),
                name="bundles_bundle_recompute_now",
            ),
            *super().get_urls(),
        ]

    def recompute_now_view(self, request, object_id: int):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_change_permission(request):
            raise PermissionDenied
        back = reverse("admin:bundles_bundle_change", args=[object_id])
        try:
            job = requests.bundle_recompute_request(
                bundle_id=object_id,
                trigger=JobTrigger.ADMIN,
                reason="Recompute now (bundle page)",
                force=True,
                requested_by=request.user,
            )
        except BundleError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return HttpResponseRedirect(reverse("admin:bundles_bundle_changelist"))
        self._queued(request, [job], what="Recompute now")
        return HttpResponseRedirect(back)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra = dict(extra_context or {})
        if object_id and str(object_id).isdigit():
            extra.update(
                {
                    "recent_jobs": jobs_for_target(
                        target_type="bundle", target_id=object_id, limit=RECENT_JOBS
                    ),
                    "bundle_jobs_url": jobs_changelist_url(
                        target_type="bundle", target_id=str(object_id)
                    ),
                    "recompute_now_url": reverse(
                        "admin:bundles_bundle_recompute_now", args=[object_id]
                    ),
                    "can_recompute": self.has_change_permission(request),
                    "can_view_jobs": request.user.has_perm("jobs.view_job"),
                    "live_url": reverse("admin:jobs_job_live"),
                }
            )
        return super().change_view(request, object_id, form_url, extra_context=extra)


# --- quick buttons on System → Jobs --------------------------------------------------------------


def _check_active(*, user) -> list[Job]:
    return [
        requests.bundles_check_enqueue(
            scope="active",
            fix=False,
            notify_admins=True,
            trigger=JobTrigger.ADMIN,
            reason="Consistency check (active) from the jobs page",
            requested_by=user,
        )
    ]


def _emergency_check(*, user) -> list[Job]:
    return [
        requests.bundles_check_enqueue(
            scope="broken",
            fix=True,
            trigger=JobTrigger.ADMIN,
            reason="Emergency check (broken, with fix) from the jobs page",
            requested_by=user,
        )
    ]


def _recompute_all(*, user) -> list[Job]:
    ids = list(Bundle.objects.order_by("pk").values_list("pk", flat=True))
    return _bulk_jobs(
        operation="recompute",
        bundle_ids=ids,
        trigger=JobTrigger.ADMIN,
        reason=f"Recompute all {bundles_counted(len(ids))} from the jobs page",
        requested_by=user,
    )


register_quick_action(
    QuickAction(
        "check-active",
        "Run consistency check (active)",
        "Check every active bundle; mail the admins if problems are found",
        _check_active,
        permissions=(CHANGE_BUNDLE,),
    )
)
register_quick_action(
    QuickAction(
        "emergency-check",
        "Emergency check (broken, with fix)",
        "Check the broken bundles and fix what can be fixed",
        _emergency_check,
        permissions=(CHANGE_BUNDLE,),
    )
)
register_quick_action(
    QuickAction(
        "recompute-all",
        "Recompute all bundles",
        "One bulk job, one child job per batch of 100 bundles",
        _recompute_all,
        permissions=(CHANGE_BUNDLE,),
    )
)
