"""``/metrics``: parsed by prometheus-client's own parser; refused without a token or address."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.test import override_settings
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from jobs.enqueue import enqueue
from jobs.models import Job, JobState
from jobs.services import queue_pause
from tests.support import grant

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis]

TOKEN = "scrape-me-0123456789"


def samples(text: str) -> dict[tuple[str, tuple], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


@pytest.fixture
def ledger(redis_conn):
    """Two pending jobs (oldest 120 s old) and one failed on bundle-recompute; one completed
    in 0.4 s and one in 3 s; the queue bundle-reindex paused."""
    now = timezone.now()
    queue_pause(queue="bundle-reindex")
    made = [enqueue("test_noop", payload={"n": i}, trigger="command") for i in range(5)]
    Job.objects.filter(pk=made[0].pk).update(created_at=now - timedelta(seconds=120))
    Job.objects.filter(pk=made[2].pk).update(state=JobState.FAILED, settled_at=now)
    for job, seconds in ((made[3], 0.4), (made[4], 3.0)):
        Job.objects.filter(pk=job.pk).update(
            state=JobState.COMPLETED,
            started_at=now - timedelta(seconds=seconds),
            settled_at=now,
        )
    return made


@override_settings(JOBS_METRICS_TOKEN=TOKEN)
def test_metrics_parse_with_the_expected_names_and_values(client, ledger):
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    got = samples(response.content.decode())
    q = ("queue", "bundle-recompute")
    assert got[("jobs_queue_waiting", (q,))] == 2
    assert 119 <= got[("jobs_queue_oldest_waiting_seconds", (q,))] < 180
    assert got[("jobs_queue_paused", (q,))] == 0
    assert got[("jobs_queue_paused", (("queue", "bundle-reindex"),))] == 1
    assert got[("jobs_current", (("kind", "test_noop"), ("state", "pending")))] == 2
    assert got[("jobs_current", (("kind", "test_noop"), ("state", "failed")))] == 1
    assert got[("jobs_settled_last_24h", (("kind", "test_noop"), ("state", "completed")))] == 2
    k = ("kind", "test_noop")
    assert got[("jobs_run_seconds_bucket", (k, ("le", "0.5")))] == 1
    assert got[("jobs_run_seconds_bucket", (k, ("le", "5.0")))] == 2
    assert got[("jobs_run_seconds_count", (k,))] == 2
    assert got[("jobs_run_seconds_sum", (k,))] == pytest.approx(3.4, abs=0.01)
    assert ("jobs_workers", (("state", "live"),)) in got
    families = {f.name for f in text_string_to_metric_families(response.content.decode())}
    assert {
        "jobs_scheduler_last_seen_seconds",
        "jobs_queue_workers",
        "jobs_run_seconds",
    } <= families


@override_settings(JOBS_METRICS_TOKEN=TOKEN, JOBS_METRICS_ALLOWED_IPS=["10.0.0.0/8"])
def test_an_unauthorised_scrape_is_refused(client, ledger):
    assert client.get("/metrics").status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    assert client.get("/metrics", REMOTE_ADDR="192.168.1.5").status_code == 403
    client.force_login(User.objects.create_user("nobody", is_staff=True))
    assert client.get("/metrics").status_code == 403


@override_settings(JOBS_METRICS_ALLOWED_IPS=["10.0.0.0/8"])
def test_an_allowed_address_or_staff_with_view_permission_may_scrape(client, ledger):
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 200
    client.force_login(grant(User.objects.create_user("op", is_staff=True), "jobs.view_job"))
    assert client.get("/metrics").status_code == 200


@override_settings(JOBS_METRICS_ALLOWED_IPS=["203.0.113.0/24"], TRUSTED_PROXIES=1)
def test_behind_a_declared_proxy_the_allow_list_sees_the_address_the_proxy_forwarded(
    client, ledger
):
    # The proxy (10.0.0.1) appends the address it saw to X-Forwarded-For: the last entry.
    proxied = {"REMOTE_ADDR": "10.0.0.1"}
    allowed = client.get("/metrics", HTTP_X_FORWARDED_FOR="203.0.113.5", **proxied)
    assert allowed.status_code == 200
    # What a client writes in the header itself stays left of what the proxy appended.
    spoofed = client.get("/metrics", HTTP_X_FORWARDED_FOR="203.0.113.5, 198.51.100.7", **proxied)
    assert spoofed.status_code == 403


@override_settings(JOBS_METRICS_ALLOWED_IPS=["203.0.113.0/24"], TRUSTED_PROXIES=0)
def test_without_a_declared_proxy_the_allow_list_ignores_x_forwarded_for(client, ledger):
    forged = client.get("/metrics", HTTP_X_FORWARDED_FOR="203.0.113.5", REMOTE_ADDR="10.0.0.1")
    assert forged.status_code == 403
    assert client.get("/metrics", REMOTE_ADDR="203.0.113.9").status_code == 200
