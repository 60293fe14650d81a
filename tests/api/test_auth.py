"""Auth matrix: every query and mutation × anonymous, non-staff, staff without the permission,
staff with it, a valid token and a revoked token. Denied calls change nothing."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from django.contrib.admin.models import LogEntry

from jobs.alerts.defaults import load_defaults
from jobs.enqueue import enqueue
from jobs.models import Job, JobState, JobTrigger
from tests.api.conftest import ALL_PERMS, make_user, post_graphql
from tests.factories import make_bundle


@dataclass
class Operation:
    name: str  # the root field
    perm: str  # the permission the admin would need
    document: str
    variables: Callable[[dict], dict]  # from the world fixture
    mutation: bool = False
    needs: tuple[str, ...] = ()  # also required; each one's absence is tested on its own

    @property
    def perms(self) -> list[str]:
        return [self.perm, *self.needs]


VIEW_JOB = ("jobs.view_job",)


OPERATIONS = [
    Operation("job", "jobs.view_job", "query($id: ID!) { job(id: $id) { id state } }",
              lambda w: {"id": str(w["failed"].pk)}),
    Operation("jobs", "jobs.view_job",
              "{ jobs(first: 5) { edges { node { id } } pageInfo { hasNextPage } } }",
              lambda w: {}),
    Operation("jobQueues", "jobs.view_job", "{ jobQueues { name waiting } }", lambda w: {}),
    Operation("schedules", "jobs.view_job", "{ schedules { id cron } }", lambda w: {}),
    Operation("scheduler", "jobs.view_job", "{ scheduler { stale lastSeen } }", lambda w: {}),
    Operation("bundle", "bundles.view_bundle", "query($id: ID!) { bundle(id: $id) { id name } }",
              lambda w: {"id": str(w["bundle"].pk)}),
    Operation("bundles", "bundles.view_bundle", "{ bundles(first: 5) { edges { node { id } } } }",
              lambda w: {}),
    Operation("searchBundles", "bundles.view_bundle",
              'query($t: String!) { searchBundles(term: $t) { id } }',
              lambda w: {"t": w["bundle"].name}),
    Operation("triggerBundleConsistencyCheck", "bundles.change_bundle",
              'mutation { triggerBundleConsistencyCheck(scope: "all") { jobId message } }',
              lambda w: {}, mutation=True),
    Operation("recomputeBundle", "bundles.change_bundle",
              "mutation($id: ID!) { recomputeBundle(bundleId: $id) { jobId message } }",
              lambda w: {"id": str(w["bundle"].pk)}, mutation=True),
    Operation("bulkRecomputeBundles", "bundles.change_bundle",
              "mutation($ids: [ID!]!) { bulkRecomputeBundles(bundleIds: $ids) { jobIds } }",
              lambda w: {"ids": [str(w["bundle"].pk)]}, mutation=True),
    Operation("reindexBundles", "bundles.change_bundle",
              "mutation($ids: [ID!]) { reindexBundles(bundleIds: $ids) { jobId } }",
              lambda w: {"ids": [str(w["bundle"].pk)]}, mutation=True),
    Operation("retryJob", "jobs.retry_job",
              "mutation($id: ID!) { retryJob(id: $id) { jobId state } }",
              lambda w: {"id": str(w["failed"].pk)}, mutation=True, needs=VIEW_JOB),
    Operation("cancelJob", "jobs.cancel_job",
              "mutation($id: ID!) { cancelJob(id: $id) { jobId state } }",
              lambda w: {"id": str(w["pending"].pk)}, mutation=True, needs=VIEW_JOB),
    Operation("retryFailedJobs", "jobs.retry_job",
              "mutation { retryFailedJobs(filter: {queue: \"bundle-recompute\"}) { count } }",
              lambda w: {}, mutation=True, needs=VIEW_JOB),
    Operation("workers", "jobs.view_job", "{ workers { name state } }", lambda w: {}),
    Operation("retryJobNow", "jobs.retry_job",
              "mutation($id: ID!) { retryJobNow(id: $id) { jobId state } }",
              lambda w: {"id": str(w["retrying"].pk)}, mutation=True, needs=VIEW_JOB),
    Operation("pauseQueue", "jobs.pause_queue",
              'mutation { pauseQueue(name: "bundle-reindex") { name paused } }',
              lambda w: {}, mutation=True, needs=VIEW_JOB),
    Operation("resumeQueue", "jobs.pause_queue",
              'mutation { resumeQueue(name: "bundle-reindex") { name paused sent } }',
              lambda w: {}, mutation=True, needs=VIEW_JOB),
    Operation("runSchedule", "jobs.run_schedule",
              'mutation { runSchedule(id: "nightly-consistency-check") { jobId message } }',
              lambda w: {}, mutation=True,
              needs=("bundles.change_bundle",)),  # what the nightly check's request needs
    Operation("updateSchedule", "jobs.change_schedule",
              'mutation { updateSchedule(id: "weekly-maintenance", enabled: false) { message } }',
              lambda w: {}, mutation=True,
              needs=("bundles.change_bundle", "jobs.delete_job")),  # the maintenance's
    # issue 24: alert rules
    Operation("alertRules", "jobs.view_alertrule", "{ alertRules { name state } }", lambda w: {}),
    Operation("updateAlertRule", "jobs.change_alertrule",
              'mutation { updateAlertRule(name: "oldest-waiting", threshold: 900) { message } }',
              lambda w: {}, mutation=True),
    # issue 24: error groups (the failed job of the world is in group 0123456789abcdef)
    Operation("errorGroups", "jobs.view_job", "{ errorGroups { fingerprint count } }",
              lambda w: {}),
    Operation("retryErrorGroup", "jobs.retry_job",
              'mutation { retryErrorGroup(fingerprint: "0123456789abcdef") { count } }',
              lambda w: {}, mutation=True, needs=VIEW_JOB),
    Operation("discardErrorGroup", "jobs.delete_job",
              'mutation { discardErrorGroup(fingerprint: "0123456789abcdef") { count } }',
              lambda w: {}, mutation=True, needs=VIEW_JOB),
]  # fmt: skip

ACTORS = ["anonymous", "non_staff", "staff_without_perm", "staff_with_perm", "token", "revoked"]
EXPECTED = {
    "anonymous": "UNAUTHENTICATED",
    "non_staff": "FORBIDDEN",
    "staff_without_perm": "FORBIDDEN",
    "staff_with_perm": None,
    "token": None,
    "revoked": "UNAUTHENTICATED",
}


@pytest.fixture
def world(db):
    """A bundle, a failed job and a pending job (none dispatched: no commit in these tests)."""
    bundle = make_bundle(name="Matrix kit")
    failed = enqueue("recompute", payload={"bundle_id": bundle.pk}, trigger=JobTrigger.COMMAND)
    Job.objects.filter(pk=failed.pk).update(
        state=JobState.FAILED, attempts=3, error_fingerprint="0123456789abcdef"
    )
    pending = enqueue("reindex", payload={"bundle_ids": [bundle.pk]}, trigger=JobTrigger.COMMAND)
    retrying = enqueue("recompute", payload={"bundle_id": bundle.pk, "n": 2}, trigger="command")
    Job.objects.filter(pk=retrying.pk).update(state=JobState.RETRYING, attempts=1)
    load_defaults()  # the default alert rules (a transactional test's flush may have gone)
    return {"bundle": bundle, "failed": failed, "pending": pending, "retrying": retrying}


def _call(client, op: Operation, actor: str, world: dict, token_for):
    token = None
    if actor == "non_staff":
        client.force_login(make_user("customer", staff=False, perms=ALL_PERMS))
    elif actor == "staff_without_perm":
        others = [p for p in ALL_PERMS if p != op.perm]
        client.force_login(make_user("clerk", perms=others))
    elif actor == "staff_with_perm":
        client.force_login(make_user("operator-one-perm", perms=op.perms))
    elif actor in ("token", "revoked"):
        token = token_for(make_user("script", perms=op.perms), revoked=actor == "revoked")
    return post_graphql(client, op.document, op.variables(world), token=token)


def _state_snapshot():
    return (
        Job.objects.count(),
        sorted(Job.objects.values_list("state", flat=True)),
        # Refusals are logged on purpose; anything else logged means something happened.
        LogEntry.objects.exclude(change_message__startswith="Refused").count(),
    )


@pytest.mark.parametrize("actor", ACTORS)
@pytest.mark.parametrize("op", OPERATIONS, ids=[op.name for op in OPERATIONS])
def test_every_operation_checks_the_admin_permission(client, world, token_for, op, actor):
    # Given
    before = _state_snapshot()

    # When
    response = _call(client, op, actor, world, token_for)

    # Then
    assert response.status == 200, response.body
    expected = EXPECTED[actor]
    if expected is None:
        assert not response.errors, response.errors
        assert response.data[op.name] is not None
        if op.mutation:
            assert _state_snapshot() != before  # it did something
    else:
        assert response.codes == [expected], response.errors
        assert response.errors[0]["path"] == [op.name]
        # Nullable roots come back null; non-null ones (jobs, bundles...) null the data.
        assert response.data is None or response.data[op.name] is None
        assert "Traceback" not in str(response.body)
        assert _state_snapshot() == before  # denied: nothing changed


NEEDS = [(op, need) for op in OPERATIONS for need in op.needs]


@pytest.mark.parametrize("op, missing", NEEDS, ids=[f"{o.name}-without-{n}" for o, n in NEEDS])
def test_every_needed_permission_is_checked_on_its_own(client, world, op, missing):
    # Given staff with every permission except `missing`
    client.force_login(make_user("clerk", perms=[p for p in ALL_PERMS if p != missing]))
    before = _state_snapshot()

    # When
    response = post_graphql(client, op.document, op.variables(world))

    # Then FORBIDDEN, naming the missing permission, and nothing changed
    assert response.codes == ["FORBIDDEN"], response.errors
    assert response.errors[0]["extensions"]["permissions"] == [missing]
    assert _state_snapshot() == before


def test_every_root_field_is_in_the_matrix():
    from config.schema import schema

    graphql_schema = schema.graphql_schema
    roots = set(graphql_schema.query_type.fields) | set(graphql_schema.mutation_type.fields)
    assert roots - {"ping"} == {op.name for op in OPERATIONS}  # ping: test_ping_is_for_staff


@pytest.mark.parametrize(
    "actor, expected",
    [("anonymous", "UNAUTHENTICATED"), ("non_staff", "FORBIDDEN"), ("staff", None),
     ("token", None), ("revoked", "UNAUTHENTICATED")],
)  # fmt: skip
def test_ping_is_for_staff(client, db, token_for, actor, expected):
    # Given a caller in this role (staff need no permission for ping)
    token = None
    if actor == "non_staff":
        client.force_login(make_user("customer", staff=False, perms=ALL_PERMS))
    elif actor == "staff":
        client.force_login(make_user("clerk"))
    elif actor in ("token", "revoked"):
        token = token_for(make_user("script"), revoked=actor == "revoked")

    # When
    response = post_graphql(client, "{ ping }", token=token)

    # Then
    if expected is None:
        assert not response.errors and response.data == {"ping": "pong"}
    else:
        assert response.codes == [expected] and response.data == {"ping": None}


def test_staff_without_permission_is_told_which_permission_is_missing(client, world):
    # Given a staff user with every permission but view_job
    client.force_login(make_user("clerk", perms=[p for p in ALL_PERMS if p != "jobs.view_job"]))

    # When
    response = post_graphql(client, "{ jobQueues { name } }")

    # Then
    assert response.codes == ["FORBIDDEN"]
    assert "jobs.view_job" in response.errors[0]["message"]
    assert response.errors[0]["extensions"]["permissions"] == ["jobs.view_job"]


def test_superuser_needs_no_explicit_permissions(client, world):
    client.force_login(make_user("root", superuser=True))
    response = post_graphql(client, "{ jobs { edges { node { id } } } }")
    assert not response.errors
    assert len(response.data["jobs"]["edges"]) == 3  # failed, pending, retrying: the whole world


def test_a_token_of_an_inactive_user_is_refused(client, world, token_for):
    # Given a valid token whose user was then deactivated
    user = make_user("leaver", perms=ALL_PERMS)
    key = token_for(user)
    user.is_active = False
    user.save()

    # When
    response = post_graphql(client, "{ jobQueues { name } }", token=key)

    # Then
    assert response.codes == ["UNAUTHENTICATED"]
