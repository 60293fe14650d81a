"""System → Workers and GraphQL ``workers``: real workers, one SIGKILLed and shown dead."""

from __future__ import annotations

import json
import time

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from jobs import selectors
from jobs.enqueue import enqueue
from jobs.models import Job, JobState
from tests.jobs.conftest import wait_until
from tests.support import grant

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis]


def _by_pid(pid: int):
    for w in selectors.workers() or []:
        if w.pid == pid:
            return w
    return None


def test_a_sigkilled_worker_is_shown_dead_within_30_seconds(worker_process, client):
    # Given two live workers
    doomed, survivor = worker_process(), worker_process()
    wait_until(lambda: _by_pid(doomed.pid) and _by_pid(survivor.pid), timeout=60)
    assert not _by_pid(doomed.pid).dead
    # When one is SIGKILLed (no chance to unregister)
    doomed.kill()
    killed_at = time.monotonic()
    # Then it is shown dead within 30 s, and the other still live
    wait_until(lambda: (w := _by_pid(doomed.pid)) is not None and w.dead, timeout=30)
    assert time.monotonic() - killed_at < 30
    assert not _by_pid(survivor.pid).dead
    # And the page says so, next to the live one
    staff = grant(User.objects.create_user("op", is_staff=True), "jobs.view_job")
    client.force_login(staff)
    page = client.get(reverse("admin:jobs_job_workers")).content.decode()
    assert page.count('data-state="dead"') == 1
    assert str(doomed.pid) in page and str(survivor.pid) in page


def test_a_busy_worker_shows_its_current_job_linked(worker_process, redis_conn, token, client):
    # Given a worker running a slow job
    worker = worker_process()
    job = enqueue("test_slow", payload={"token": token, "steps": 40, "step_seconds": 0.25},
                  trigger="command")  # fmt: skip
    wait_until(lambda: Job.objects.get(pk=job.pk).state == JobState.RUNNING, timeout=30)
    # When
    info = wait_until(lambda: (w := _by_pid(worker.pid)) and w.current_job_id and w, timeout=15)
    # Then
    assert info.current_job_id == str(job.pk)
    assert info.state == "busy"
    assert "bundle-recompute" in info.queues
    staff = grant(User.objects.create_user("op", is_staff=True), "jobs.view_job")
    client.force_login(staff)
    page = client.get(reverse("admin:jobs_job_workers")).content.decode()
    assert reverse("admin:jobs_job_change", args=[job.pk]) in page
    # And over GraphQL
    body = client.post(
        "/graphql/",
        data=json.dumps({"query": "{ workers { pid state dead currentJobId queues } }"}),
        content_type="application/json",
        HTTP_X_CSRFTOKEN="x",
    )
    data = json.loads(body.content)
    assert "errors" not in data, data
    mine = [w for w in data["data"]["workers"] if w["pid"] == worker.pid]
    assert mine and mine[0]["currentJobId"] == str(job.pk) and mine[0]["dead"] is False


def test_the_workers_page_needs_view_permission(client):
    client.force_login(User.objects.create_user("nobody", is_staff=True))
    assert client.get(reverse("admin:jobs_job_workers")).status_code == 403
