"""Hypothesis-generated arguments for every mutation: never a server error, never a traceback,
always HTTP 200 with typed errors — and never a job when the input is refused."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from jobs.enqueue import enqueue
from jobs.models import Job, JobState, JobTrigger
from tests.factories import make_bundle

HYPOTHESIS = settings(
    max_examples=60,
    deadline=None,
    # The client and the database are set up once per test; examples share them on purpose.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
# Codes bad input may produce; anything else (INTERNAL_SERVER_ERROR...) fails the test.
INPUT_CODES = {"BAD_USER_INPUT", "NOT_FOUND"}
INT32 = st.integers(min_value=-(2**31), max_value=2**31 - 1)


@pytest.fixture
def world(db, redis_conn):
    bundles = [make_bundle(name="Fuzz A"), make_bundle(name="Fuzz B", status="draft")]
    failed = enqueue("reindex", payload={"bundle_ids": [1]}, trigger=JobTrigger.COMMAND)
    Job.objects.filter(pk=failed.pk).update(state=JobState.FAILED, attempts=1)
    pending = enqueue("reindex", payload={"bundle_ids": [2]}, trigger=JobTrigger.COMMAND)
    return {
        "bundle_ids": [str(b.pk) for b in bundles],
        "job_ids": [str(failed.pk), str(pending.pk)],
    }


def bundle_ids(world) -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(world["bundle_ids"]),
        st.integers(min_value=-(2**80), max_value=2**80).map(str),
        st.text(max_size=30),
    )


def repeatable(strategy) -> st.SearchStrategy:
    """The same few values again and again: hypothesis skips a choice sequence it has already
    tried, so a throwaway draw makes each repeat new (a job's state changes between them)."""
    return st.tuples(strategy, st.integers(0, 10**9)).map(lambda pair: pair[0])


def optional(strategy) -> st.SearchStrategy:
    return st.one_of(st.none(), strategy)


def check(gql, document: str, variables: dict) -> None:
    before = Job.objects.count()
    response = gql(document, variables)
    assert response.status == 200, response.body
    assert "Traceback" not in json.dumps(response.body)
    codes = set(response.codes)
    event(f"outcome: {', '.join(sorted(codes)) or 'ok'}")
    assert codes <= INPUT_CODES, response.errors
    if response.errors:
        assert all(e.get("path") for e in response.errors), response.errors
        assert Job.objects.count() == before, f"bad input made a job: {variables!r}"
    else:
        assert next(iter(response.data.values())) is not None


@HYPOTHESIS
@given(data=st.data())
def test_trigger_bundle_consistency_check_never_fails_on_any_input(gql, world, data):
    options = optional(
        st.fixed_dictionaries(
            {},
            optional={
                "fixBrokenBundles": optional(st.booleans()),
                "notifyAdmins": optional(st.booleans()),
            },
        )
    )
    check(
        gql,
        "mutation($s: String!, $o: ConsistencyCheckOptions) "
        "{ triggerBundleConsistencyCheck(scope: $s, options: $o) { jobId message } }",
        {
            "s": data.draw(st.one_of(st.sampled_from(["all", "active", "broken"]), st.text())),
            "o": data.draw(options),
        },
    )


@HYPOTHESIS
@given(data=st.data())
def test_recompute_bundle_never_fails_on_any_input(gql, world, data):
    options = optional(
        st.fixed_dictionaries(
            {},
            optional={
                "reason": optional(st.text(max_size=300)),
                "forceRecalculation": optional(st.booleans()),
                "updateSearch": optional(st.booleans()),
            },
        )
    )
    check(
        gql,
        "mutation($id: ID!, $o: RecomputeOptions) "
        "{ recomputeBundle(bundleId: $id, options: $o) { jobId message } }",
        {"id": data.draw(bundle_ids(world)), "o": data.draw(options)},
    )


@HYPOTHESIS
@given(data=st.data())
def test_bulk_recompute_bundles_never_fails_on_any_input(gql, world, data):
    check(
        gql,
        "mutation($ids: [ID!]!, $size: Int) { bulkRecomputeBundles(bundleIds: $ids, "
        "batchSize: $size) { jobIds totalBundles batchCount message } }",
        {
            "ids": data.draw(
                st.one_of(
                    st.lists(st.sampled_from(world["bundle_ids"]), min_size=1, max_size=5),
                    st.lists(bundle_ids(world), max_size=20),
                )
            ),
            "size": data.draw(
                st.one_of(st.integers(1, 1000), optional(st.one_of(st.integers(0, 1001), INT32)))
            ),
        },
    )


@HYPOTHESIS
@given(data=st.data())
def test_reindex_bundles_never_fails_on_any_input(gql, world, data):
    check(
        gql,
        "mutation($ids: [ID!], $r: String) "
        "{ reindexBundles(bundleIds: $ids, reason: $r) { jobId message } }",
        {
            "ids": data.draw(optional(st.lists(bundle_ids(world), max_size=20))),
            "r": data.draw(optional(st.text(max_size=300))),
        },
    )


def job_ids(world) -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(world["job_ids"]), st.uuids().map(str), st.text(max_size=40))


@HYPOTHESIS
@given(data=st.data())
def test_retry_job_never_fails_on_any_input(gql, world, data):
    # Each example sends a real job's id (in whatever state earlier examples left it) and an
    # arbitrary one.
    for job_id in (data.draw(st.sampled_from(world["job_ids"])), data.draw(job_ids(world))):
        check(
            gql,
            "mutation($id: ID!) { retryJob(id: $id) { jobId state message } }",
            {"id": job_id},
        )


@HYPOTHESIS
@given(data=st.data())
def test_cancel_job_never_fails_on_any_input(gql, world, data):
    # Each example sends a real job's id (in whatever state earlier examples left it) and an
    # arbitrary one.
    for job_id in (data.draw(st.sampled_from(world["job_ids"])), data.draw(job_ids(world))):
        check(
            gql,
            "mutation($id: ID!) { cancelJob(id: $id) { jobId state message } }",
            {"id": job_id},
        )


@HYPOTHESIS
@given(data=st.data())
def test_retry_failed_jobs_never_fails_on_any_input(gql, world, data):
    text_or = lambda values: st.one_of(st.sampled_from(values), st.text(max_size=30))  # noqa: E731
    filters = optional(
        st.fixed_dictionaries(
            {},
            optional={
                "queue": optional(text_or(["bundle-recompute", "bundle-reindex"])),
                "kind": optional(text_or(["reindex", "recompute"])),
                "bundleId": optional(bundle_ids(world)),
                "search": optional(st.text(max_size=60)),
            },
        )
    )
    check(
        gql,
        "mutation($f: FailedJobsFilter, $limit: Int) "
        "{ retryFailedJobs(filter: $f, limit: $limit) { jobIds count message } }",
        {
            "f": data.draw(filters),
            "limit": data.draw(optional(st.one_of(st.integers(0, 1001), INT32))),
        },
    )


@HYPOTHESIS
@given(data=st.data())
def test_run_schedule_never_fails_on_any_input(gql, world, data):
    known = ["nightly-consistency-check", "weekly-maintenance", "relay-and-reconcile"]
    check(
        gql,
        "mutation($id: ID!) { runSchedule(id: $id) { jobId message } }",
        {"id": data.draw(st.one_of(repeatable(st.sampled_from(known)), st.text()))},
    )


# --- every field and mutation of the schema, read from the schema itself --------------------
# Fields added later are fuzzed without touching this file. Each argument gets values of its
# declared type, hostile ones included; the answer may be a typed input error (or GraphQL's
# own refusal of a value of the wrong type), never a server error.

HOSTILE_TEXT = st.one_of(
    st.sampled_from(
        [
            "",
            "\x00",
            "a\x00b",
            "zzz",
            "-1",
            "0",
            "99999999999999999999999999",
            "00000000-0000-0000-0000-00000000000g",
            "' OR 1=1 --",
            '"><script>alert(1)</script>',
            "💥ünï",
            "a" * 5000,
        ]
    ),
    st.uuids().map(str),
    st.integers(-(2**70), 2**70).map(str),
    st.text(max_size=30),
)
SCHEMA_CODES = INPUT_CODES | {"GRAPHQL_VALIDATION_FAILED", "QUERY_TOO_COMPLEX"}


def _value_for(type_, world, depth: int = 0) -> st.SearchStrategy:
    from graphql import (
        GraphQLInputObjectType,
        GraphQLList,
        GraphQLNonNull,
        get_named_type,
    )

    if isinstance(type_, GraphQLNonNull):
        return _value_for(type_.of_type, world, depth)
    nullable = lambda s: st.one_of(st.none(), s)  # noqa: E731
    if isinstance(type_, GraphQLList):
        return nullable(st.lists(_value_for(type_.of_type, world, depth + 1), max_size=5))
    named = get_named_type(type_)
    if isinstance(named, GraphQLInputObjectType):
        fields = {name: _value_for(f.type, world, depth + 1) for name, f in named.fields.items()}
        return nullable(st.fixed_dictionaries({}, optional=fields))
    by_name = {
        "Int": st.one_of(INT32, st.integers(-(2**40), 2**40)),
        "Float": st.floats(allow_nan=False),
        "Boolean": st.booleans(),
        "ID": st.one_of(st.sampled_from(world["bundle_ids"] + world["job_ids"]), HOSTILE_TEXT),
    }
    return nullable(by_name.get(named.name, HOSTILE_TEXT))


def _selection(type_) -> str:
    """The scalar fields of a result type, one level (a connection: its count and ids)."""
    from graphql import GraphQLObjectType, get_named_type, is_leaf_type

    named = get_named_type(type_)
    if not isinstance(named, GraphQLObjectType):
        return ""
    if "edges" in named.fields:
        return "{ totalCount edges { node { id } } }"
    leaves = [n for n, f in named.fields.items() if is_leaf_type(get_named_type(f.type))]
    return "{ " + " ".join(leaves) + " }"


def _root_fields():
    from config.schema import schema

    gql_schema = schema.graphql_schema
    for operation, root in (
        ("query", gql_schema.query_type),
        ("mutation", gql_schema.mutation_type),
    ):
        for name, field in root.fields.items():
            yield pytest.param(operation, name, field, id=f"{operation}.{name}")


@pytest.mark.parametrize(("operation", "name", "field"), list(_root_fields()))
@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_every_schema_field_never_fails_on_hostile_arguments(
    gql, world, operation, name, field, data
):
    declared = ", ".join(f"${a}: {arg.type}" for a, arg in field.args.items())
    passed = ", ".join(f"{a}: ${a}" for a in field.args)
    document = (
        f"{operation}{f'({declared})' if declared else ''} "
        f"{{ {name}{f'({passed})' if passed else ''} {_selection(field.type)} }}"
    )
    variables = {
        a: data.draw(_value_for(arg.type, world), label=a) for a, arg in field.args.items()
    }
    before = Job.objects.count()
    response = gql(document, variables)
    assert response.status in {200, 400}, response.body
    assert "Traceback" not in json.dumps(response.body)
    codes = set(response.codes)
    event(f"outcome: {', '.join(sorted(codes)) or 'ok'}")
    assert codes <= SCHEMA_CODES, response.errors
    if response.errors:
        assert Job.objects.count() == before, f"refused input made a job: {variables!r}"


# --- the request itself: bodies and parameters of every JSON type ---------------------------
# Without login, as anyone on the internet could send them. A body that is not a JSON object, or
# a ``query`` that is not a string, ``variables`` that are not an object, an ``operationName``
# that is not a string: a typed 400, never a server error.

JSON_VALUES = {
    "null": None,
    "true": True,
    "false": False,
    "zero": 0,
    "int": 5,
    "float": 1.5,
    "huge": 1e308,
    "empty-string": "",
    "string": "x",
    "empty-list": [],
    "list": ["{ ping }"],
    "empty-object": {},
    "object": {"a": 1},
}
# What each parameter may be; any other JSON type is refused as BAD_USER_INPUT.
ACCEPTED = {"query": (str,), "variables": (dict,), "operationName": (str,)}


def is_wrong_type(field: str, value) -> bool:
    if value in (None, ""):
        return False  # null and "" count as absent
    if field == "variables" and isinstance(value, str):
        return True  # graphene decodes a string as JSON: "x" is no object either
    return not isinstance(value, ACCEPTED[field])


# Codes a request error may carry (graphql-core's own refusals of a document included).
REQUEST_CODES = {
    "BAD_USER_INPUT",
    "GRAPHQL_PARSE_FAILED",
    "GRAPHQL_VALIDATION_FAILED",
    "UNAUTHENTICATED",
}


def post_raw(client, payload) -> tuple[int, dict]:
    raw = client.post("/graphql/", data=json.dumps(payload), content_type="application/json")
    return raw.status_code, json.loads(raw.content)


def assert_typed(status: int, body: dict, *, expect_400: bool) -> set[str]:
    assert "Traceback" not in json.dumps(body)
    if expect_400:
        assert status == 400, body
    assert status in {200, 400}, body
    codes = {e.get("extensions", {}).get("code") for e in body.get("errors") or []}
    assert codes <= REQUEST_CODES, body
    if status == 400:
        assert codes, body
    return codes


@pytest.mark.parametrize("value", JSON_VALUES.values(), ids=JSON_VALUES.keys())
def test_a_body_that_is_not_a_json_object_is_a_typed_400(client, db, value):
    if isinstance(value, dict):
        value = [value]  # the two objects are tried as parameters below
    status, body = post_raw(client, value)
    assert assert_typed(status, body, expect_400=True) == {"BAD_USER_INPUT"}


@pytest.mark.parametrize("field", ["query", "variables", "operationName"])
@pytest.mark.parametrize("value", JSON_VALUES.values(), ids=JSON_VALUES.keys())
def test_every_json_type_in_each_parameter_is_answered_typed(client, db, field, value):
    payload = {"query": "query Q { ping }", field: value}
    status, body = post_raw(client, payload)
    wrong_type = is_wrong_type(field, value)
    codes = assert_typed(status, body, expect_400=wrong_type)
    if wrong_type:
        assert codes == {"BAD_USER_INPUT"}
        assert field.lower() in body["errors"][0]["message"].lower(), body


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"query": "{ ping }", "variables": "5"}, "BAD_USER_INPUT"),
        ({"query": "{ ping }", "variables": "[1]"}, "BAD_USER_INPUT"),
        ({"query": "{ ping }", "variables": "true"}, "BAD_USER_INPUT"),
        ({"query": "{ ping }", "variables": '"x"'}, "BAD_USER_INPUT"),
        ({"query": "{ ping }", "variables": "{"}, "BAD_USER_INPUT"),
        ({"query": "{ ping }", "operationName": "5"}, "GRAPHQL_VALIDATION_FAILED"),
        ({"query": "5"}, "GRAPHQL_PARSE_FAILED"),
        ({"variables": "{}"}, "BAD_USER_INPUT"),
        ({}, "BAD_USER_INPUT"),
        ({"query": "{ ping }", "variables": "null", "operationName": "null"}, None),
    ],
)
def test_querystring_parameters_of_any_shape_are_answered_typed(client, db, params, code):
    # GET /graphql/?query=…&variables=…: graphene decodes variables as JSON.
    raw = client.get("/graphql/", params, HTTP_ACCEPT="application/json")
    body = json.loads(raw.content)
    codes = assert_typed(raw.status_code, body, expect_400=code is not None)
    if code is not None:
        assert codes == {code}, body
    if params.get("query") and "variables" in params and code == "BAD_USER_INPUT":
        assert "variables" in body["errors"][0]["message"].lower(), body


JSON = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=10,
)


@settings(
    max_examples=300,  # a request is a few milliseconds: many shapes for little time
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    payload=st.one_of(
        JSON,
        st.fixed_dictionaries(
            {},
            optional={
                "query": st.one_of(st.sampled_from(["{ ping }", "query Q { ping }"]), JSON),
                "variables": JSON,
                "operationName": st.one_of(st.just("Q"), JSON),
            },
        ),
    )
)
def test_any_json_body_is_answered_typed_without_login(client, db, payload):
    status, body = post_raw(client, payload)
    codes = assert_typed(status, body, expect_400=False)
    event(f"{status}: {', '.join(sorted(codes)) or 'ok'}")
