"""Who may write or run a schedule: the schedule permission and every permission its request
declares (``bundles.check`` needs ``bundles.change_bundle``…). Refusals are written to the
admin log here, so the admin, GraphQL and commands leave the same trace."""

from __future__ import annotations

from collections.abc import Iterable

from jobs.audit import audit_refusal
from jobs.models import Schedule
from jobs.permissions import User, missing_permissions, permission_denied
from jobs.request_functions import UnknownRequest, get_request

CHANGE_PERMISSION = "jobs.change_schedule"
ADD_PERMISSION = "jobs.add_schedule"
RUN_PERMISSION = "jobs.run_schedule"


def request_permissions(request: str) -> tuple[str, ...]:
    """What the request's work needs (nothing for an unknown name: validation refuses it)."""
    try:
        return get_request(request).permissions
    except UnknownRequest:
        return ()


def schedule_check_permission(
    *,
    user: User | None,
    name: str,
    action: str,
    permissions: Iterable[str],
    schedule: Schedule | None = None,
) -> None:
    """Raise ``JobPermissionDenied`` naming what ``user`` lacks, after writing the refusal to
    the admin log (callers run this outside the transaction a refusal would roll back)."""
    missing = missing_permissions(user, permissions)
    if missing:
        message = f"You need the permission {', '.join(missing)} to {action} schedule {name}."
        audit_refusal(user=user, title=f"Schedule {name}", message=message, obj=schedule)
        raise permission_denied(missing, message)


def schedule_check_write(*, user: User | None, schedule: Schedule | None, fields: dict) -> None:
    """The permission check of a create (``schedule`` None) or an update: the schedule
    permission, and what the request needs, before and after the change."""
    if schedule is None:
        perms = [ADD_PERMISSION, *request_permissions(str(fields.get("request") or ""))]
        name, action = str(fields.get("name") or ""), "add"
    else:
        new_request = fields.get("request") or schedule.request
        perms = [
            CHANGE_PERMISSION,
            *request_permissions(schedule.request),
            *request_permissions(str(new_request)),
        ]
        name, action = schedule.name, "change"
    schedule_check_permission(
        user=user, name=name, action=action, permissions=perms, schedule=schedule
    )
