"""GraphQL errorGroups, retryErrorGroup and discardErrorGroup: the Errors page's reads and
services, with the same permissions."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

import tests.jobs.error_group_kinds  # noqa: F401 - registers test_fails_two_ways
from jobs.enqueue import enqueue
from jobs.models import Job, JobState
from tests.api.conftest import make_user, post_graphql
from tests.bundles.jobs_support import run_burst_worker

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis]

GROUPS = (
    "{ errorGroups { fingerprint count exception firstSeen lastSeen kinds { kind count } "
    "sampleJobId sampleTraceback } }"
)
RETRY = (
    "mutation($f: String!) { retryErrorGroup(fingerprint: $f) { count skipped remaining message } }"
)
DISCARD = "mutation($f: String!) { discardErrorGroup(fingerprint: $f) { count remaining } }"


@pytest.fixture
def failed(redis_conn):
    for n in range(3):
        enqueue("test_fails_two_ways", payload={"n": n, "how": "timeout"}, trigger="graphql")
    for n in range(2):
        enqueue("test_fails_two_ways", payload={"n": n, "how": "lookup"}, trigger="graphql")
    run_burst_worker()


def test_error_groups_lists_both_groups_and_retry_error_group_retries_one(gql, failed):
    groups = gql(GROUPS).data["errorGroups"]
    assert [(g["exception"], g["count"]) for g in groups] == [
        ("SupplierTimeout", 3),
        ("KeyError", 2),
    ]
    assert groups[0]["kinds"] == [{"kind": "test_fails_two_ways", "count": 3}]
    assert "_call_supplier" in groups[0]["sampleTraceback"]
    # When
    answer = gql(RETRY, {"f": groups[0]["fingerprint"]}).data["retryErrorGroup"]
    # Then exactly that group went back to pending
    assert (answer["count"], answer["skipped"], answer["remaining"]) == (3, 0, 0)
    assert Job.objects.filter(state=JobState.PENDING).count() == 3
    assert set(
        Job.objects.filter(state=JobState.FAILED).values_list("error_fingerprint", flat=True)
    ) == {groups[1]["fingerprint"]}


def test_discard_needs_delete_permission_and_unknown_groups_are_not_found(gql, failed):
    fingerprint = gql(GROUPS).data["errorGroups"][1]["fingerprint"]
    viewer = Client()
    viewer.force_login(make_user("viewer", perms=["jobs.view_job", "jobs.retry_job"]))
    refused = post_graphql(viewer, DISCARD, {"f": fingerprint})
    assert refused.codes == ["FORBIDDEN"]
    assert Job.objects.filter(state=JobState.FAILED).count() == 5
    assert gql(DISCARD, {"f": "0" * 16}).codes == ["NOT_FOUND"]
    assert gql(DISCARD, {"f": fingerprint}).data["discardErrorGroup"] == {
        "count": 2,
        "remaining": 0,
    }
    assert Job.objects.count() == 3


def test_error_groups_reads_no_sample_rows_unless_asked(gql, failed):
    with CaptureQueriesContext(connection) as counts_only:
        gql("{ errorGroups { fingerprint count } }")
    with CaptureQueriesContext(connection) as with_samples:
        gql("{ errorGroups { fingerprint sampleTraceback } }")
    # the two groups' samples in one read, on top of the grouped read
    assert len(with_samples) - len(counts_only) == 1
