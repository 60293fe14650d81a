"""The original design's three mutation documents, sent verbatim, run by a real worker.

Given bundles 123 and 456 whose stored prices drifted from their components (changed with
``QuerySet.update``, which sends no signals), the documents from
``reference/original-design-phase-4.3-jobs-and-consistency.md`` return the original's shapes,
and the jobs they return, run by a JobsSimpleWorker burst over the four queues on the suite's
real Redis, complete and change the bundles.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection

from bundles.models import Bundle, ProductVariant
from jobs.models import Job, JobState
from tests.api.conftest import ALL_PERMS, make_user, post_graphql
from tests.bundles.jobs_support import run_burst_worker
from tests.factories import make_bundle, make_variant

# --- verbatim from the original design (BundleJobQueueResolver) --------------------------------
TRIGGER_CHECK = """
mutation {
  triggerBundleConsistencyCheck(scope: "active") {
    jobId
    message  # "Consistency check job queued. View progress in System → Jobs."
  }
}
"""

RECOMPUTE = """
mutation {
  recomputeBundle(
    bundleId: "123"
    options: { reason: "Manual fix", forceRecalculation: true }
  ) {
    jobId
    message
  }
}
"""

BULK_RECOMPUTE = """
mutation {
  bulkRecomputeBundles(bundleIds: ["123", "456"], batchSize: 10) {
    jobIds
    totalBundles
    batchCount
    message
  }
}
"""
# ------------------------------------------------------------------------------------------------

CHECK_MESSAGE = "Consistency check job queued. View progress in System → Jobs."


def _next_bundle_id_will_be(pk: int) -> None:
    """Make the database hand out ``pk`` as the next bundle id (the documents name 123, 456)."""
    table = Bundle._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("DELETE FROM sqlite_sequence WHERE name = %s", [table])
            cursor.execute(
                "INSERT INTO sqlite_sequence (name, seq) VALUES (%s, %s)", [table, pk - 1]
            )
        else:
            cursor.execute("SELECT setval(pg_get_serial_sequence(%s, 'id'), %s)", [table, pk - 1])


def _bundle_with_id(pk: int, variant: ProductVariant) -> Bundle:
    _next_bundle_id_will_be(pk)
    bundle = make_bundle(components=[(variant, 2)], name=f"Original {pk}")
    assert bundle.pk == pk
    return bundle


@pytest.fixture
def drifted(redis_conn):
    """Bundles 123 and 456 priced from a $10 variant, then the variant's price moves to $25
    without signals, so both bundles' stored prices are stale. The queues start empty."""
    variant = make_variant(price="10.00", stock=50)
    first = _bundle_with_id(123, variant)
    second = _bundle_with_id(456, variant)
    assert first.computed_price == Decimal("20.00")
    ProductVariant.objects.filter(pk=variant.pk).update(price=Decimal("25.00"))
    run_burst_worker()  # drain anything creating the bundles queued
    redis_conn.flushdb()
    Job.objects.all().delete()
    return first, second


@pytest.fixture
def operator_client(client, db):
    client.force_login(make_user("original-operator", perms=ALL_PERMS))
    return client


def _price(pk: int) -> Decimal | None:
    return Bundle.objects.get(pk=pk).computed_price


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_trigger_consistency_check_document_queues_a_check_that_finds_the_drift(
    drifted, operator_client
):
    # When
    response = post_graphql(operator_client, TRIGGER_CHECK)

    # Then: the original's shape and message
    assert response.status == 200 and not response.errors
    payload = response.data["triggerBundleConsistencyCheck"]
    assert set(payload) == {"jobId", "message"}
    assert payload["message"] == CHECK_MESSAGE
    job = Job.objects.get(pk=payload["jobId"])
    assert (job.kind, job.queue, job.trigger) == (
        "consistency_check",
        "bundle-consistency-check",
        "graphql",
    )
    assert job.requested_by.username == "original-operator"
    assert job.payload["scope"] == "active"

    # And a real worker runs it to completion; it reports both drifted bundles
    run_burst_worker()
    job.refresh_from_db()
    assert job.state == JobState.COMPLETED, job.errors
    assert job.progress == 100
    assert job.result["checked"] == 2
    assert job.result["ok"] == 0
    reported = {b["id"] for b in job.result["broken_bundles"]}
    assert reported == {123, 456}
    # Without fixBrokenBundles the check only reports: prices are still stale.
    assert _price(123) == Decimal("20.00")


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_trigger_consistency_check_with_fix_option_repairs_the_bundles(drifted, operator_client):
    # When: the same mutation with the original's option to fix
    response = post_graphql(
        operator_client,
        'mutation { triggerBundleConsistencyCheck(scope: "active", options: '
        "{fixBrokenBundles: true}) { jobId message } }",
    )
    job_id = response.data["triggerBundleConsistencyCheck"]["jobId"]
    run_burst_worker()

    # Then
    job = Job.objects.get(pk=job_id)
    assert job.state == JobState.COMPLETED, job.errors
    assert job.payload["fix"] is True
    assert job.result["fixed"] == 2
    assert _price(123) == _price(456) == Decimal("50.00")


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_recompute_bundle_document_queues_a_recompute_that_updates_the_price(
    drifted, operator_client
):
    # When
    response = post_graphql(operator_client, RECOMPUTE)

    # Then: shape, message, and the job as the ledger records it
    assert response.status == 200 and not response.errors
    payload = response.data["recomputeBundle"]
    assert set(payload) == {"jobId", "message"}
    assert payload["message"] == "Recompute job queued. View progress in System → Jobs."
    job = Job.objects.get(pk=payload["jobId"])
    assert (job.kind, job.queue, job.trigger, job.reason) == (
        "recompute",
        "bundle-recompute",
        "graphql",
        "Manual fix",
    )
    assert job.payload == {
        "bundle_id": 123,
        "reason": "Manual fix",
        "force": True,
        "update_search": True,
    }
    assert job.requested_by.username == "original-operator"
    assert (job.target_type, job.target_id) == ("bundle", "123")

    # And a real worker runs it: bundle 123 changes, 456 does not
    run_burst_worker()
    job.refresh_from_db()
    assert job.state == JobState.COMPLETED, job.errors
    assert job.progress == 100
    assert _price(123) == Decimal("50.00")
    assert _price(456) == Decimal("20.00")


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_bulk_recompute_bundles_document_returns_one_job_per_batch_that_updates_both(
    drifted, operator_client
):
    # When
    response = post_graphql(operator_client, BULK_RECOMPUTE)

    # Then: the original's four result fields, one job id per batch
    assert response.status == 200 and not response.errors
    payload = response.data["bulkRecomputeBundles"]
    assert set(payload) == {"jobIds", "totalBundles", "batchCount", "message"}
    assert payload["totalBundles"] == 2
    assert payload["batchCount"] == 1
    assert "View progress in System → Jobs." in payload["message"]
    assert len(payload["jobIds"]) == payload["batchCount"]
    children = [Job.objects.get(pk=job_id) for job_id in payload["jobIds"]]
    assert {(c.kind, c.queue, c.trigger) for c in children} == {
        ("bulk_batch", "bundle-bulk-operation", "graphql")
    }
    assert [c.payload["bundle_ids"] for c in children] == [[123, 456]]
    parent = children[0].parent
    assert (parent.kind, parent.trigger) == ("bulk_operation", "graphql")
    assert parent.payload["bundle_ids"] == [123, 456]
    assert parent.payload["batch_size"] == 10
    assert {c.parent_id for c in children} == {parent.pk}

    # And a real worker runs every batch job, and the parent, to completion
    run_burst_worker()
    for child in children:
        child.refresh_from_db()
        assert child.state == JobState.COMPLETED, child.errors
        assert child.requested_by.username == "original-operator"
    parent.refresh_from_db()
    assert parent.state == JobState.COMPLETED, parent.errors
    assert _price(123) == _price(456) == Decimal("50.00")


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_bulk_recompute_bundles_names_each_batch_job_in_order_and_the_bulk_job(
    drifted, operator_client
):
    # When the two bundles are asked for in batches of one
    response = post_graphql(
        operator_client,
        'mutation { bulkRecomputeBundles(bundleIds: ["456", "123"], batchSize: 1) '
        "{ jobIds bulkJobId batchCount } }",
    )

    # Then there are two batch jobs, batch 1 first, under the bulk job named apart
    assert response.status == 200 and not response.errors
    payload = response.data["bulkRecomputeBundles"]
    assert payload["batchCount"] == 2 == len(payload["jobIds"])
    children = [Job.objects.get(pk=job_id) for job_id in payload["jobIds"]]
    assert [c.payload["batch"] for c in children] == [1, 2]
    assert [c.payload["bundle_ids"] for c in children] == [[456], [123]]
    assert {str(c.parent_id) for c in children} == {payload["bulkJobId"]}
    assert Job.objects.get(pk=payload["bulkJobId"]).kind == "bulk_operation"

    # And a real worker runs each to completion
    run_burst_worker()
    assert [Job.objects.get(pk=c.pk).state for c in children] == [JobState.COMPLETED] * 2
    assert Job.objects.get(pk=payload["bulkJobId"]).state == JobState.COMPLETED
    assert _price(123) == _price(456) == Decimal("50.00")
