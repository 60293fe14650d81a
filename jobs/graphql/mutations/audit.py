"""Admin log entries for what people do to jobs over GraphQL (the admin's audit trail)."""

from __future__ import annotations

from django.contrib.admin.models import CHANGE, LogEntry

from jobs.models import Job


def log_job_action(*, user, jobs: list[Job], message: str) -> None:
    """One CHANGE entry per job, shown in the admin's history of each job."""
    if jobs:
        LogEntry.objects.log_actions(
            user_id=user.pk, queryset=jobs, action_flag=CHANGE, change_message=message
        )
