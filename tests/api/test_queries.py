"""Queries: every ledger field, filters, cursor pages, queues, schedules, bundles, search —
and SQL query counts that do not grow with the page size."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.admin.models import LogEntry
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from jobs.models import Job, JobState, JobTrigger
from tests.api.conftest import make_user
from tests.factories import make_bundle, make_variant
from tests.support import link_main_targets

JOB_FIELDS = """
  id queue kind payload targetType targetId targetLabel state progress progressMessage
  attempts maxAttempts result errors { attempt at message traceback worker } errorFingerprint
  lastError { message } trigger reason requestedBy { id username } lastAction
  lastActionBy { username } lastActionAt scheduleId parentId parent { id kind }
  children { id state requestedBy { username } } dedupKey mergedCount cancelRequested
  childrenTotal childrenSettled childrenFailed childrenCancelled countedByParent
  workerName rqJobId nextAttemptAt createdAt dispatchedAt startedAt settledAt heartbeatAt
  isSettled isStale
"""
JOBS_PAGE = (
    "query($first: Int, $after: String) { jobs(first: $first, after: $after) { totalCount "
    "edges { cursor node { " + JOB_FIELDS + " } } pageInfo { hasNextPage endCursor } } }"
)
BUNDLE_FIELDS = """
  id name slug status statusBeforeBroken pricingRule ruleValue currency availabilityCap
  validFrom validTo computedPrice computedAvailability noSaving
  brokenReasons { code message fixable } lastRecomputedAt createdAt updatedAt shellSku
  components { id quantity variant { id sku name productName price currency stockOnHand
  allocated enabled deletedAt } }
"""
BUNDLES_PAGE = (
    "query($first: Int, $after: String, $status: String, $search: String) { "
    "bundles(first: $first, after: $after, status: $status, search: $search) { totalCount "
    "edges { cursor node { " + BUNDLE_FIELDS + " } } pageInfo { hasNextPage endCursor } } }"
)


def _make_jobs(n: int, *, user, bundle_id: int = 1) -> list[Job]:
    """n ledger rows with users, a parent each with a child, and a failed attempt: the lot."""
    now = timezone.now()
    rows = []
    for i in range(n):
        rows.append(
            Job(
                queue="bundle-recompute",
                kind="recompute",
                payload={"bundle_id": bundle_id},
                target_type="bundle",
                target_id=str(bundle_id),
                target_label=f"Bundle {i}",
                state=JobState.FAILED,
                attempts=1,
                max_attempts=1,
                errors=[
                    {
                        "attempt": 1,
                        "at": now.isoformat(),
                        "message": f"boom {i}",
                        "traceback": "Traceback (most recent call last): ...",
                        "worker": "w1",
                    }
                ],
                trigger=JobTrigger.GRAPHQL,
                requested_by=user,
                last_action_by=user,
                created_at=now - timedelta(seconds=i),
            )
        )
    parents = Job.objects.bulk_create(rows)
    children = [
        Job(
            queue="bundle-bulk-operation",
            kind="bulk_batch",
            payload={},
            trigger=JobTrigger.GRAPHQL,
            requested_by=user,
            parent=p,
            state=JobState.COMPLETED,
        )
        for p in parents
    ]
    Job.objects.bulk_create(children)
    # auto_now_add ignores the value given: spread the creation times by hand.
    for i, p in enumerate(parents):
        Job.objects.filter(pk=p.pk).update(created_at=now - timedelta(seconds=i + 10))
    link_main_targets()  # rows written by hand: add the link rows enqueue would
    return parents


def _queries(gql, query: str, variables: dict) -> tuple[int, object]:
    with CaptureQueriesContext(connection) as ctx:
        response = gql(query, variables)
    assert not response.errors, response.errors
    return len(ctx.captured_queries), response


@pytest.mark.django_db
def test_listing_100_jobs_costs_the_same_queries_as_10(
    gql, staff_with_perms, django_assert_max_num_queries
):
    # Given 100 failed jobs, each with a child, a user and an attempt's error
    _make_jobs(100, user=staff_with_perms)

    # When a page of 10 and a page of 100 are listed with every field
    small, _ = _queries(gql, JOBS_PAGE, {"first": 10})
    with django_assert_max_num_queries(10):
        large, response = _queries(gql, JOBS_PAGE, {"first": 100})

    # Then
    assert len(response.data["jobs"]["edges"]) == 100
    assert small == large
    print(f"jobs: {small} SQL queries for 10 rows, {large} for 100")


@pytest.mark.django_db
def test_listing_100_bundles_costs_the_same_queries_as_10(gql, django_assert_max_num_queries):
    # Given 100 bundles with two components each
    variants = [make_variant(), make_variant()]
    for i in range(100):
        make_bundle(components=[(variants[0], 1), (variants[1], 2)], name=f"Kit {i:03d}")

    # When
    small, _ = _queries(gql, BUNDLES_PAGE, {"first": 10})
    with django_assert_max_num_queries(10):
        large, response = _queries(gql, BUNDLES_PAGE, {"first": 100})

    # Then
    edges = response.data["bundles"]["edges"]
    assert len(edges) == 100
    assert all(len(e["node"]["components"]) == 2 for e in edges)
    assert small == large
    print(f"bundles: {small} SQL queries for 10 rows, {large} for 100")


@pytest.mark.django_db
def test_job_exposes_every_ledger_field_and_each_attempts_error(gql, staff_with_perms):
    # Given a failed job with an attempt's error and a child
    job = _make_jobs(1, user=staff_with_perms)[0]

    # When
    response = gql("query($id: ID!) { job(id: $id) { " + JOB_FIELDS + " } }", {"id": str(job.pk)})

    # Then
    node = response.data["job"]
    assert node["id"] == str(job.pk)
    assert node["state"] == "failed" and node["trigger"] == "graphql"
    assert node["errors"] == [
        {
            "attempt": 1,
            "at": job.errors[0]["at"],
            "message": "boom 0",
            "traceback": "Traceback (most recent call last): ...",
            "worker": "w1",
        }
    ]
    assert node["lastError"]["message"] == "boom 0"
    assert node["requestedBy"]["username"] == staff_with_perms.username
    assert [c["state"] for c in node["children"]] == ["completed"]
    assert node["payload"] == {"bundle_id": 1}
    model_fields = {f.name for f in Job._meta.get_fields() if f.concrete}
    # Every concrete ledger column has a GraphQL field (FKs as objects and ids).
    camel = {
        "".join([w if k == 0 else w.title() for k, w in enumerate(f.split("_"))])
        for f in model_fields
    }
    assert camel - set(node) <= {"requestedBy", "lastActionBy", "parent"} - set(node)


@pytest.mark.django_db
def test_job_takes_the_8_character_prefix_the_admin_shows_and_names_an_ambiguous_one(
    gql, staff_with_perms
):
    # Given two jobs whose ids share their first 8 characters, and one that does not
    Job.objects.create(id="8d8d246b-0000-4000-8000-000000000001", queue="q", kind="k")
    Job.objects.create(id="8d8d246b-0000-4000-8000-000000000002", queue="q", kind="k")
    other = Job.objects.create(id="5e5e1234-0000-4000-8000-000000000003", queue="q", kind="k")
    query = "query($id: ID!) { job(id: $id) { id } }"
    # When asked by prefix, Then the one job answers
    assert gql(query, {"id": "5e5e1234"}).data["job"]["id"] == str(other.pk)
    assert gql(query, {"id": "5E5E1234-0000"}).data["job"]["id"] == str(other.pk)
    # and a prefix two jobs share is a clear NOT_FOUND, saying how many
    response = gql(query, {"id": "8d8d246b"})
    assert response.codes == ["NOT_FOUND"]
    assert "2 jobs have ids starting with 8d8d246b" in response.errors[0]["message"]


@pytest.mark.django_db
def test_jobs_pages_by_cursor_visit_each_job_once(gql, staff_with_perms):
    made = {str(j.pk) for j in _make_jobs(25, user=staff_with_perms)}
    seen, after = [], None
    while True:
        page = gql(
            'query($after: String) { jobs(first: 10, after: $after, kind: "recompute") '
            "{ edges { node { id } } pageInfo { hasNextPage endCursor } } }",
            {"after": after},
        ).data["jobs"]
        seen += [e["node"]["id"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert len(seen) == 25 and set(seen) == made


@pytest.mark.django_db
def test_jobs_filter_by_queue_state_kind_bundle_and_sku(gql, staff_with_perms):
    # Given a bundle with a component SKU, a job on it, and other jobs
    variant = make_variant(sku="CAM-001")
    bundle = make_bundle(components=[(variant, 1)], name="Camera kit")
    Job.objects.all().delete()
    _make_jobs(3, user=staff_with_perms, bundle_id=bundle.pk)
    _make_jobs(2, user=staff_with_perms, bundle_id=bundle.pk + 1000)

    def ids(**filters) -> int:
        args = ", ".join(f"{k}: {v!r}".replace("'", '"') for k, v in filters.items())
        return gql("{ jobs(" + args + ") { totalCount } }").data["jobs"]["totalCount"]

    assert ids(bundleId=str(bundle.pk)) == 3
    assert ids(search="CAM-001") == 3
    assert ids(queue="bundle-recompute") == 5
    assert ids(queue="bundle-bulk-operation") == 5  # the children
    assert ids(state="failed", kind="recompute") == 5
    assert ids(state="completed", kind="bulk_batch") == 5
    assert ids(state="running") == 0


@pytest.mark.django_db
def test_job_queues_report_ledger_counts_per_queue(gql, staff_with_perms):
    _make_jobs(2, user=staff_with_perms)
    Job.objects.filter(kind="bulk_batch").update(settled_at=timezone.now())
    queues = {q["name"]: q for q in gql(
        "{ jobQueues { name waiting running failed completedLast24h workers rqQueued } }"
    ).data["jobQueues"]}  # fmt: skip
    assert list(queues) == [
        "bundle-recompute", "bundle-reindex", "bundle-consistency-check", "bundle-bulk-operation"
    ]  # fmt: skip
    assert queues["bundle-recompute"]["failed"] == 2
    assert queues["bundle-bulk-operation"]["completedLast24h"] == 2
    assert queues["bundle-reindex"] == {
        "name": "bundle-reindex", "waiting": 0, "running": 0, "failed": 0,
        "completedLast24h": 0, "workers": 0, "rqQueued": 0,
    }  # fmt: skip


@pytest.mark.django_db
def test_schedules_list_next_run_and_last_job(gql):
    run = gql('mutation { runSchedule(id: "nightly-consistency-check") { jobId } }')
    job_id = run.data["runSchedule"]["jobId"]
    schedules = {
        s["id"]: s
        for s in gql(
            "{ schedules { id cron kind nextRun registered lastJob { id trigger } } }"
        ).data["schedules"]
    }
    nightly = schedules["nightly-consistency-check"]
    assert nightly["cron"] == "0 2 * * *" and nightly["kind"] == "consistency_check"
    assert nightly["nextRun"].endswith("02:00:00+00:00")
    assert nightly["lastJob"] == {"id": job_id, "trigger": "graphql"}


@pytest.mark.django_db
def test_bundle_and_bundles_filters_and_search(gql):
    # Given
    variant = make_variant(sku="LENS-9", name="Zoom lens")
    kit = make_bundle(components=[(variant, 2)], name="Lens kit")
    make_bundle(name="Draft kit", status="draft")

    # When / then: one bundle with its components
    node = gql("query($id: ID!) { bundle(id: $id) { " + BUNDLE_FIELDS + " } }",
               {"id": str(kit.pk)}).data["bundle"]  # fmt: skip
    assert node["name"] == "Lens kit" and node["status"] == "active"
    assert node["components"][0]["quantity"] == 2
    assert node["components"][0]["variant"]["sku"] == "LENS-9"
    assert node["shellSku"]

    def names(**variables) -> list[str]:
        data = gql(BUNDLES_PAGE, variables).data["bundles"]
        return [e["node"]["name"] for e in data["edges"]]

    assert names(status="draft") == ["Draft kit"]
    assert names(search="LENS-9") == ["Lens kit"]
    assert names(search="kit") == ["Draft kit", "Lens kit"]

    # The search index finds active bundles only
    found = gql('{ searchBundles(term: "zoom") { id name } }').data["searchBundles"]
    assert found == [{"id": str(kit.pk), "name": "Lens kit"}]
    assert gql('{ searchBundles(term: "Draft") { id } }').data["searchBundles"] == []


@pytest.mark.django_db
def test_retry_cancel_and_run_are_audited_as_admin_log_entries(gql, staff_with_perms):
    # Given a failed job and a pending one
    failed = _make_jobs(1, user=None)[0]
    pending = Job.objects.create(
        queue="bundle-reindex", kind="reindex", payload={}, trigger=JobTrigger.SIGNAL
    )

    # When
    retried = gql("mutation($id: ID!) { retryJob(id: $id) { jobId state message } }",
                  {"id": str(failed.pk)}).data["retryJob"]  # fmt: skip
    cancelled = gql("mutation($id: ID!) { cancelJob(id: $id) { jobId state cancelRequested } }",
                    {"id": str(pending.pk)}).data["cancelJob"]  # fmt: skip
    ran = gql('mutation { runSchedule(id: "weekly-maintenance") { jobId } }').data["runSchedule"]

    # Then the rows say who did it, and the admin's log has one entry each
    assert retried["state"] == "pending" and cancelled["state"] == "cancelled"
    failed.refresh_from_db()
    assert failed.last_action == "retry" and failed.last_action_by == staff_with_perms
    # (the services write them: the same entries as the admin's buttons, see test_audit.py)
    entries = LogEntry.objects.filter(user=staff_with_perms).order_by("pk")
    assert [(e.object_id, e.change_message) for e in entries] == [
        (str(failed.pk), "Retried"),
        (str(pending.pk), "Cancelled"),
        (ran["jobId"], "Schedule weekly-maintenance run now"),
    ]
    maintenance = Job.objects.get(pk=ran["jobId"])
    assert maintenance.trigger == "graphql" and maintenance.requested_by == staff_with_perms


@pytest.mark.django_db
def test_retry_failed_jobs_retries_only_failed_matching_jobs(gql, staff_with_perms):
    _make_jobs(3, user=staff_with_perms, bundle_id=7)
    _make_jobs(2, user=staff_with_perms, bundle_id=8)
    result = gql('mutation { retryFailedJobs(filter: {bundleId: "7"}) { jobIds count } }')
    assert result.data["retryFailedJobs"]["count"] == 3
    assert Job.objects.filter(target_id="7", state="pending").count() == 3
    assert Job.objects.filter(target_id="8", state="failed").count() == 2
    assert LogEntry.objects.count() == 3


@pytest.mark.django_db
def test_recompute_of_a_bundle_with_a_pending_recompute_merges(gql):
    kit = make_bundle()
    doc = "mutation($id: ID!) { recomputeBundle(bundleId: $id) { jobId message } }"
    first = gql(doc, {"id": str(kit.pk)}).data["recomputeBundle"]
    second = gql(doc, {"id": str(kit.pk)}).data["recomputeBundle"]
    assert first["jobId"] == second["jobId"]
    assert "merged" in second["message"]
    assert Job.objects.get(pk=first["jobId"]).merged_count >= 1


@pytest.mark.django_db
def test_non_staff_user_sees_nothing_even_with_permissions(client):
    from tests.api.conftest import ALL_PERMS, post_graphql

    client.force_login(make_user("customer", staff=False, perms=ALL_PERMS))
    assert post_graphql(client, "{ jobQueues { name } }").codes == ["FORBIDDEN"]


@pytest.mark.django_db
def test_run_schedule_runs_a_disabled_schedule_and_the_audit_says_it_was_disabled(
    gql, staff_with_perms
):
    # Given the nightly check disabled
    from jobs.scheduling.store import schedule_is_enabled, schedule_set_enabled

    schedule_set_enabled(schedule_id="nightly-consistency-check", enabled=False)

    # When an integration runs it explicitly
    response = gql('mutation { runSchedule(id: "nightly-consistency-check") { jobId message } }')

    # Then it is queued (no error), the schedule stays disabled, and the audit says so
    assert not response.errors, response.errors
    ran = response.data["runSchedule"]
    job = Job.objects.get(pk=ran["jobId"])
    assert job.kind == "consistency_check" and job.trigger == "graphql"
    assert job.requested_by == staff_with_perms
    assert "schedule disabled" in ran["message"]
    assert schedule_is_enabled(schedule_id="nightly-consistency-check") is False
    [entry] = LogEntry.objects.filter(object_id=str(job.pk))
    assert entry.change_message == (
        "Schedule nightly-consistency-check run now (schedule disabled: run once on request)"
    )


@pytest.mark.django_db
def test_run_schedule_of_the_disabled_inline_relay_runs_it_and_returns_no_job(
    gql, staff_with_perms
):
    # Given the relay schedule (it runs inline) disabled
    from jobs.scheduling.store import schedule_set_enabled

    schedule_set_enabled(schedule_id="relay-and-reconcile", enabled=False)
    # When
    response = gql('mutation { runSchedule(id: "relay-and-reconcile") { jobId message } }')
    # Then
    assert not response.errors, response.errors
    assert response.data["runSchedule"]["jobId"] is None
    assert "ran inline" in response.data["runSchedule"]["message"]
    assert not Job.objects.exists()
    assert LogEntry.objects.filter(user=staff_with_perms).count() == 1
