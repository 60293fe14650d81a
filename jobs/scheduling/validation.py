"""A schedule's fields checked and cleaned, and the errors a schedule write raises."""

from __future__ import annotations

import re

from jobs.audit import audit_refusal
from jobs.models import Schedule
from jobs.permissions import User
from jobs.request_functions import InvalidRequestArguments, UnknownRequest, get_request
from jobs.scheduling.cron import validate, validate_timezone

NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,60}$")


class ScheduleError(Exception):
    api_code = "BAD_USER_INPUT"
    code = "schedule_invalid"

    def __init__(self, message: str, field: str | None = None, *, audit: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.audit = audit  # a refusal the admin log keeps (see schedule_validate_as)


class ScheduleNotFound(ScheduleError):
    api_code = "NOT_FOUND"
    code = "schedule_not_found"


def schedule_validate(fields: dict) -> dict:
    """Check a schedule's fields; raise ``ScheduleError`` naming the field and the problem.
    Returns the fields cleaned (stripped strings, dict arguments)."""
    out = dict(fields)
    if "name" in out:
        out["name"] = str(out["name"] or "").strip()
        if not NAME_RE.match(out["name"]):
            raise ScheduleError("Use 1-60 letters, digits, '_' or '-' for the name.", "name")
    if "cron" in out:
        out["cron"] = " ".join(str(out["cron"] or "").split())
        try:
            validate(out["cron"])
        except ValueError as exc:
            raise ScheduleError(f"Bad cron expression {out['cron']!r}: {exc}", "cron") from None
    if "timezone" in out:
        out["timezone"] = str(out["timezone"] or "UTC").strip()
        try:
            validate_timezone(out["timezone"])
        except ValueError as exc:
            raise ScheduleError(str(exc), "timezone") from None
    if "grace_seconds" in out:
        grace = out["grace_seconds"]
        if not isinstance(grace, int) or isinstance(grace, bool) or grace < 0:
            raise ScheduleError(
                "The grace period is a whole number of seconds ≥ 0.", "grace_seconds"
            )
    if "arguments" in out:
        if out["arguments"] is None:
            out["arguments"] = {}
        if not isinstance(out["arguments"], dict):
            raise ScheduleError("Arguments are a JSON object of keyword arguments.", "arguments")
    if "request" in out or "arguments" in out:
        try:
            get_request(out["request"]).check_kwargs(out.get("arguments") or {})
        except UnknownRequest as exc:
            raise ScheduleError(exc.message, "request") from None
        except InvalidRequestArguments as exc:
            raise ScheduleError(exc.message, "arguments", audit=exc.audit) from None
    return out


def schedule_validate_as(
    *,
    user: User | None,
    fields: dict,
    schedule: Schedule | None = None,
) -> dict:
    """``schedule_validate``, with the refusals that matter logged for ``user`` (a retention
    below the floor: an attempt worth seeing; a typo is only a form error)."""
    try:
        return schedule_validate(fields)
    except ScheduleError as exc:
        if not exc.audit:
            raise
        name = schedule.name if schedule else str(fields.get("name") or "")
        audit_refusal(user=user, title=f"Schedule {name}", message=exc.message, obj=schedule)
        raise
