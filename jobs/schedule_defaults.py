"""The schedules' defaults from settings (``JOBS_SCHEDULES``) as ``Schedule`` field values.

Pure data, no models: the data migration that creates the first rows and
``jobs.schedules.schedules_load_defaults`` both read it. Settings decide a schedule only on its
first creation; after that the row is the truth (edited in the admin or GraphQL).
"""

from __future__ import annotations

from jobs import conf

RELAY_REQUEST = "jobs.relay"
ENQUEUE_REQUEST = "jobs.enqueue"
DEFAULT_GRACE_SECONDS = 3600


def default_fields(item: dict) -> dict:
    """One ``JOBS_SCHEDULES`` entry as ``Schedule`` fields. The older ``kind`` + ``payload``
    form becomes the ``jobs.enqueue`` request (dedup key ``schedule:<id>``)."""
    if "request" in item:
        request, arguments = item["request"], dict(item.get("kwargs") or {})
    elif item.get("kind") == "relay":
        request, arguments = RELAY_REQUEST, {}
    else:
        request = ENQUEUE_REQUEST
        arguments = {
            "kind": item.get("kind", ""),
            "payload": dict(item.get("payload") or {}),
            # A backlog never piles up copies of the same schedule's job.
            "dedup_key": f"schedule:{item.get('id', '')}",
        }
    return {
        "name": item.get("id", ""),
        "cron": item.get("cron", ""),
        "timezone": item.get("timezone", "UTC"),
        "request": request,
        "arguments": arguments,
        "description": item.get("description", ""),
        "enabled": bool(item.get("enabled", True)),
        "grace_seconds": int(item.get("grace_seconds", DEFAULT_GRACE_SECONDS)),
    }


def defaults() -> list[dict]:
    return [default_fields(item) for item in conf.schedules()]
