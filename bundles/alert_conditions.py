"""The bundles app's alert conditions, registered with the jobs app from ``ready()``.

* ``check_broken``: bundles the last completed consistency check left with problems (broken,
  plus fixable issues it was not asked to fix), from that job's result; a check older than the
  rule's window measures nothing (the nightly schedule's own alerts tell when checks stop);
* ``bundle_staleness``: seconds since the oldest component change not yet applied to its
  bundles, i.e. the oldest waiting or running fan-out or recompute batch (a batch that absorbs
  later changes keeps its first request's time).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import Min

from bundles.kinds import Kind
from jobs.alerts.conditions import Measurement, register_condition
from jobs.alerts.models import AlertRule
from jobs.models import Job, JobState

# Jobs that carry component changes towards their bundles.
CHANGE_KINDS = (Kind.FANOUT, Kind.RECOMPUTE_BATCH)
UNAPPLIED_STATES = (JobState.PENDING, JobState.RUNNING, JobState.RETRYING)


def oldest_unapplied_change(*, now: datetime) -> tuple[float, str] | None:
    """(seconds, kind) of the oldest change still on its way to its bundles, or None.

    One probe per (state, kind) pair on ``job_state_kind_idx``: these jobs are few (they
    coalesce), whatever the size of the ledger."""
    oldest = (
        Job.objects.filter(state__in=UNAPPLIED_STATES, kind__in=CHANGE_KINDS)
        .values("kind")
        .annotate(first=Min("created_at"))
        .order_by("first")
        .first()
    )
    if oldest is None:
        return None
    return max(0.0, (now - oldest["first"]).total_seconds()), oldest["kind"]


def measure_bundle_staleness(rule: AlertRule, now: datetime) -> Measurement:
    """Seconds the oldest component change has waited to reach its bundles."""
    found = oldest_unapplied_change(now=now)
    if found is None:
        return Measurement(0.0, "every component change is applied")
    age, kind = found
    return Measurement(age, f"the oldest unapplied change ({kind}) has waited {int(age)}s")


def measure_check_broken(rule: AlertRule, now: datetime) -> Measurement:
    """Bundles with problems after the last completed consistency check."""
    # Bounded by the window: with no recent check, the backward walk of job_settled_idx stops
    # at the window's start instead of reading the whole ledger.
    last = (
        Job.objects.filter(
            state=JobState.COMPLETED,
            kind=Kind.CONSISTENCY_CHECK,
            settled_at__gte=now - timedelta(seconds=rule.window_seconds),
        )
        .order_by("-settled_at")
        .only("pk", "result", "settled_at")
        .first()
    )
    if last is None:
        return Measurement(None, "no consistency check completed in the window")
    result = last.result or {}
    left = int(result.get("broken", 0)) + int(result.get("needs_fix", 0))
    return Measurement(
        float(left),
        f"check {last.pk}: checked {result.get('checked', 0)}, broken {result.get('broken', 0)}, "
        f"needs fix {result.get('needs_fix', 0)}, fixed {result.get('fixed', 0)}",
    )


def register() -> None:
    register_condition(
        "check_broken",
        label="Consistency check: broken bundles",
        unit="bundles",
        measure=measure_check_broken,
    )
    register_condition(
        "bundle_staleness",
        label="Bundle staleness",
        unit="seconds",
        measure=measure_bundle_staleness,
    )
