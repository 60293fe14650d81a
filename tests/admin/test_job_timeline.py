"""The job page's timeline: events in the order they happened, each attempt's start first."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from jobs.admin.display import job_timeline
from jobs.models import Job, JobState

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_a_retried_job_shows_every_attempt_started_before_it_failed():
    # Given a job whose first two attempts failed and whose third completed
    job = Job(
        queue="q",
        kind="k",
        state=JobState.COMPLETED,
        attempts=3,
        created_at=at(0),
        dispatched_at=at(9),
        started_at=at(10),
        settled_at=at(11),
        worker_name="w3",
        errors=[
            {"attempt": 1, "started": at(1).isoformat(), "at": at(2).isoformat(), "message": "a"},
            {"attempt": 2, "started": at(5).isoformat(), "at": at(5).isoformat(), "message": "b"},
        ],
    )
    # When the timeline is built, Then it reads in event order, a start before its failure
    assert [e.label for e in job_timeline(job, [])] == [
        "Created",
        "Attempt 1 started",
        "Attempt 1 failed",
        "Attempt 2 started",
        "Attempt 2 failed",
        "Last dispatched",
        "Attempt 3 started",
        "Completed",
    ]


def test_the_last_attempt_that_failed_is_started_once():
    job = Job(
        queue="q",
        kind="k",
        state=JobState.FAILED,
        attempts=1,
        created_at=at(0),
        started_at=at(1),
        settled_at=at(2),
        errors=[{"attempt": 1, "started": at(1).isoformat(), "at": at(2).isoformat()}],
    )
    labels = [e.label for e in job_timeline(job, [])]
    assert labels == ["Created", "Attempt 1 started", "Attempt 1 failed", "Failed"]
