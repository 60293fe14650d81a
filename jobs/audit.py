"""The audit trail of what people do to jobs: Django admin log entries, shown on each job's page.

Written by the job services themselves (retry, cancel, run now), so the admin's buttons, the
GraphQL mutations and ``manage.py jobs`` leave the same entry.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.db import models

from jobs.models import Job

RETRIED = "Retried"
CANCELLED = "Cancelled"
RETRIED_NOW = "Retried now (backoff skipped)"
DELETED = "Deleted (settled job)"
# A refused request starts with this, so "what was refused" is one filter on the admin log.
REFUSED = "Refused"


def audit_jobs(*, user, jobs: Iterable[Job], message: str, added: bool = False) -> None:
    """Admin log entries saying who did what to these jobs (shown on the job page)."""
    jobs = [j for j in jobs if j is not None]
    if not jobs or not getattr(user, "is_authenticated", False):
        return
    LogEntry.objects.log_actions(
        user_id=user.pk,
        queryset=jobs,
        action_flag=ADDITION if added else CHANGE,
        change_message=message,
        single_object=len(jobs) == 1,  # type: ignore[call-overload]  # stubs want a Literal
    )


def audit_note(*, user, title: str, message: str) -> None:
    """An entry about no job in particular (a schedule that ran inline, say)."""
    if getattr(user, "is_authenticated", False):
        LogEntry.objects.create(
            user_id=user.pk, object_repr=title[:200], action_flag=CHANGE, change_message=message
        )


def audit_deleted(*, user, jobs: Iterable[Job]) -> None:
    """Deletion entries for these jobs; written before the rows go (the entry keeps their
    id and description)."""
    jobs = list(jobs)
    if jobs and getattr(user, "is_authenticated", False):
        LogEntry.objects.log_actions(
            user_id=user.pk,
            queryset=jobs,
            action_flag=DELETION,
            change_message=DELETED,
            single_object=len(jobs) == 1,  # type: ignore[call-overload]  # stubs want a Literal
        )


def audit_change(*, user, obj: models.Model, message: str, added: bool = False) -> None:
    """An entry on ``obj`` by ``user``: changed, or ``added``. Anonymous or system callers
    write none."""
    if not getattr(user, "is_authenticated", False):
        return
    LogEntry.objects.log_actions(
        user_id=user.pk,
        queryset=[obj],
        action_flag=ADDITION if added else CHANGE,
        change_message=message,
        single_object=True,
    )


def audit_refusal(*, user, title: str, message: str, obj: models.Model | None = None) -> None:
    """An entry saying ``user`` was refused (a permission they lack, an argument below a
    floor), on ``obj`` when there is one. Write it outside a transaction that the refusal
    rolls back, or it goes with it."""
    if not getattr(user, "is_authenticated", False):
        return
    text = f"{REFUSED}: {message}"
    if obj is not None and obj.pk is not None:
        audit_change(user=user, obj=obj, message=text)
    else:
        LogEntry.objects.create(
            user_id=user.pk, object_repr=title[:200], action_flag=CHANGE, change_message=text
        )
