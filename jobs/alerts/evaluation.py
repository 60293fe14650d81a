"""``evaluate_alerts``: measure every enabled rule and move its state.

    ok ──(value > threshold, not in cooldown)──▶ firing ──(value ≤ threshold or none)──▶ ok
         event "fired", told once                        event "resolved", told once

While firing, a value still over the threshold changes nothing but ``last_value``: no repeat.
Within ``cooldown_seconds`` of a resolve, a value over the threshold does not fire again (the
rule says "in cooldown"). Each transition is a conditional UPDATE on the state read, so two
evaluations racing (which the ``due`` lock already prevents) still tell an event once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from jobs.alerts.channels import tell
from jobs.alerts.conditions import Measurement, UnknownCondition, get_condition
from jobs.alerts.models import AlertEvent, AlertEventKind, AlertRule, AlertState

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RuleOutcome:
    rule: str
    state: str
    value: float | None
    message: str
    event: str = ""  # "fired" / "resolved" when this evaluation moved the state


def _measure(rule: AlertRule, now: datetime) -> Measurement:
    try:
        condition = get_condition(rule.condition)
    except UnknownCondition as exc:
        return Measurement(None, str(exc))
    try:
        return condition.measure(rule, now)
    except Exception as exc:  # one broken measure must not silence the other rules
        logger.exception("Alert rule %s: measuring %s failed", rule.name, rule.condition)
        return Measurement(None, f"could not measure: {exc}"[:300])


def _in_cooldown(rule: AlertRule, now: datetime) -> bool:
    if not rule.last_resolved_at or not rule.cooldown_seconds:
        return False
    return now - rule.last_resolved_at < timedelta(seconds=rule.cooldown_seconds)


def _transition(rule: AlertRule, kind: str, m: Measurement, now: datetime) -> AlertEvent | None:
    """Move the rule to the other state and record the event, if nobody else did first."""
    new_state = AlertState.FIRING if kind == AlertEventKind.FIRED else AlertState.OK
    stamp = {"last_fired_at": now} if kind == AlertEventKind.FIRED else {"last_resolved_at": now}
    with transaction.atomic():
        moved = AlertRule.objects.filter(pk=rule.pk, state=rule.state).update(
            state=new_state,
            state_since=now,
            last_value=m.value,
            last_message=m.message[:500],
            last_evaluated_at=now,
            **stamp,
        )
        if not moved:
            return None
        event = AlertEvent.objects.create(
            rule=rule, kind=kind, value=m.value, message=m.message[:500], at=now
        )
    rule.state = new_state
    event.channels = tell(event)  # after the commit: the webhook job is dispatched at once
    event.save(update_fields=["channels"])
    return event


def evaluate_rule(rule: AlertRule, *, now: datetime) -> RuleOutcome:
    """Measure one rule and move its state; without a transition, the measured fields are
    set on ``rule`` for the caller to save (``evaluate_alerts`` saves them all at once)."""
    m = _measure(rule, now)
    over = m.value is not None and m.value > rule.threshold
    event = None
    message = m.message
    if rule.state == AlertState.OK and over:
        if _in_cooldown(rule, now):
            message = f"{m.message} (in cooldown after a resolve; not fired)"
        else:
            event = _transition(rule, AlertEventKind.FIRED, m, now)
    elif rule.state == AlertState.FIRING and not over:
        event = _transition(rule, AlertEventKind.RESOLVED, m, now)
    if event is None:  # written with the other quiet rules in one statement
        rule.last_value, rule.last_message, rule.last_evaluated_at = m.value, message[:500], now
    return RuleOutcome(
        rule=rule.name,
        state=rule.state,
        value=m.value,
        message=message,
        event=event.kind if event else "",
    )


def evaluate_alerts(now: datetime | None = None) -> list[RuleOutcome]:
    """Measure every enabled rule once; returns what each measured and any transition."""
    now = now or timezone.now()
    rules = list(AlertRule.objects.filter(enabled=True))
    outcomes = [evaluate_rule(rule, now=now) for rule in rules]
    # What the rules without a transition measured: one UPDATE and one commit for all of them
    # (only these fields: a transition's own UPDATE set the state).
    quiet = [rule for rule, outcome in zip(rules, outcomes, strict=True) if not outcome.event]
    AlertRule.objects.bulk_update(quiet, ["last_value", "last_message", "last_evaluated_at"])
    return outcomes
