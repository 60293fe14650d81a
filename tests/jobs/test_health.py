"""/health/: database, Redis, a live worker per queue, the scheduler's heartbeat, the backlog."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import timezone
from django_rq import settings as rq_settings

from config.embedded_redis import free_port
from jobs.enqueue import enqueue
from jobs.models import Job
from jobs.scheduling.scheduler_heartbeat import HEARTBEAT_KEY, write_heartbeat
from tests.support import ROOT, test_database_url, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis]

QUEUES = list(settings.JOB_QUEUES)


def health(client):
    response = client.get(reverse("health"))
    assert response["Content-Type"] == "application/json"
    return response.status_code, response.json()


@pytest.fixture
def scheduler_process(redis_conn):
    """A real ``manage.py run_scheduler`` on the test database and the suite's Redis."""
    env = dict(os.environ, DATABASE_URL=test_database_url(), LOG_LEVEL="WARNING")
    env.setdefault("SECRET_KEY", "test-suite-key-not-a-secret")
    proc = subprocess.Popen(  # noqa: S603 - fixed argv
        [sys.executable, str(ROOT / "manage.py"), "run_scheduler", "--interval", "1"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    yield proc
    proc.kill()
    proc.wait(timeout=10)


def test_everything_up_answers_200(client, start_worker, scheduler_process, redis_conn):
    # Given a worker on every job queue and a running scheduler
    start_worker(*QUEUES)
    wait_until(lambda: redis_conn.get(HEARTBEAT_KEY), timeout=60)
    # When / Then (workers register within seconds of starting)
    wait_until(lambda: health(client)[0] == 200, timeout=60)
    status, body = health(client)
    assert body == {
        "status": "ok",
        "failing": [],
        "checks": {
            "database": "ok",
            "redis": "ok",
            "workers": "ok",
            "scheduler": "ok",
            "backlog": "ok",
            "bundles_staleness": "ok",  # registered by the bundles app (jobs.probes)
        },
    }


def test_no_worker_answers_503_naming_the_queues(client, redis_conn):
    # Given Redis and a fresh scheduler heartbeat, but no worker
    write_heartbeat(redis_conn)
    status, body = health(client)
    assert status == 503
    assert body["status"] == "failing"
    assert body["failing"] == ["workers"]
    for queue in QUEUES:
        assert queue in body["checks"]["workers"]


def test_a_queue_without_a_worker_is_named(client, start_worker, redis_conn):
    write_heartbeat(redis_conn)
    start_worker(*QUEUES[:3])

    def only_the_fourth_missing():
        _, body = health(client)
        answer = body["checks"]["workers"]
        return "no live worker" in answer and QUEUES[0] not in answer and body

    body = wait_until(only_the_fourth_missing, timeout=60)
    assert body["checks"]["workers"] == f"Unavailable: no live worker for queue {QUEUES[3]}"


def test_redis_down_answers_503_naming_redis_without_its_address(client, monkeypatch):
    # Given every queue pointing at a port where nothing listens
    port = free_port()
    for name, config in list(rq_settings.QUEUES.items()):
        monkeypatch.setitem(
            rq_settings.QUEUES, name, {**config, "URL": f"redis://127.0.0.1:{port}/0"}
        )
    status, body = health(client)
    assert status == 503
    assert {"redis", "workers", "scheduler"} <= set(body["failing"])
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["redis"].startswith("Unavailable: Redis unreachable")
    assert str(port) not in str(body) and "127.0.0.1" not in str(body)


def test_missing_or_old_scheduler_heartbeat_fails(client, redis_conn, settings):
    status, body = health(client)
    assert "scheduler" in body["failing"]
    assert "no scheduler heartbeat" in body["checks"]["scheduler"]
    redis_conn.set(HEARTBEAT_KEY, f"{timezone.now().timestamp() - 300:.3f}")
    status, body = health(client)
    assert status == 503
    assert "old (limit 60s)" in body["checks"]["scheduler"]


def test_a_job_waiting_too_long_fails_the_backlog(client, redis_conn, settings):
    import tests.jobs.kinds  # noqa: F401 - registers test_noop

    write_heartbeat(redis_conn)
    job = enqueue("test_noop", payload={}, trigger="command", dispatch_on_commit=False)
    # a job delayed on purpose (run_after) is not waiting yet
    enqueue(
        "test_noop",
        payload={},
        trigger="command",
        dispatch_on_commit=False,
        run_after=timezone.now() + timedelta(hours=2),
    )
    _, body = health(client)
    assert body["checks"]["backlog"] == "ok"
    Job.objects.filter(pk=job.pk).update(created_at=timezone.now() - timedelta(minutes=20))
    status, body = health(client)
    assert status == 503
    assert "backlog" in body["failing"]
    assert "(limit 600s)" in body["checks"]["backlog"]


def test_a_browser_gets_the_html_page(client, redis_conn):
    response = client.get(reverse("health"), HTTP_ACCEPT="text/html")
    assert response["Content-Type"].startswith("text/html")
    assert response.status_code == 503  # no worker here
