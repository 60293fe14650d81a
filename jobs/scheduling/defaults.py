"""The schedules' defaults from settings (``JOBS_SCHEDULES``) as ``Schedule`` field values.

Pure data, no models: the data migration that creates the first rows and
``jobs.scheduling.store.schedules_load_defaults`` both read it. Settings decide a schedule
only on its first creation; after that the row is the truth (edited in the admin or GraphQL).
"""

from __future__ import annotations

from jobs import conf

RELAY_REQUEST = "jobs.relay"
DEFAULT_GRACE_SECONDS = 3600


def default_fields(item: dict) -> dict:
    """One ``JOBS_SCHEDULES`` entry as ``Schedule`` fields. Each names a request function (its
    permission and validation come with it); ``kind: relay`` is the relay's older spelling."""
    if "request" in item:
        request, arguments = item["request"], dict(item.get("kwargs") or {})
    elif item.get("kind") == "relay":
        request, arguments = RELAY_REQUEST, {}
    else:
        raise ValueError(
            f"JOBS_SCHEDULES entry {item.get('id', '')!r}: name a registered request function "
            "('request' and 'kwargs'); the kind + payload form (the generic jobs.enqueue, which "
            "let a schedule do work its editor had no permission for) is gone"
        )
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
    """Every ``JOBS_SCHEDULES`` entry as ``Schedule`` fields."""
    return [default_fields(item) for item in conf.schedules()]
