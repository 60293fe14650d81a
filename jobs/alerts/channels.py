"""Tell an alert event: email to ``ADMINS`` (Django's ``mail_admins``) and the webhook (a
ledger job, ``jobs.alerts.webhook``). Each channel's outcome is kept on the event, and a rule
whose channels cannot work says so (``channel_problems``) in the admin and GraphQL."""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.mail import mail_admins

from jobs import conf
from jobs.alerts.models import AlertEvent, AlertRule
from jobs.alerts.webhook import KIND
from jobs.enqueue import enqueue
from jobs.models import JobTrigger

logger = logging.getLogger(__name__)

NO_ADMINS = "no ADMINS set"
NO_URL = "no JOBS_ALERT_WEBHOOK_URL set"
NO_SECRET = "no JOBS_ALERT_WEBHOOK_SECRET set"


def webhook_problem() -> str:
    if not conf.get("JOBS_ALERTS_QUEUE") and not conf.job_queues():
        return "no job queue for the deliveries (JOBS_ALERTS_QUEUE)"
    if not conf.alert_webhook_url():
        return NO_URL
    if not conf.alert_webhook_secret():
        return NO_SECRET
    return ""


def channel_problems(rule: AlertRule) -> list[str]:
    """Why a channel the rule uses cannot work ("email: no ADMINS set"), and if it uses none."""
    problems = []
    if rule.email and not settings.ADMINS:
        problems.append(f"email: {NO_ADMINS}")
    if rule.webhook and (problem := webhook_problem()):
        problems.append(f"webhook: {problem}")
    if not rule.email and not rule.webhook:
        problems.append("no channel: neither email nor webhook is on")
    elif len(problems) == int(rule.email) + int(rule.webhook):
        problems.append("no working channel: nobody hears of this alert")
    return problems


def alert_body(event: AlertEvent) -> dict:
    rule = event.rule
    return {
        "alert": rule.name,
        "status": "firing" if event.kind == "fired" else "resolved",
        "event": event.kind,
        "event_id": event.pk,
        "condition": rule.condition,
        "subject_type": rule.subject_type,
        "subject": rule.subject,
        "value": event.value,
        "threshold": rule.threshold,
        "message": event.message,
        "description": rule.description,
        "at": event.at.isoformat(),
    }


def _email(event: AlertEvent) -> str:
    rule = event.rule
    if not rule.email:
        return "off"
    if not settings.ADMINS:
        return NO_ADMINS
    verb = "FIRING" if event.kind == "fired" else "resolved"
    subject = f"Alert {verb}: {rule.name}"
    body = (
        f"{rule.name} ({rule.description or rule.condition}) {event.kind} at "
        f"{event.at:%Y-%m-%d %H:%M:%S} UTC.\n\n{event.message}\n\n"
        f"Value {event.value}, threshold {rule.threshold}, subject {rule.subject_label}.\n"
    )
    try:
        mail_admins(subject, body, fail_silently=False)
    except Exception as exc:  # a mail server away must not stop the evaluation
        logger.warning("Alert %s: mail to ADMINS failed", rule.name, exc_info=True)
        return f"failed: {exc}"[:200]
    return "sent"


def _webhook(event: AlertEvent) -> str:
    rule = event.rule
    if not rule.webhook:
        return "off"
    if problem := webhook_problem():
        return problem
    job = enqueue(
        KIND,
        payload={"alert": alert_body(event)},
        # The maintenance pass's periodic evaluation is the closest trigger the ledger knows.
        trigger=JobTrigger.SCHEDULE,
        reason=f"alert {rule.name} {event.kind}",
    )
    return f"job {job.pk}"


def tell(event: AlertEvent) -> dict:
    """Send ``event`` through its rule's channels; returns each channel's outcome."""
    return {"email": _email(event), "webhook": _webhook(event)}
