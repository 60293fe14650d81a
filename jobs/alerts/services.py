"""Edit an alert rule: validated the same way from every door (admin form, GraphQL), with the
admin log entry (``jobs.audit.audit_change``) written here."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from jobs.alerts.conditions import UnknownCondition, get_condition
from jobs.alerts.models import AlertRule, SubjectType
from jobs.audit import audit_change
from jobs.errors import JobError, JobPermissionDenied

CHANGE_PERMISSION = "jobs.change_alertrule"
VIEW_PERMISSION = "jobs.view_alertrule"
EDITABLE = (
    "description",
    "threshold",
    "min_count",
    "window_seconds",
    "cooldown_seconds",
    "enabled",
    "email",
    "webhook",
    "subject_type",
    "subject",
)


class AlertRuleInvalid(JobError):
    api_code = "BAD_USER_INPUT"
    code = "invalid"

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field


class AlertRuleNotFound(JobError):
    api_code = "NOT_FOUND"
    code = "not_found"


def alert_rule_errors(
    *, condition: str, subject_type: str, subject: str, threshold: float, window_seconds: int
) -> dict[str, str]:
    """Field -> problem, for the admin form and the service alike."""
    errors: dict[str, str] = {}
    try:
        known = get_condition(condition)
    except UnknownCondition as exc:
        return {"condition": str(exc)}
    if subject_type not in known.subjects:
        allowed = ", ".join(SubjectType(s).label.lower() for s in known.subjects)
        errors["subject_type"] = f"{known.label} watches: {allowed}"
    elif subject_type and not subject.strip():
        errors["subject"] = f"Name the {SubjectType(subject_type).label.lower()} to watch"
    elif not subject_type and subject:
        errors["subject"] = "Leave empty when the rule watches everything"
    if threshold is None or threshold < 0:
        errors["threshold"] = "A threshold of 0 or more"
    if not window_seconds or window_seconds < 10:
        errors["window_seconds"] = "At least 10 seconds"
    return errors


def alert_rule_update(*, rule_id: Any, user, **changes: Any) -> AlertRule:
    """Change the editable fields of a rule (as ``user``, who needs the change permission)."""
    if not user.has_perm(CHANGE_PERMISSION):
        raise JobPermissionDenied(f"You need the permission {CHANGE_PERMISSION} for this.")
    unknown = set(changes) - set(EDITABLE)
    if unknown:
        raise AlertRuleInvalid(f"Not editable: {', '.join(sorted(unknown))}", field=min(unknown))
    with transaction.atomic():
        # By primary key (the admin) or by name (GraphQL, commands).
        lookup = {"pk": rule_id} if str(rule_id).isdigit() else {"name": str(rule_id)}
        rule = AlertRule.objects.select_for_update().filter(**lookup).first()
        if rule is None:
            raise AlertRuleNotFound(f"No alert rule {rule_id}")
        changes = {k: v for k, v in changes.items() if v is not None}
        for field, value in changes.items():
            setattr(rule, field, value)
        _check(rule)
        rule.save()
        audit_change(user=user, obj=rule, message=describe_change(changes))
    return rule


def _check(rule: AlertRule) -> None:
    """The rule's fields as the admin form checks them; the first problem, naming its field."""
    errors = alert_rule_errors(
        condition=rule.condition,
        subject_type=rule.subject_type,
        subject=rule.subject,
        threshold=rule.threshold,
        window_seconds=rule.window_seconds,
    )
    if errors:
        field, message = next(iter(errors.items()))
        raise AlertRuleInvalid(message, field=field)


def describe_change(changes: dict) -> str:
    if not changes:
        return "Saved alert rule (no change)"
    return "Changed " + ", ".join(f"{k} to {v!r}" for k, v in sorted(changes.items()))


CREATABLE = ("name", "condition", *EDITABLE)


def alert_rule_create(*, user, **fields: Any) -> AlertRule:
    """A new rule (as ``user``, who needs the add permission), validated like an edit."""
    if not user.has_perm("jobs.add_alertrule"):
        raise JobPermissionDenied("You need the permission jobs.add_alertrule for this.")
    unknown = set(fields) - set(CREATABLE)
    if unknown:
        raise AlertRuleInvalid(f"Unknown fields: {', '.join(sorted(unknown))}", field=min(unknown))
    rule = AlertRule(**{k: v for k, v in fields.items() if v is not None})
    _check(rule)
    rule.save()
    audit_change(user=user, obj=rule, message=f"Added alert rule {rule.name}", added=True)
    return rule
