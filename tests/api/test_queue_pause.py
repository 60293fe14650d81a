"""GraphQL and the admin strip show who paused a queue and when (kept in the database)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from jobs.models import QueuePause

pytestmark = [pytest.mark.django_db, pytest.mark.redis]

PAUSE = 'mutation { pauseQueue(name: "bundle-reindex") { name paused } }'
QUEUES = "{ jobQueues { name paused pausedBy pausedAt } }"


def _queue(response, name: str) -> dict:
    return next(q for q in response.data["jobQueues"] if q["name"] == name)


def test_job_queues_show_who_paused_a_queue_and_when(gql, staff_with_perms, redis_conn):
    # Given a queue paused over GraphQL
    assert gql(PAUSE).data["pauseQueue"] == {"name": "bundle-reindex", "paused": True}
    # Then jobQueues names the user and the time, from the table
    paused = _queue(gql(QUEUES), "bundle-reindex")
    pause = QueuePause.objects.get(queue="bundle-reindex")
    assert paused["paused"] is True
    assert paused["pausedBy"] == staff_with_perms.get_username()
    assert paused["pausedAt"] == pause.paused_at.isoformat()
    running = _queue(gql(QUEUES), "bundle-recompute")
    assert (running["paused"], running["pausedBy"], running["pausedAt"]) == (False, None, None)


def test_the_admin_strip_shows_who_paused_a_queue(client, staff_with_perms, gql, redis_conn):
    gql(PAUSE)
    client.force_login(staff_with_perms)
    strip = client.get(reverse("admin:jobs_job_overview")).content.decode()
    assert 'data-queue="bundle-reindex" data-paused="yes"' in strip
    assert f'data-paused-by="{staff_with_perms.get_username()}">by ' in strip
