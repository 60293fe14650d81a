"""The test app's job kind, registered like any consumer's (the jobs app imports this)."""

from __future__ import annotations

from django.db.models import F

from jobs import conf
from jobs.context import JobContext
from jobs.registry import job_kind
from tests.jobs_testapp.models import Widget


@job_kind("widget_polish", queue=conf.job_queues()[0], max_attempts=1, backoff=(), timeout=60)
def widget_polish(ctx: JobContext, *, widget_ids: list[int]) -> dict:
    """Polish some widgets."""
    done = Widget.objects.filter(pk__in=widget_ids).update(polished=F("polished") + 1)
    ctx.set_progress(100, f"{done}/{len(widget_ids)} widgets polished")
    return {"polished": done}
