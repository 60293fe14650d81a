"""Job ids as people type them: a UUID, or the first 8+ characters the admin shows."""

from __future__ import annotations

import contextlib
import uuid

from jobs.errors import JobNotFound
from jobs.models import Job

# A job id as callers hold it: the UUID, or its text (from a URL, a form, a command line).
JobId = uuid.UUID | str


def parse_job_id(job_id: JobId) -> uuid.UUID:
    """A job id as UUID, or :class:`JobNotFound` naming the malformed value."""
    if isinstance(job_id, uuid.UUID):
        return job_id
    try:
        return uuid.UUID(str(job_id).strip())
    except (ValueError, AttributeError, TypeError):
        raise JobNotFound(f"{job_id!r} is not a job id (expected a UUID)") from None


HEX = frozenset("0123456789abcdef")


def id_prefix_range(hex_prefix: str) -> tuple[uuid.UUID, uuid.UUID]:
    return (
        uuid.UUID(hex_prefix.ljust(32, "0")),
        uuid.UUID(hex_prefix.ljust(32, "f")),
    )


def resolve_job_id(value: JobId) -> uuid.UUID:
    """A full job id, or the first 8+ characters of one as the admin shows them.

    Raises :class:`JobNotFound` for a malformed value, no match, or a prefix several jobs share
    (saying how many).
    """
    text = str(value).strip().lower()
    with contextlib.suppress(ValueError):
        return uuid.UUID(text)
    hex_part = text.replace("-", "")
    if not (8 <= len(hex_part) < 32 and set(hex_part) <= HEX):
        raise JobNotFound(
            f"{value!r} is not a job id (expected a UUID or its first 8 or more characters)"
        )
    low, high = id_prefix_range(hex_part)
    found = list(Job.objects.filter(pk__gte=low, pk__lte=high).values_list("pk", flat=True)[:2])
    if not found:
        raise JobNotFound(f"No job whose id starts with {text}")
    if len(found) > 1:
        n = Job.objects.filter(pk__gte=low, pk__lte=high).count()
        raise JobNotFound(f"{n} jobs have ids starting with {text}; give more characters")
    return found[0]
