"""The webhook channel's delivery: one ledger job per alert event (kind ``jobs.alert_webhook``).

A JSON POST to ``JOBS_ALERT_WEBHOOK_URL``, signed with HMAC-SHA256 of the exact body under
``JOBS_ALERT_WEBHOOK_SECRET``::

    X-Bundle-Jobs-Signature: sha256=<hex of HMAC-SHA256(secret, body)>
    X-Bundle-Jobs-Timestamp: <unix seconds when this attempt was sent>
    X-Bundle-Jobs-Event: fired | resolved

A receiver checks the signature against the raw body (and may refuse old timestamps; the
body's ``at`` is the event's own time). A refused connection, a timeout or a non-2xx answer
fails the attempt, and the ledger retries it with ``JOBS_ALERT_WEBHOOK_BACKOFF``: a receiver
that is down shows its retries as attempts of the job. URL and secret are read when the job
runs, so neither is ever stored in a payload.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.request
from urllib.parse import urlsplit

from jobs import conf
from jobs.context import JobContext
from jobs.registry import job_kind

KIND = "jobs.alert_webhook"
SIGNATURE_HEADER = "X-Bundle-Jobs-Signature"
TIMESTAMP_HEADER = "X-Bundle-Jobs-Timestamp"
EVENT_HEADER = "X-Bundle-Jobs-Event"


class WebhookNotConfigured(RuntimeError):
    """No URL or no secret: nothing can be delivered (the event says so; this is a guard)."""


def encode(alert: dict) -> bytes:
    """The body exactly as sent and signed (stable key order, no spaces)."""
    return json.dumps(alert, sort_keys=True, separators=(",", ":")).encode()


def sign(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def deliver_alert(ctx: JobContext, *, alert: dict) -> dict:
    """POST one alert event to the webhook, signed."""
    url, secret = conf.alert_webhook_url(), conf.alert_webhook_secret()
    if not url or not secret:
        raise WebhookNotConfigured(
            "JOBS_ALERT_WEBHOOK_URL and JOBS_ALERT_WEBHOOK_SECRET are needed"
        )
    body = encode(alert)
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(body, secret),
            TIMESTAMP_HEADER: str(int(time.time())),
            EVENT_HEADER: str(alert.get("status", "")),
            "User-Agent": "bundle-jobs-alerts",
        },
    )
    # urlopen raises on a refused connection, a timeout and any 4xx/5xx: the attempt fails.
    with urllib.request.urlopen(request, timeout=conf.alert_webhook_timeout()) as response:
        status = response.status
    parts = urlsplit(url)  # never the query: it may carry a token
    return {"status": status, "host": parts.netloc, "bytes": len(body)}


def register() -> None:
    """Register the delivery kind (at ready(): its queue and policy come from settings)."""
    if not conf.get("JOBS_ALERTS_QUEUE") and not conf.job_queues():
        return  # a project with no job queue yet: no webhook deliveries (the event says so)
    job_kind(
        KIND,
        queue=conf.alerts_queue(),
        max_attempts=conf.alert_webhook_max_attempts(),
        backoff=conf.alert_webhook_backoff(),
        timeout=max(30, int(conf.alert_webhook_timeout() * 3)),
        description="Deliver an alert event to the webhook (signed JSON POST)",
    )(deliver_alert)
