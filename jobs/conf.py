"""Every setting the jobs app reads, with its default (django-rq's ``settings.py`` is the model).

Read through these functions, never ``settings.JOBS_*`` directly: a project that sets nothing
gets the defaults, and ``override_settings`` in tests takes effect at once (nothing is cached).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

DEFAULTS: dict[str, Any] = {
    # Settled jobs older than this many days are pruned (weekly maintenance, ``jobs purge``).
    "JOBS_RETENTION_DAYS": 30,
    # No purge (a schedule's retention_days, a maintenance run) keeps fewer days than this: the
    # ledger is the evidence of what ran, so nobody can wipe yesterday's jobs with a schedule.
    "JOBS_MIN_RETENTION_DAYS": 1,
    # A running job whose worker has not reported for this long is considered dead.
    "JOBS_STALE_AFTER_SECONDS": 90,
    # Cron schedules (UTC): dicts with id, cron, request (a registered request function),
    # kwargs (its JSON arguments) and description.
    # Only on first creation: after the data migration the ``Schedule`` table is the truth.
    # Each may also set timezone (default UTC), enabled and grace_seconds (default 3600).
    "JOBS_SCHEDULES": [],
    # Seconds between the scheduler's cycles (re-sync from the table, enqueue what is due).
    "JOBS_SCHEDULER_INTERVAL": 10,
    # The active scheduler's lock lives this long unless renewed (each cycle renews it); a
    # standby takes over at most this long plus one interval after the active one died.
    "JOBS_SCHEDULER_LOCK_TTL": 30,
    # The queues the ledger serves, in display order; None = every RQ queue but "default".
    "JOB_QUEUES": None,
    # At most one progress write per this many seconds (100 % is always written).
    "JOBS_PROGRESS_MIN_INTERVAL": 0.5,
    # How often a running job's heartbeat thread touches its row (one UPDATE per job).
    "JOBS_HEARTBEAT_INTERVAL": 15.0,
    # A running row whose RQ worker is gone or has sent RQ no heartbeat for this long, and whose
    # own heartbeat is as old, is dead (``jobs.liveness``). Above both heartbeat intervals (RQ's
    # busy worker: 10 s; the row: JOBS_HEARTBEAT_INTERVAL).
    "JOBS_WORKER_SILENT_AFTER": 20,
    # How often (seconds) one of the live workers runs reconcile + relay (``jobs.worker``).
    "JOBS_RECONCILE_INTERVAL": 5,
    # How long RQ keeps the runner's outcome: the ledger is the record.
    "JOBS_RQ_RESULT_TTL": 3600,
    "JOBS_RQ_FAILURE_TTL": 7 * 24 * 3600,
    # Who may scrape /metrics: a bearer token, and/or client addresses; staff with
    # jobs.view_job always may. Neither set: staff only.
    "JOBS_METRICS_TOKEN": None,
    "JOBS_METRICS_ALLOWED_IPS": [],
    # Reverse proxies in front of the site that append to X-Forwarded-For: the client is the
    # entry this far from the right (``jobs.client_ip``). 0: REMOTE_ADDR, the header ignored.
    "TRUSTED_PROXIES": 0,
    # --- alerts (jobs.alerts, issue 24) ---
    # Whether the maintenance pass evaluates the alert rules (``manage.py check_alerts`` always
    # does). The test settings turn it off: tests evaluate when they mean to.
    "JOBS_ALERTS_ENABLED": True,
    # At most one evaluation of the alert rules per this many seconds, across all workers.
    "JOBS_ALERTS_INTERVAL": 30,
    # The queue of the webhook delivery jobs (``jobs.alert_webhook``); None: the first job queue.
    "JOBS_ALERTS_QUEUE": None,
    # Where alerts are POSTed (JSON, signed with HMAC-SHA256 of the body under the secret).
    # Empty: no webhook. Set both from the environment, never in the repository.
    "JOBS_ALERT_WEBHOOK_URL": "",
    "JOBS_ALERT_WEBHOOK_SECRET": "",
    "JOBS_ALERT_WEBHOOK_TIMEOUT": 5.0,
    # A delivery is a ledger job: a receiver that is down shows its retries as attempts.
    "JOBS_ALERT_WEBHOOK_MAX_ATTEMPTS": 5,
    "JOBS_ALERT_WEBHOOK_BACKOFF": (10, 60, 300, 900),
    # The rules the data migration creates (fields of ``AlertRule``); after it, the table is the
    # truth. These are the jobs app's own; a project adds its conditions' rules.
    "JOBS_ALERT_RULES": [
        # Most jobs failing is trouble whatever the kind; 20 settled jobs before a rate counts.
        {
            "name": "failure-rate",
            "condition": "failure_rate",
            "threshold": 50,
            "min_count": 20,
            "window_seconds": 900,
            "description": "Over half of the jobs settled in 15 minutes failed",
        },
        # The same bound as /health/'s JOBS_HEALTH_MAX_WAIT default: a job waiting 10 minutes.
        {
            "name": "oldest-waiting",
            "condition": "oldest_waiting",
            "threshold": 600,
            "description": "A queue's oldest waiting job (paused queues too) waited 10 minutes",
        },
        {
            "name": "schedule-missed",
            "condition": "schedule_missed",
            "threshold": 0,
            "window_seconds": 86400,
            "description": "A schedule's fire was skipped in the last 24 hours",
        },
        {
            "name": "schedule-failed",
            "condition": "schedule_failed",
            "threshold": 0,
            "description": "A schedule's last fire ended in a failed job",
        },
        {
            "name": "dead-workers",
            "condition": "dead_workers",
            "threshold": 0,
            "window_seconds": 900,
            "description": "A worker died (went silent) in 15 minutes",
        },
    ],
}


def get(name: str) -> Any:
    """The setting ``name`` from the project's settings, else its default."""
    return getattr(settings, name, DEFAULTS[name])


def retention_days() -> int:
    return int(get("JOBS_RETENTION_DAYS"))


def min_retention_days() -> int:
    return int(get("JOBS_MIN_RETENTION_DAYS"))


def stale_after_seconds() -> int:
    return int(get("JOBS_STALE_AFTER_SECONDS"))


def schedules() -> list[dict]:
    return list(get("JOBS_SCHEDULES") or [])


def job_queues() -> list[str]:
    """The job queues, in display order (the first also runs the relay schedule)."""
    queues = get("JOB_QUEUES")
    if queues is None:
        queues = [name for name in getattr(settings, "RQ_QUEUES", {}) if name != "default"]
    return list(queues)


def progress_min_interval() -> float:
    return float(get("JOBS_PROGRESS_MIN_INTERVAL"))


def heartbeat_interval() -> float:
    return float(get("JOBS_HEARTBEAT_INTERVAL"))


def worker_silent_after() -> int:
    return int(get("JOBS_WORKER_SILENT_AFTER"))


def reconcile_interval() -> float:
    return float(get("JOBS_RECONCILE_INTERVAL"))


def rq_result_ttl() -> int:
    return int(get("JOBS_RQ_RESULT_TTL"))


def rq_failure_ttl() -> int:
    return int(get("JOBS_RQ_FAILURE_TTL"))


def scheduler_interval() -> int:
    return int(get("JOBS_SCHEDULER_INTERVAL"))


def scheduler_lock_ttl() -> int:
    return int(get("JOBS_SCHEDULER_LOCK_TTL"))


def metrics_token() -> str | None:
    return get("JOBS_METRICS_TOKEN") or None


def metrics_allowed_ips() -> list[str]:
    return list(get("JOBS_METRICS_ALLOWED_IPS") or [])


def trusted_proxies() -> int:
    return max(0, int(get("TRUSTED_PROXIES") or 0))


# --- alerts (jobs.alerts, issue 24) ---------------------------------------------------------


def alerts_enabled() -> bool:
    return bool(get("JOBS_ALERTS_ENABLED"))


def alerts_interval() -> float:
    return float(get("JOBS_ALERTS_INTERVAL"))


def alerts_queue() -> str:
    return get("JOBS_ALERTS_QUEUE") or job_queues()[0]


def alert_webhook_url() -> str:
    return str(get("JOBS_ALERT_WEBHOOK_URL") or "")


def alert_webhook_secret() -> str:
    return str(get("JOBS_ALERT_WEBHOOK_SECRET") or "")


def alert_webhook_timeout() -> float:
    return float(get("JOBS_ALERT_WEBHOOK_TIMEOUT"))


def alert_webhook_max_attempts() -> int:
    return int(get("JOBS_ALERT_WEBHOOK_MAX_ATTEMPTS"))


def alert_webhook_backoff() -> tuple[int, ...]:
    return tuple(int(b) for b in get("JOBS_ALERT_WEBHOOK_BACKOFF"))


def alert_rules() -> list[dict]:
    return [dict(item) for item in get("JOBS_ALERT_RULES") or []]
