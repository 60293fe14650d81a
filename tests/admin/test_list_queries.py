"""The jobs list stays fast on a big ledger: the number of SQL queries does not grow with the
rows shown, and no page runs a full COUNT(*)."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from jobs.admin.job_admin import JobAdmin
from jobs.models import Job, JobState
from tests.admin.conftest import client_for, make_user
from tests.support import link_main_targets

pytestmark = [pytest.mark.django_db, pytest.mark.redis]

ROWS = 100_000
STATES = [JobState.COMPLETED] * 6 + [JobState.FAILED, JobState.PENDING, JobState.RUNNING]


@pytest.fixture
def big_ledger(db):
    """100,000 ledger rows over 30 days, a mix of states, queues and errors."""
    now = timezone.now()
    queues = ["bundle-recompute", "bundle-reindex", "bundle-consistency-check"]
    user = make_user(superuser=True)
    batch = []
    for i in range(ROWS):
        state = STATES[i % len(STATES)]
        created = now - timedelta(minutes=i * 0.4)
        batch.append(
            Job(
                id=uuid.uuid4(),
                queue=queues[i % 3],
                kind="recompute",
                trigger="signal",
                state=state,
                progress=100 if state == JobState.COMPLETED else i % 100,
                attempts=1,
                max_attempts=3,
                payload={"bundle_id": i},
                target_type="bundle",
                target_id=str(i % 500),
                target_label=f"Bundle {i % 500}",
                requested_by=user if i % 10 == 0 else None,
                errors=[{"attempt": 1, "message": f"boom {i}", "at": created.isoformat()}]
                if state == JobState.FAILED
                else [],
                started_at=created,
                settled_at=created + timedelta(seconds=2)
                if state in (JobState.COMPLETED, JobState.FAILED)
                else None,
            )
        )
        if len(batch) == 5000:
            Job.objects.bulk_create(batch)
            batch = []
    Job.objects.bulk_create(batch)
    link_main_targets()  # the link rows enqueue would write
    assert Job.objects.count() == ROWS
    if connection.vendor == "postgresql":
        # What autovacuum would do soon after a bulk load: give the planner its statistics.
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE jobs_job")
    return user


def render(client, per_page: int, monkeypatch, query: str = "") -> tuple[int, list[str]]:
    monkeypatch.setattr(JobAdmin, "list_per_page", per_page)
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(reverse("admin:jobs_job_changelist") + query)
    assert response.status_code == 200
    assert response.content.count(b'data-live="state"') == per_page
    return len(ctx.captured_queries), [q["sql"] for q in ctx.captured_queries]


QUERIES = ["", "?state__exact=failed", "?q=Bundle+42", "?queue=bundle-reindex&o=-5"]


def test_list_queries_do_not_grow_with_rows_shown(
    big_ledger, monkeypatch, django_assert_max_num_queries
):
    # Given 100,000 ledger rows and a logged-in superuser
    client = client_for(big_ledger)
    # The first view fills the strip's hourly rollup (jobs.rollup: one count of the closed hours
    # and one insert), within the same budget; later views read the stored hours.
    with django_assert_max_num_queries(15):
        render(client, 100, monkeypatch)
    for query in QUERIES:
        # When the list shows 10 rows, then 100 rows (unfiltered, filtered, searched, sorted)
        few, _ = render(client, 10, monkeypatch, query)
        many, sqls = render(client, 100, monkeypatch, query)
        # Then both pages cost the same, small number of queries
        assert few == many, query
        # 16: the strip's pills registered by other apps (jobs.probes) add one, the bundles'
        # freshness aggregate.
        with django_assert_max_num_queries(16):
            render(client, 100, monkeypatch, query)
        # and no query counts the whole ledger: the list's own count is capped by a LIMIT, and
        # the overview counts only indexed slices (running / waiting / settled in 24 h)
        counts = [s.upper() for s in sqls if "COUNT(" in s.upper() and '"jobs_job"' in s]
        assert any("LIMIT" in s for s in counts), counts
        for sql in counts:
            assert "LIMIT" in sql or "WHERE" in sql, sql

    # And the page says roughly how many (SQLite has no planner estimate: the capped count)
    response = client.get(reverse("admin:jobs_job_changelist"))
    expected = b"about " if connection.vendor == "postgresql" else b"more than 10,000"
    assert expected in response.content
    assert response.context["cl"].paginator.is_estimate
