"""The ``Schedule`` rows: create, update, enable, load the settings' defaults, look up.

Writes check their permissions first (``permissions``: a refusal changes nothing and is logged),
validate, write the admin log entry and re-register the schedules on commit (the loop would
within a cycle anyway).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from django.db import transaction
from django.utils import timezone

from jobs.audit import audit_change
from jobs.models import Schedule
from jobs.permissions import User, missing_permissions
from jobs.scheduling.cron import next_run
from jobs.scheduling.defaults import defaults
from jobs.scheduling.permissions import request_permissions, schedule_check_write
from jobs.scheduling.sync import sync_scheduler
from jobs.scheduling.validation import (
    NAME_RE,
    ScheduleError,
    ScheduleNotFound,
    schedule_validate,
    schedule_validate_as,
)

if TYPE_CHECKING:
    from django.contrib.auth.models import User as UserRow

EDITABLE = ("description", "cron", "timezone", "request", "arguments", "enabled", "grace_seconds")


def _who(user: User | None) -> UserRow | None:
    # An authenticated user is a row of the user model (the stubs cannot tell from the flag).
    return cast("UserRow", user) if getattr(user, "is_authenticated", False) else None


# --- writes ----------------------------------------------------------------------------------


def schedule_create(*, user: User | None = None, **fields: object) -> Schedule:
    """A new schedule (validated; ``jobs.add_schedule`` and the request's permissions for a
    user). Registered on commit."""
    schedule_check_write(user=user, schedule=None, fields=fields)
    fields.setdefault("timezone", "UTC")
    fields.setdefault("arguments", {})
    cleaned = schedule_validate_as(user=user, fields=fields)
    if Schedule.objects.filter(name=cleaned["name"]).exists():
        raise ScheduleError(f"A schedule named {cleaned['name']!r} exists already.", "name")
    with transaction.atomic():
        schedule = Schedule.objects.create(**cleaned, changed_by=_who(user))
        audit_change(
            user=user,
            obj=schedule,
            message=f"Added schedule {schedule.name} ({schedule.cron})",
            added=True,
        )
        transaction.on_commit(sync_scheduler)
    return schedule


def schedule_update(*, schedule_id: str, user: User | None = None, **changes: object) -> Schedule:
    """Change a schedule's fields (only those given; ``None`` means "leave it"). Validates
    first and changes nothing on error; checks ``jobs.change_schedule`` and the permissions
    of the request before and after the change (refusals are logged); writes the admin log
    entry naming what changed; re-registers it on commit (the loop would within a cycle)."""
    unknown = set(changes) - set(EDITABLE)
    if unknown:
        raise ScheduleError(f"Not editable: {', '.join(sorted(unknown))}")
    changes = {k: v for k, v in changes.items() if v is not None}
    # Checked (and a refusal logged) before the transaction, which a refusal would roll back.
    current = schedule_get(schedule_id)
    schedule_check_write(user=user, schedule=current, fields=changes)
    schedule_validate_as(
        user=user, schedule=current, fields={f: getattr(current, f) for f in EDITABLE} | changes
    )
    with transaction.atomic():
        schedule = (
            Schedule.objects.select_for_update().filter(pk=schedule_get(schedule_id).pk).first()
        )
        if schedule is None:
            raise ScheduleNotFound(_not_found_message(schedule_id))
        if missing_permissions(user, request_permissions(schedule.request)):
            # Its request changed since the check above (a concurrent edit): check again.
            schedule_check_write(user=user, schedule=schedule, fields=changes)
        merged = {f: getattr(schedule, f) for f in EDITABLE} | changes
        cleaned = schedule_validate(merged)
        changed = [f for f in EDITABLE if cleaned[f] != getattr(schedule, f)]
        if not changed:
            return schedule
        for field in changed:
            setattr(schedule, field, cleaned[field])
        if {"cron", "timezone", "enabled"} & set(changed):
            # Fires before this moment were the old schedule's: none is caught up.
            schedule.changed_at = timezone.now()
        schedule.changed_by = _who(user)
        schedule.next_run_at = (
            next_run(schedule.cron, tz=schedule.timezone) if schedule.enabled else None
        )
        schedule.save()
        audit_change(user=user, obj=schedule, message=_change_message(schedule, changed))
        transaction.on_commit(sync_scheduler)
    return schedule


def _change_message(schedule: Schedule, changed: list[str]) -> str:
    if changed == ["enabled"]:
        return f"Schedule {schedule.name} {'enabled' if schedule.enabled else 'disabled'}"
    parts = [f"{f} → {getattr(schedule, f)!r}" for f in changed]
    return f"Changed schedule {schedule.name}: {'; '.join(parts)}"


def schedule_set_enabled(*, schedule_id: str, enabled: bool, user: User | None = None) -> Schedule:
    """Enable or disable a schedule. Unknown ids raise ``ScheduleNotFound`` and change nothing."""
    return schedule_update(schedule_id=schedule_id, user=user, enabled=bool(enabled))


def schedules_load_defaults() -> list[Schedule]:
    """Create the settings' schedules that have no row yet (what the data migration does).
    Existing rows are left as they are: settings decide only the first creation."""
    created = []
    existing = set(Schedule.objects.values_list("name", flat=True))
    for fields in defaults():
        if fields["name"] in existing:
            continue
        created.append(Schedule.objects.create(**schedule_validate(fields)))
    return created


# --- reads -----------------------------------------------------------------------------------


def _not_found_message(schedule_id: str) -> str:
    known = ", ".join(Schedule.objects.values_list("name", flat=True)) or "none"
    return f"Unknown schedule {schedule_id!r} (known: {known})"


def schedule_get(schedule_id: str) -> Schedule:
    """The schedule named ``schedule_id``; ``ScheduleNotFound`` (naming the known ones) if none."""
    # A name that cannot exist is never sent to the database (PostgreSQL refuses NUL bytes).
    if not isinstance(schedule_id, str) or not NAME_RE.match(schedule_id):
        raise ScheduleNotFound(_not_found_message(str(schedule_id)[:80]))
    schedule = Schedule.objects.filter(name=schedule_id).first()
    if schedule is None:
        raise ScheduleNotFound(_not_found_message(schedule_id))
    return schedule


def schedules_enabled() -> dict[str, bool]:
    """Schedule name → enabled."""
    return dict(Schedule.objects.values_list("name", "enabled"))


def schedule_is_enabled(*, schedule_id: str) -> bool:
    """Whether a schedule of that name exists and is enabled."""
    if not isinstance(schedule_id, str) or not NAME_RE.match(schedule_id):
        return False  # no such schedule (and never a NUL byte sent to PostgreSQL)
    return bool(Schedule.objects.filter(name=schedule_id, enabled=True).exists())
