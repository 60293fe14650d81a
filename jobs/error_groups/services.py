"""Retry or discard a whole error group, through the job services.

No second path: each job goes through ``jobs.services.job_retry`` (permission
``jobs.retry_job``, an audit entry per job, dispatched on commit) or, for discard, through
``jobs.services.jobs_delete_settled`` (``jobs.delete_job``, a deletion entry per job) — what
"Retry" and "Discard failed matching" do in System → Jobs. The permission is checked once up
front, so a refusal changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from jobs.error_groups.selectors import error_group_job_ids, failed_in_group
from jobs.errors import JobError, JobPermissionDenied
from jobs.services import job_retry, jobs_delete_settled

# Jobs one request acts on at most (like "Retry failed matching"); run it again for the rest.
GROUP_ACTION_LIMIT = 5000

RETRY_PERMISSION = "jobs.retry_job"
DISCARD_PERMISSION = "jobs.delete_job"


@dataclass(frozen=True)
class GroupOutcome:
    done: int  # jobs retried or deleted
    skipped: int  # changed state meanwhile (retried or discarded by someone else)
    remaining: int  # failed jobs of the group still there (beyond the limit)


def _require(user, permission: str) -> None:
    # ``user=None`` is the system (a command without --user), as in jobs.services.
    if user is not None and not user.has_perm(permission):
        raise JobPermissionDenied(f"You need the permission {permission} for this.")


def error_group_retry(
    *, fingerprint: str, user=None, limit: int = GROUP_ACTION_LIMIT
) -> GroupOutcome:
    """Retry the group's failed jobs (oldest failure first), each as its next attempt."""
    _require(user, RETRY_PERMISSION)
    done = skipped = 0
    for pk in error_group_job_ids(fingerprint=fingerprint, limit=limit):
        try:
            job_retry(job_id=pk, user=user)
            done += 1
        except JobError:
            skipped += 1  # no longer failed: someone retried or deleted it meanwhile
    return GroupOutcome(done, skipped, failed_in_group(fingerprint=fingerprint).count())


def error_group_discard(
    *, fingerprint: str, user=None, limit: int = GROUP_ACTION_LIMIT
) -> GroupOutcome:
    """Delete the group's failed jobs from the ledger (``jobs_delete_settled``'s rules)."""
    _require(user, DISCARD_PERMISSION)
    ids = error_group_job_ids(fingerprint=fingerprint, limit=limit)
    deleted = jobs_delete_settled(job_ids=ids, user=user)
    remaining = failed_in_group(fingerprint=fingerprint).count()
    # Children count in ``deleted``; a failed parent with active children is kept (skipped).
    kept = failed_in_group(fingerprint=fingerprint).filter(pk__in=ids).count()
    return GroupOutcome(deleted, kept, remaining)
