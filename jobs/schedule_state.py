"""Enable / disable cron schedules. The state lives in the database (``ScheduleState``) so it
survives restarts; a schedule without a row is enabled.

Disabling also takes the schedule's entry out of rq-scheduler right away; enabling puts it
back. ``jobs.schedules`` consults this state when it registers (a restarted scheduler leaves
disabled schedules out) and when a cron entry fires (a run queued before the switch is skipped).
"""

from __future__ import annotations

import logging

from django.db import transaction

from jobs.models import ScheduleState

logger = logging.getLogger(__name__)


def schedules_enabled() -> dict[str, bool]:
    """Schedule id → enabled, for every schedule that has a stored state (others are enabled)."""
    return dict(ScheduleState.objects.values_list("schedule_id", "enabled"))


def schedule_is_enabled(*, schedule_id: str) -> bool:
    return schedules_enabled().get(schedule_id, True)


def schedule_set_enabled(*, schedule_id: str, enabled: bool, user=None) -> ScheduleState:
    """Enable or disable a schedule. Unknown ids raise ``ScheduleNotFound`` and change nothing."""
    from jobs.schedules import get_schedule

    get_schedule(schedule_id)  # raises ScheduleNotFound naming the known ids
    who = user if getattr(user, "is_authenticated", False) else None
    with transaction.atomic():
        state, _ = ScheduleState.objects.update_or_create(
            schedule_id=schedule_id, defaults={"enabled": bool(enabled), "changed_by": who}
        )
        transaction.on_commit(sync_scheduler)
    return state


def sync_scheduler() -> None:
    """Make rq-scheduler hold exactly the enabled schedules (best effort: Redis may be down)."""
    from jobs.schedules import get_scheduler, register_schedules, rq_schedule_id

    try:
        scheduler = get_scheduler()
        register_schedules(scheduler)
        disabled = [sid for sid, on in schedules_enabled().items() if not on]
        for sid in disabled:
            scheduler.cancel(rq_schedule_id(sid))
    except Exception:
        logger.warning("Could not update rq-scheduler's schedule entries", exc_info=True)
