"""A work horse never outlives its worker: ``run_worker`` gives every process it forks (the
horse, RQ's scheduler process) a parent-death signal, so a SIGKILLed worker takes them along."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobs.enqueue import enqueue
from tests.jobs.conftest import wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis]


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_a_sigkilled_worker_takes_its_busy_work_horse_with_it(worker_process, redis_conn, token):
    # Given a worker whose horse runs a long job
    worker = worker_process()
    enqueue(
        "test_slow", payload={"token": token, "steps": 400, "step_seconds": 0.25}, trigger="admin"
    )
    horse = int(wait_until(lambda: redis_conn.get(f"test:pid:{token}"), timeout=60))
    forked = worker.children()
    assert horse in forked
    # When the worker is SIGKILLed (its horse sits in a process group of its own)
    worker.kill()
    # Then the horse and every other process it forked are gone within seconds
    wait_until(lambda: not any(alive(pid) for pid in forked), timeout=5)
