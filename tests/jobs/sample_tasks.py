"""Module-level ``@task`` functions for the Tasks backend tests (workers import them by path).

Each leaves a trace in the suite's real Redis so a test can count runs in another process.
"""

from __future__ import annotations

from typing import Any

import django_rq

try:  # Django 6
    from django.tasks import TaskContext, task
except ImportError:
    from django_tasks import TaskContext, task

QUEUE = "bundle-recompute"


def _redis():
    return django_rq.get_connection(QUEUE)


@task(queue_name=QUEUE)
def noop_task(*args: Any, **kwargs: Any) -> None:
    return None


@task(queue_name=QUEUE)
def calculate_meaning_of_life() -> int:
    return 42


@task(queue_name=QUEUE)
def echo(*args: Any, **kwargs: Any) -> dict:
    return {"args": list(args), "kwargs": kwargs}


@task(queue_name=QUEUE)
def failing_task_value_error() -> None:
    raise ValueError("This task failed due to ValueError")


@task(queue_name=QUEUE)
def complex_exception() -> None:
    raise ValueError(ValueError("This task failed"))


@task(queue_name=QUEUE)
def complex_return_value() -> Any:
    # Something JSON cannot carry
    return lambda: True


@task(queue_name=QUEUE)
def fails_then_succeeds(token: str, fail_times: int) -> int:
    run = _redis().incr(f"test:task-runs:{token}")
    if run <= fail_times:
        raise RuntimeError(f"task failure number {run}")
    return run


@task(queue_name=QUEUE)
def record_time(token: str) -> None:
    import time

    _redis().set(f"test:task-ran-at:{token}", time.time())


@task(queue_name=QUEUE, takes_context=True)
def get_task_id(context: TaskContext) -> str:
    return context.task_result.id


@task(queue_name=QUEUE, takes_context=True)
def report_progress(context: TaskContext, attempt: int) -> int:
    assert context.attempt == attempt
    context.set_progress(50, "half way")
    return context.attempt


@task(queue_name="bundle-reindex")
def on_reindex_queue() -> str:
    return "reindex"
