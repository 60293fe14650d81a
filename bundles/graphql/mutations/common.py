"""Shared bits of the bundle mutations: the permission they need, reasons, trigger."""

from __future__ import annotations

from api.graphql_utils import clean_text
from jobs.models import JobTrigger

# The admin's bundle actions need the change permission; so do these mutations.
CHANGE_BUNDLE = "bundles.change_bundle"
TRIGGER = JobTrigger.GRAPHQL
MAX_REASON = 255


def clean_reason(reason: str | None, *, default: str) -> str:
    return clean_text(reason, field="reason", max_length=MAX_REASON) or default
