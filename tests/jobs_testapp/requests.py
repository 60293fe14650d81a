"""The test app's target type and request function (the jobs app imports this)."""

from __future__ import annotations

from collections.abc import Sequence

from jobs.enqueue import enqueue
from jobs.models import Job
from jobs.request_functions import register_request
from jobs.target_types import Target, register_target
from tests.jobs_testapp.models import Widget


def widget_ids_matching(term: str) -> list[int]:
    return list(Widget.objects.filter(name__icontains=term).values_list("pk", flat=True)[:200])


def widgets_polish_request(
    *, widget_ids: Sequence[int], trigger: str, requested_by=None, reason: str = ""
) -> Job:
    """Polish widgets: one job linked to every widget it touches."""
    widgets = list(Widget.objects.filter(pk__in=widget_ids).order_by("pk"))
    return enqueue(
        "widget_polish",
        payload={"widget_ids": [w.pk for w in widgets]},
        trigger=trigger,
        reason=reason,
        requested_by=requested_by,
        target=Target("widget", "", f"{len(widgets)} widgets"),
        targets=[Target("widget", str(w.pk), w.name) for w in widgets],
    )


register_target(
    "widget",
    label="Widget",
    admin_url="admin:jobs_testapp_widget_change",
    search=widget_ids_matching,
    filter_argument="widget_id",
)
register_request(
    "testapp.polish",
    widgets_polish_request,
    permission="jobs_testapp.change_widget",
    kind="widget_polish",
)
