"""One test per error code: typed, with the path, never a traceback; bad input makes no job."""

from __future__ import annotations

import pytest

from jobs.enqueue import enqueue
from jobs.models import Job, JobState, JobTrigger
from tests.api.conftest import post_graphql
from tests.factories import make_bundle

BULK = """
mutation($ids: [ID!]!, $size: Int) {
  bulkRecomputeBundles(bundleIds: $ids, batchSize: $size) { jobIds totalBundles batchCount }
}
"""
CHECK = "mutation($s: String!) { triggerBundleConsistencyCheck(scope: $s) { jobId message } }"
RECOMPUTE = """
mutation($id: ID!, $o: RecomputeOptions) { recomputeBundle(bundleId: $id, options: $o) { jobId } }
"""


@pytest.fixture
def bundle(db):
    return make_bundle(name="Errors kit")


def test_unauthenticated_without_session_or_token(client, bundle):
    # When an anonymous script asks for a recompute
    response = post_graphql(client, RECOMPUTE, {"id": str(bundle.pk)})

    # Then
    assert response.status == 200
    assert response.codes == ["UNAUTHENTICATED"]
    assert response.errors[0]["path"] == ["recomputeBundle"]
    assert "Bearer" in response.errors[0]["message"]
    assert Job.objects.count() == 0


def test_unauthenticated_with_an_unknown_token(client, bundle):
    response = post_graphql(client, "{ jobQueues { name } }", token="bj_not-a-real-key")
    assert response.codes == ["UNAUTHENTICATED"]
    assert response.errors[0]["message"] == "Invalid or revoked API token."


def test_forbidden_for_staff_without_the_change_permission(client, bundle):
    from tests.api.conftest import make_user

    client.force_login(make_user("viewer", perms=["bundles.view_bundle", "jobs.view_job"]))
    response = post_graphql(client, CHECK, {"s": "all"})
    assert response.codes == ["FORBIDDEN"]
    assert response.errors[0]["path"] == ["triggerBundleConsistencyCheck"]
    assert Job.objects.count() == 0


def test_not_found_names_every_missing_bundle_id(gql, bundle):
    # When two of three ids do not exist
    response = gql(BULK, {"ids": [str(bundle.pk), "999998", "999999"]})

    # Then
    assert response.codes == ["NOT_FOUND"]
    error = response.errors[0]
    assert error["path"] == ["bulkRecomputeBundles"]
    assert "999998" in error["message"] and "999999" in error["message"]
    assert error["extensions"]["ids"] == ["999998", "999999"]
    assert Job.objects.count() == 0


@pytest.mark.parametrize(
    "query, variables, field",
    [
        (RECOMPUTE, {"id": "999999"}, "recomputeBundle"),
        ("query($id: ID!) { bundle(id: $id) { id } }", {"id": "999999"}, "bundle"),
        ("query($id: ID!) { job(id: $id) { id } }", {"id": "5f0c7b8e-0000-4000-8000-000000000000"},
         "job"),
        ("mutation($id: ID!) { retryJob(id: $id) { jobId } }",
         {"id": "5f0c7b8e-0000-4000-8000-000000000000"}, "retryJob"),
        ("mutation($id: ID!) { cancelJob(id: $id) { jobId } }", {"id": "not-a-uuid"}, "cancelJob"),
        ('mutation { runSchedule(id: "no-such-schedule") { jobId } }', None, "runSchedule"),
    ],
)  # fmt: skip
def test_not_found_for_each_kind_of_missing_thing(gql, bundle, query, variables, field):
    response = gql(query, variables)
    assert response.status == 200
    assert response.codes == ["NOT_FOUND"]
    error = response.errors[0]
    assert error["path"] == [field]
    missing = (variables or {}).get("id", "no-such-schedule")
    assert error["extensions"]["ids"] == [missing]
    assert missing in error["message"]
    assert Job.objects.count() == 0


def test_bad_user_input_for_an_unknown_scope_lists_the_scopes(gql, bundle):
    response = gql(CHECK, {"s": "everything"})
    assert response.codes == ["BAD_USER_INPUT"]
    error = response.errors[0]
    assert error["path"] == ["triggerBundleConsistencyCheck"]
    assert "all, active, broken" in error["message"]
    assert error["extensions"]["field"] == "scope"
    assert Job.objects.count() == 0


@pytest.mark.parametrize("size", [0, -1, 1001, 2_000_000])
def test_bad_user_input_for_a_batch_size_outside_1_to_1000(gql, bundle, size):
    response = gql(BULK, {"ids": [str(bundle.pk)], "size": size})
    assert response.codes == ["BAD_USER_INPUT"]
    assert "between 1 and 1000" in response.errors[0]["message"]
    assert response.errors[0]["extensions"]["field"] == "batchSize"
    assert Job.objects.count() == 0


@pytest.mark.parametrize("count", [0, 10_001])
def test_bad_user_input_for_no_ids_or_more_than_ten_thousand(gql, bundle, count):
    response = gql(BULK, {"ids": [str(bundle.pk)] * count, "size": 10})
    assert response.codes == ["BAD_USER_INPUT"]
    assert response.errors[0]["extensions"]["field"] == "bundleIds"
    assert Job.objects.count() == 0


def test_ten_thousand_ids_are_accepted(gql, bundle):
    # The limit is inclusive: 10,000 copies of one id are one bundle, one batch job.
    response = gql(BULK, {"ids": [str(bundle.pk)] * 10_000, "size": 1000})
    assert not response.errors
    assert response.data["bulkRecomputeBundles"]["totalBundles"] == 1
    assert len(response.data["bulkRecomputeBundles"]["jobIds"]) == 1
    assert Job.objects.count() == 2  # the bulk job and its one batch


def test_bad_user_input_for_an_id_that_is_not_a_number(gql, bundle):
    response = gql(RECOMPUTE, {"id": "12; DROP TABLE"})
    assert response.codes == ["BAD_USER_INPUT"]
    assert response.errors[0]["extensions"]["field"] == "bundleId"
    assert Job.objects.count() == 0


def test_bad_user_input_for_retrying_a_job_that_has_not_failed(gql, bundle):
    # Given a pending job
    job = enqueue("reindex", payload={"bundle_ids": [bundle.pk]}, trigger=JobTrigger.COMMAND)

    # When
    response = gql("mutation($id: ID!) { retryJob(id: $id) { jobId } }", {"id": str(job.pk)})

    # Then
    assert response.codes == ["BAD_USER_INPUT"]
    assert response.errors[0]["extensions"]["reason"] == "invalid_state"
    job.refresh_from_db()
    assert job.state == JobState.PENDING and job.last_action == ""


def test_bad_user_input_for_unknown_filter_values(gql, bundle):
    response = gql('{ jobs(state: "exploded") { edges { node { id } } } }')
    assert response.codes == ["BAD_USER_INPUT"]
    assert (
        "pending, running, retrying, completed, failed, cancelled" in response.errors[0]["message"]
    )


def test_bad_user_input_for_a_foreign_cursor(gql, bundle):
    response = gql('{ bundles(after: "bm90LWEtY3Vyc29y") { edges { node { id } } } }')
    assert response.codes == ["BAD_USER_INPUT"]
    assert response.errors[0]["extensions"]["field"] == "after"


def test_an_unexpected_exception_is_an_internal_error_without_its_message(
    gql, bundle, monkeypatch, caplog
):
    # Given a service that blows up with internals in its message
    import bundles.graphql.mutations.recompute_bundle as module

    def explode(**kwargs):
        raise RuntimeError("password=hunter2 at /srv/secret.py")

    monkeypatch.setattr(module, "bundle_recompute_request", explode)

    # When
    response = gql(RECOMPUTE, {"id": str(bundle.pk)})

    # Then the client sees a typed error with a log reference, no internals
    assert response.status == 200
    assert response.codes == ["INTERNAL_SERVER_ERROR"]
    body = str(response.body)
    assert "hunter2" not in body and "Traceback" not in body and "secret.py" not in body
    assert response.errors[0]["path"] == ["recomputeBundle"]
    # ... and the server log has the traceback
    assert "hunter2" in caplog.text


def test_a_syntax_error_is_typed_too(gql):
    response = gql("mutation { recomputeBundle(")
    assert response.status == 400
    assert response.codes == ["GRAPHQL_PARSE_FAILED"]


def test_an_unknown_field_is_a_validation_error(gql):
    response = gql("{ jobQueues { name nonsense } }")
    assert response.status == 400
    assert response.codes == ["GRAPHQL_VALIDATION_FAILED"]


@pytest.mark.parametrize("size", [2**31, -(2**40), "ten", 1.5])
def test_a_variable_of_the_wrong_type_is_bad_user_input_not_a_server_error(gql, bundle, size):
    # When a variable cannot be coerced to its declared type (Int is 32-bit in GraphQL)
    response = gql(BULK, {"ids": [str(bundle.pk)], "size": size})

    # Then graphql-core's message names the variable, typed as the client's mistake
    assert response.status == 400
    assert response.codes == ["BAD_USER_INPUT"]
    assert "$size" in response.errors[0]["message"]
    assert Job.objects.count() == 0
