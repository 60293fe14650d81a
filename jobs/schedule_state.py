"""Enable / disable cron schedules: kept with the schedules in ``jobs.schedules`` (one module
for schedule state); this path stays importable."""

from jobs.schedules import (  # noqa: F401
    schedule_is_enabled,
    schedule_set_enabled,
    schedules_enabled,
    sync_scheduler,
)
