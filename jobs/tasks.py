"""A Django Tasks backend whose tasks are ledger jobs: ``TASKS = {"default": {"BACKEND":
"jobs.tasks.LedgerBackend"}}``.

``@task`` + ``.enqueue()`` goes through the one way in (``jobs.enqueue.enqueue``, trigger
``task``): a ledger row in the caller's transaction, handed to RQ on commit, on the queue the
task's ``queue_name`` names, with the task's dotted path as its kind. The runner runs it like
any other kind: attempts and backoff from the backend's ``OPTIONS``, progress, cancel, errors
with tracebacks, System → Jobs. ``run_after`` is a delayed dispatch; a positive ``priority``
puts the job at the front of its RQ queue (all RQ offers: front or back).

OPTIONS: ``MAX_ATTEMPTS`` (default 1), ``BACKOFF`` (seconds before attempt 2, 3, ...; default
``[10, 60, 300]``), ``TIMEOUT`` (seconds, default 600). ``QUEUES`` defaults to ``RQ_QUEUES``.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from django.conf import settings
from django.utils.module_loading import import_string

try:  # Django 6 ships the Tasks framework as django.tasks; django-tasks backports it to 5.2.
    from django.tasks import TaskContext, TaskResult, TaskResultStatus
    from django.tasks.backends.base import BaseTaskBackend
    from django.tasks.base import Task, TaskError
    from django.tasks.exceptions import InvalidTaskError, TaskResultDoesNotExist
    from django.tasks.signals import task_enqueued
    from django.tasks.utils import normalize_json
except ImportError:
    from django_tasks import TaskContext, TaskResult, TaskResultStatus
    from django_tasks.backends.base import BaseTaskBackend
    from django_tasks.base import Task, TaskError
    from django_tasks.exceptions import InvalidTaskError, TaskResultDoesNotExist
    from django_tasks.signals import task_enqueued
    from django_tasks.utils import normalize_json

from jobs.enqueue import enqueue
from jobs.models import Job, JobState, JobTrigger
from jobs.registry import JobKind

# The ledger's kind column is 64 characters: a task's dotted path must fit.
KIND_MAX_LENGTH = cast(int, Job._meta.get_field("kind").max_length)  # set on the model

_CLASS_PATH = re.compile(r"^[A-Za-z_][\w.]*$")

_STATUS: dict[str, TaskResultStatus] = {
    JobState.PENDING: TaskResultStatus.READY,
    JobState.RETRYING: TaskResultStatus.READY,  # "ready to be executed again"
    JobState.RUNNING: TaskResultStatus.RUNNING,
    JobState.COMPLETED: TaskResultStatus.SUCCESSFUL,
    JobState.FAILED: TaskResultStatus.FAILED,
    JobState.CANCELLED: TaskResultStatus.FAILED,  # Django's Tasks have no "cancelled"
}


@dataclass(frozen=True, kw_only=True)
class LedgerTaskContext(TaskContext):
    """The Tasks API's context plus the ledger's progress reporting and cancel checks."""

    job_context: Any = None

    def set_progress(self, pct: int, message: str = "") -> None:
        self.job_context.set_progress(pct, message)

    def cancel_requested(self) -> bool:
        return self.job_context.cancel_requested()


class LedgerBackend(BaseTaskBackend):
    supports_defer = True
    supports_async_task = True
    supports_get_result = True
    supports_priority = True

    def __init__(self, alias: str, params: dict) -> None:
        super().__init__(alias, params)
        if "QUEUES" not in params:
            self.queues = set(getattr(settings, "RQ_QUEUES", {}) or ["default"])
        self.max_attempts = int(self.options.get("MAX_ATTEMPTS", 1))
        self.backoff = tuple(int(s) for s in self.options.get("BACKOFF", (10, 60, 300)))
        self.timeout = int(self.options.get("TIMEOUT", 600))
        if self.max_attempts < 1:
            raise InvalidTaskError(f"Tasks backend {alias!r}: MAX_ATTEMPTS must be at least 1")

    def validate_task(self, task: Task) -> None:
        super().validate_task(task)
        if len(task.module_path) > KIND_MAX_LENGTH:
            raise InvalidTaskError(
                f"Task path {task.module_path!r} is longer than {KIND_MAX_LENGTH} characters"
            )

    def enqueue(self, task: Task, args: Sequence[Any], kwargs: dict[str, Any]) -> TaskResult:
        self.validate_task(task)
        payload = {
            "args": normalize_json(args),  # TypeError for values JSON cannot carry
            "kwargs": normalize_json(kwargs),
            "backend": self.alias,
            "priority": task.priority,
        }
        job = enqueue(
            task.module_path,
            payload=payload,
            trigger=JobTrigger.TASK,
            queue=task.queue_name,
            run_after=task.run_after,
        )
        result = _result_for(job, task)
        task_enqueued.send(type(self), task_result=result)
        return result

    def get_result(self, result_id: str) -> TaskResult:
        try:
            job = Job.objects.get(pk=uuid.UUID(str(result_id)), trigger=JobTrigger.TASK)
        except (ValueError, Job.DoesNotExist):
            raise TaskResultDoesNotExist(result_id) from None
        task = _task_at(job.kind)
        if task is None or job.payload.get("backend") != self.alias:
            raise TaskResultDoesNotExist(result_id)
        return _result_for(job, task)

    def kind_for(self, task: Task) -> JobKind:
        return JobKind(
            name=task.module_path,
            queue=task.queue_name,
            handler=_run_task,
            max_attempts=self.max_attempts,
            backoff=self.backoff,
            timeout=self.timeout,
            description=(task.func.__doc__ or "").strip().split("\n")[0],
            dispatch_options=_rq_priority,
        )


def resolve_task_kind(name: str) -> JobKind | None:
    """The registry's fallback: a dotted path to a ``@task`` on a LedgerBackend is a kind."""
    task = _task_at(name)
    if task is None:
        return None
    return task.get_backend().kind_for(task)


def _task_at(path: str) -> Task | None:
    if "." not in path:
        return None
    try:
        task = import_string(path)
    except ImportError:
        return None
    if not isinstance(task, Task) or not isinstance(task.get_backend(), LedgerBackend):
        return None
    return task


def _rq_priority(payload: dict) -> dict:
    # RQ has two places in a queue: a positive priority goes to the front.
    return {"at_front": int(payload.get("priority", 0)) > 0}


def _run_task(ctx, *, args: list, kwargs: dict, backend: str, priority: int = 0) -> dict:
    """The handler of every task kind: call the function, keep its return value."""
    task = import_string(ctx.job.kind).using(backend=backend)
    if task.takes_context:
        context = LedgerTaskContext(task_result=_result_for(ctx.job, task), job_context=ctx)
        value = task.call(context, *args, **kwargs)
    else:
        value = task.call(*args, **kwargs)
    return {"return_value": normalize_json(value)}  # TypeError if JSON cannot carry it


def _result_for(job: Job, task: Task) -> TaskResult:
    payload = job.payload or {}
    task = task.using(
        queue_name=job.queue,
        priority=payload.get("priority"),
        backend=payload.get("backend"),
        run_after=None,
    )
    if job.next_attempt_at and job.state == JobState.PENDING:
        task = task.using(run_after=job.next_attempt_at)
    errors = job.errors or []
    worker_ids = [e.get("worker", "") for e in errors][: job.attempts]
    if job.attempts > len(worker_ids):
        worker_ids.append(job.worker_name)
    result = TaskResult(
        task=task,
        id=str(job.pk),
        status=_STATUS[job.state],
        enqueued_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.settled_at if job.is_settled else None,
        last_attempted_at=job.started_at,
        args=payload.get("args", []),
        kwargs=payload.get("kwargs", {}),
        backend=payload.get("backend", task.backend),
        errors=[
            TaskError(exception_class_path=_exception_path(e), traceback=e.get("traceback", ""))
            for e in errors
        ],
        worker_ids=worker_ids,
    )
    if job.state == JobState.COMPLETED and isinstance(job.result, dict):
        object.__setattr__(result, "_return_value", job.result.get("return_value"))
    return result


def _exception_path(error: dict) -> str:
    """The raised class's dotted path, from the traceback's last line ("pkg.Error: ...")."""
    lines = [ln for ln in (error.get("traceback") or "").splitlines() if ln.strip()]
    last = lines[-1] if lines else error.get("message", "")
    name = last.split(":", 1)[0].strip()
    if not _CLASS_PATH.match(name):
        return "builtins.Exception"  # no exception of its own: a dead worker, a timeout
    return name if "." in name else f"builtins.{name}"


__all__ = ["LedgerBackend", "LedgerTaskContext", "resolve_task_kind"]
