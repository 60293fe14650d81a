"""Each schedule as the admin and GraphQL show it: its fields, the job kind it makes, its next
run (as rq-scheduler has it, or computed when Redis cannot say) and its last job."""

from __future__ import annotations

import logging

from jobs.models import Schedule
from jobs.request_functions import UnknownRequest, get_request
from jobs.scheduling.cron import next_run
from jobs.scheduling.sync import registered_runs

logger = logging.getLogger(__name__)


def schedule_item(schedule: Schedule) -> dict:
    """One schedule as a dict (id, cron, timezone, request, kwargs, kind, enabled, …)."""
    kwargs = dict(schedule.arguments or {})
    try:
        kind = get_request(schedule.request).kind
    except UnknownRequest:
        kind = ""
    return {
        "id": schedule.name,
        "pk": schedule.pk,
        "cron": schedule.cron,
        "timezone": schedule.timezone,
        "request": schedule.request,
        "kwargs": kwargs,
        # For display: the job kind it makes, and its arguments as the payload.
        "kind": kind,
        "payload": kwargs,
        "description": schedule.description,
        "enabled": schedule.enabled,
        "grace_seconds": schedule.grace_seconds,
        "schedule": schedule,
    }


def list_schedules() -> list[dict]:
    """For the admin / GraphQL: each schedule with its next run (UTC) and its last job."""
    try:
        registered = registered_runs()
    except Exception:  # Redis down: still show the table
        logger.warning("Could not read registered schedules", exc_info=True)
        registered = {}
    out = []
    for schedule in Schedule.objects.select_related("last_job").order_by("id"):
        computed = next_run(schedule.cron, tz=schedule.timezone) if schedule.enabled else None
        out.append(
            {
                **schedule_item(schedule),
                "next_run": registered.get(schedule.name) or computed,
                "registered": schedule.name in registered,
                "last_job": schedule.last_job,
                "last_run_at": schedule.last_run_at,
                "last_skipped_at": schedule.last_skipped_at,
                "last_skipped_note": schedule.last_skipped_note,
            }
        )
    return out
