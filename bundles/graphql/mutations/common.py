"""Shared bits of the bundle mutations: the permission they need, reasons, trigger."""

from __future__ import annotations

from api.errors import BadUserInput
from jobs.models import JobTrigger

# The admin's bundle actions need the change permission; so do these mutations.
CHANGE_BUNDLE = "bundles.change_bundle"
TRIGGER = JobTrigger.GRAPHQL
MAX_REASON = 255


def clean_reason(reason: str | None, *, default: str) -> str:
    reason = (reason or "").strip()
    if len(reason) > MAX_REASON:
        raise BadUserInput(
            f"'reason' is at most {MAX_REASON} characters (got {len(reason)}).", field="reason"
        )
    return reason or default
