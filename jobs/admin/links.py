"""Links to the jobs list and "N jobs queued" messages, for any admin page that queues jobs."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from django.core.exceptions import PermissionDenied
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from jobs.actor import collecting
from jobs.admin.filters import CausedByFilter
from jobs.models import Job


def jobs_changelist_url(*, ids: Iterable | None = None, **params: str) -> str:
    """System → Jobs filtered to exactly these jobs (``?id__in=…``) or by the given params."""
    url = reverse("admin:jobs_job_changelist")
    query = dict(params)
    if ids is not None:
        query["id__in"] = ",".join(str(i) for i in ids)
    return f"{url}?{urlencode(query)}" if query else url


# Past this many jobs a link names no ids at all (a bulk parent's page, or a time window).
MAX_IDS_IN_LINK = 50
# A "caused by" link names at most this many jobs (a save queues one to three).
MAX_CAUSES_IN_LINK = CausedByFilter.MAX_JOBS


def jobs_queued_message(jobs: list[Job], *, what: str) -> SafeString:
    """ "N jobs queued (what they are)" with a short link to those jobs.

    The link filters by cause (``?caused_by=``: the jobs asked for and what they queue —
    a fan-out's recompute batches appear under it once it runs), never a list of every id.
    A large bulk job (its parent and many batch jobs) links to the parent's page, which lists
    every batch with their combined progress; many unrelated jobs, to their time window.
    """
    unique = list({j.pk: j for j in jobs}.values())
    n = len(unique)
    ids = {j.pk for j in unique}
    roots = [j for j in unique if j.parent_id not in ids]
    url = jobs_changelist_url(caused_by=",".join(str(j.pk) for j in roots))
    if n > MAX_IDS_IN_LINK or len(roots) > MAX_CAUSES_IN_LINK:
        root = roots[0] if len(roots) == 1 else None
        if root and all(j.parent_id == root.pk for j in unique if j is not root):
            url = reverse("admin:jobs_job_change", args=[root.pk])
        else:
            # A short filter, not hundreds of ids: the window they were created in (by one
            # request, so one trigger), which is what the admin's own date filter takes.
            created = sorted(j.created_at for j in unique)
            triggers = {j.trigger for j in unique}
            params = {
                "created_at__gte": created[0].isoformat(),
                "created_at__lte": created[-1].isoformat(),
            }
            if len(triggers) == 1:
                params["trigger__exact"] = triggers.pop()
            url = jobs_changelist_url(**params)
    return format_html(
        '{}: {} job{} queued ({}). <a href="{}">See {} in System → Jobs</a>.',
        what,
        n,
        "" if n == 1 else "s",
        _what_they_are(unique),
        url,
        "it" if n == 1 else "them",
    )


def _what_they_are(jobs: list[Job]) -> str:
    """ "fanout: SKU-00012" for one job; "2 recompute, 1 consistency_check" for several."""
    if len(jobs) == 1:
        job = jobs[0]
        return f"{job.kind}: {job.target_label}" if job.target_label else job.kind
    kinds = Counter(j.kind for j in jobs)
    return ", ".join(f"{count} {kind}" for kind, count in kinds.most_common())


def deny_unpermitted_action(model_admin, request) -> None:
    """Raise 403 when the POSTed action exists but this user may not run it.

    Django's default answers "No action selected" with a redirect; a 403 says what happened.
    """
    if request.method != "POST" or "action" not in request.POST:
        return
    name = request.POST.get("action", "")
    known = {n for _f, n, _d in model_admin._get_base_actions()}
    if name in known and name not in model_admin.get_actions(request):
        raise PermissionDenied


if TYPE_CHECKING:  # mixed into a ModelAdmin only: type it as one
    from django.contrib.admin import ModelAdmin as _AdminBase
else:
    _AdminBase = object


class QueuedJobsMessageMixin(_AdminBase):
    """For a ModelAdmin whose saves queue jobs through signals: after a save, say what it
    queued, with a link ("Saved: 2 jobs queued. See them in System → Jobs")."""

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        with collecting() as queued:
            response = super().changeform_view(request, object_id, form_url, extra_context)
        if request.method == "POST" and queued and getattr(response, "status_code", 0) == 302:
            self.message_user(request, jobs_queued_message(queued, what="Saved"))
        return response
