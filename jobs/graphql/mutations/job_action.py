"""What retryJob and cancelJob share: permission check, the service call, the audit entry."""

from __future__ import annotations

from collections.abc import Callable

from django.db import transaction

from api.errors import NotFound
from api.permissions import require_staff
from jobs.errors import JobNotFound
from jobs.models import Job

VIEW_JOB = "jobs.view_job"


def job_action(info, *, job_id, permission: str, service: Callable[..., Job]) -> Job:
    """Run ``service(job_id=..., user=...)`` for a staff user with ``jobs.view_job`` and
    ``permission`` (the service writes the audit entry). Unknown id → NOT_FOUND; a job in the wrong
    state → the service's JobStateError (BAD_USER_INPUT). Nothing changes on an error."""
    user = require_staff(info, VIEW_JOB, permission)
    with transaction.atomic():
        try:
            job = service(job_id=job_id, user=user)
        except JobNotFound as exc:
            raise NotFound(exc.message, ids=[job_id]) from None
    return job
