"""System → Jobs → Errors: the error groups, each with "retry all" / "discard all".

Registered by the job admin (``JobAdmin.get_urls`` adds :func:`error_group_urls`), so every
view is wrapped in ``admin_site.admin_view`` and renders with the admin's context. Reads go
through ``selectors``, writes through ``services`` (which check the permission and write the
audit entries); a group action is a GET confirmation page stating the count, then a POST with
Django's CSRF token.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.admin import ModelAdmin
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse

from jobs.error_groups import selectors, services
from jobs.errors import JobError

# how -> (permission codename, service, verb for people)
ACTIONS = {
    "retry": ("jobs.retry_job", services.error_group_retry, "retry"),
    "discard": ("jobs.delete_job", services.error_group_discard, "discard (delete)"),
}


def error_group_urls(model_admin: ModelAdmin) -> list[URLPattern]:
    """The Errors pages, for ``JobAdmin.get_urls`` (before its own patterns)."""
    wrap = model_admin.admin_site.admin_view
    return [
        path(
            "errors/",
            wrap(lambda request: error_groups_view(model_admin, request)),
            name="jobs_job_errors",
        ),
        path(
            "errors/<str:fingerprint>/<str:how>/",
            wrap(
                lambda request, fingerprint, how: error_group_action_view(
                    model_admin, request, fingerprint, how
                )
            ),
            name="jobs_job_error_group_action",
        ),
    ]


def _context(model_admin: ModelAdmin, request: HttpRequest, **extra) -> dict:
    opts = model_admin.model._meta
    return {
        **model_admin.admin_site.each_context(request),
        "opts": opts,
        "app_label": opts.app_label,
        "has_view_permission": model_admin.has_view_permission(request),
        "changelist_url": reverse("admin:jobs_job_changelist"),
        "errors_url": reverse("admin:jobs_job_errors"),
        **extra,
    }


def error_groups_view(model_admin: ModelAdmin, request: HttpRequest) -> HttpResponse:
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    return TemplateResponse(
        request,
        "admin/jobs/job/errors.html",
        _context(
            model_admin,
            request,
            title="Errors",
            groups=selectors.error_groups(limit=selectors.DEFAULT_GROUPS),
            limit=selectors.DEFAULT_GROUPS,
            can_retry=request.user.has_perm("jobs.retry_job"),
            can_discard=request.user.has_perm("jobs.delete_job"),
        ),
    )


def error_group_action_view(
    model_admin: ModelAdmin, request: HttpRequest, fingerprint: str, how: str
) -> HttpResponse:
    """GET: a page with the group's count; POST (``post=yes``): retry or discard it all."""
    if how not in ACTIONS:
        raise Http404("retry or discard")
    permission, service, verb = ACTIONS[how]
    if not model_admin.has_view_permission(request) or not request.user.has_perm(permission):
        raise PermissionDenied
    back = reverse("admin:jobs_job_errors")
    if request.method == "POST" and request.POST.get("post") == "yes":
        try:
            outcome = service(fingerprint=fingerprint, user=request.user)
        except JobError as exc:
            model_admin.message_user(request, exc.message, messages.ERROR)
        else:
            text = f"{outcome.done} job(s): {verb} done"
            if outcome.skipped:
                text += f"; {outcome.skipped} had changed state and were skipped"
            if how == "retry" and outcome.remaining:
                text += f"; {outcome.remaining} still failed in this group, run it again"
            model_admin.message_user(request, text + ".", messages.SUCCESS)
        return HttpResponseRedirect(back)
    group = selectors.error_group(fingerprint=fingerprint)
    return TemplateResponse(
        request,
        "admin/jobs/job/confirm_error_group.html",
        _context(
            model_admin,
            request,
            title=f"{verb.capitalize()} every failed job in this error group?",
            group=group,
            verb=verb,
            total=min(group.count, services.GROUP_ACTION_LIMIT) if group else 0,
            more=bool(group and group.count > services.GROUP_ACTION_LIMIT),
            back=back,
        ),
    )
