"""One attempt: run the kind's handler with a :class:`JobContext` (its heartbeat watched), turn
how it ended into an :class:`AttemptOutcome`, and record that outcome."""

from __future__ import annotations

import contextlib
import json
import traceback
from dataclasses import dataclass
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from rq.job import Job as RQJob

from jobs.context import AttemptSuperseded, JobCancelled, JobContext
from jobs.models import Job
from jobs.parents import AwaitChildren, park
from jobs.registry import UnknownJobKind, get_kind
from jobs.runner.heartbeats import JobHeartbeats
from jobs.runner.settle import finish, finish_cancelled, record_failure


def execute(job: Job, rq_job: RQJob | None, *, inline: bool = False) -> Job:
    """Run the claimed attempt's handler here and record how it ended."""
    return record_outcome(job, run_handler(job, rq_job), dispatch_retry=not inline)


@dataclass
class AttemptOutcome:
    """How one run of a handler ended, as plain data: a forked work horse hands it to its
    worker, which records it (see ``jobs.runner.handover``). Not ``bundles``' evaluation
    outcome: this is how a job's attempt ended."""

    # "ok", "await" (a parent waiting for its children), "cancelled", "error", "superseded"
    # (the attempt is no longer the row's current one: nothing to record)
    status: str
    result: Any = None  # JSON-ready (ok, cancelled)
    message: str = ""  # error: "ExcType: text"
    traceback: str = ""


def run_handler(job: Job, rq_job: RQJob | None) -> AttemptOutcome:
    """Run the handler of the claimed attempt `job`; never raises, never writes the outcome."""
    ctx = JobContext(job, rq_job)
    heartbeats = JobHeartbeats.get()
    heartbeats.watch(ctx)
    try:
        kind = get_kind(job.kind)
        result = kind.run(ctx, dict(job.payload or {}))
        if isinstance(result, AwaitChildren):
            return AttemptOutcome("await")
        if result is not None:
            result = _jsonable(result)
    except AttemptSuperseded:
        return AttemptOutcome("superseded")
    except JobCancelled:
        return AttemptOutcome("cancelled")
    except Exception as exc:
        return AttemptOutcome(
            "error", message=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc()
        )
    finally:
        heartbeats.unwatch(ctx)
    return AttemptOutcome("cancelled" if ctx.cancel_seen else "ok", result)


def record_outcome(job: Job, outcome: AttemptOutcome, *, dispatch_retry: bool) -> Job:
    """Store the outcome of ``job``'s current attempt (each write conditional on it)."""
    if outcome.status == "superseded":
        return Job.objects.filter(pk=job.pk).first() or job
    if outcome.status == "await":
        return park(job)
    if outcome.status == "ok":
        return finish(job, outcome.result)
    if outcome.status == "cancelled":
        return finish_cancelled(job, outcome.result)
    kind = None
    with contextlib.suppress(UnknownJobKind):
        kind = get_kind(job.kind)
    return record_failure(
        job,
        message=outcome.message,
        tb=outcome.traceback,
        kind=kind,
        dispatch_retry=dispatch_retry,
    )


def _jsonable(value: Any) -> Any:
    # Decimals, dates and UUIDs in a result become strings, like in an API response.
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder))
