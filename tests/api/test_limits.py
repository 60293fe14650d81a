"""GraphQL limits (api/limits.py): each one refuses a document before anything runs, with
QUERY_TOO_COMPLEX naming the limit; the documented and the original design's documents pass.

(How fast a refusal is lives in bench/bench_graphql_limits.py; here, that nothing executes:
the refused request runs no SQL beyond the session's own.)"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from graphql import get_introspection_query, parse

from api.limits import check_limits
from config.schema import schema
from tests.api.test_original_mutations import BULK_RECOMPUTE, RECOMPUTE, TRIGGER_CHECK
from tests.api.test_queries import BUNDLES_PAGE, JOBS_PAGE

pytestmark = pytest.mark.django_db

# The session and its user: what a request costs before the GraphQL view does anything.
SESSION_QUERIES = 2


def nested_jobs(levels: int) -> str:
    """job { parent { children { parent { children ... { id } } } } }, ``levels`` fields deep
    (the job that doesn't exist: only the limits are under test)."""
    names = ["parent", "children"] * levels
    inner = "id"
    for name in reversed(names[: levels - 2]):
        inner = f"{name} {{ {inner} }}"
    return f'{{ job(id: "00000000-0000-0000-0000-000000000000") {{ {inner} }} }}'


def aliases(n: int, field: str = "jobs(first: 100) { totalCount }") -> str:
    return "{ " + " ".join(f"a{i}: {field}" for i in range(n)) + " }"


def refused(response, limit: str) -> dict:
    assert response.status == 400, response.body
    assert response.data is None
    (error,) = response.errors
    assert error["extensions"]["code"] == "QUERY_TOO_COMPLEX", error
    assert error["extensions"]["limit"] == limit, error
    assert limit in error["message"]
    return error


def test_ten_levels_of_nesting_are_refused_before_execution(gql, django_assert_max_num_queries):
    with django_assert_max_num_queries(SESSION_QUERIES):
        response = gql(nested_jobs(10))
    error = refused(response, "GRAPHQL_MAX_DEPTH")
    assert error["extensions"]["value"] == 10
    assert error["extensions"]["maximum"] == 8


def test_nesting_within_the_depth_limit_is_answered(gql):
    response = gql(nested_jobs(8))
    assert response.codes == ["NOT_FOUND"]  # answered: the job simply doesn't exist


def test_a_thousand_aliases_are_refused_before_execution(gql, django_assert_max_num_queries):
    with django_assert_max_num_queries(SESSION_QUERIES):
        response = gql(aliases(1000))
    error = refused(response, "GRAPHQL_MAX_ALIASES")
    assert error["extensions"]["value"] == 1000


def test_a_thousand_aliases_of_schedules_are_refused(gql):
    refused(gql(aliases(1000, "schedules { id }")), "GRAPHQL_MAX_ALIASES")


def test_a_few_aliases_are_answered(gql):
    response = gql(aliases(3, "jobs(first: 1) { totalCount }"))
    assert response.errors == []
    assert set(response.data) == {"a0", "a1", "a2"}


def test_too_many_field_selections_are_refused(gql, settings):
    settings.GRAPHQL_MAX_FIELDS = 50
    refused(gql("{ " + "ping " * 51 + "}"), "GRAPHQL_MAX_FIELDS")


def test_nested_pages_over_the_cost_budget_are_refused(gql, django_assert_max_num_queries):
    # 100 jobs × 20 children × 20 children each × a few fields: far over 50,000 resolutions.
    document = (
        "{ jobs(first: 100) { edges { node { id children { id children { id state kind "
        "progress } } } } } }"
    )
    with django_assert_max_num_queries(SESSION_QUERIES):
        response = gql(document)
    error = refused(response, "GRAPHQL_MAX_COST")
    assert error["extensions"]["value"] > error["extensions"]["maximum"]


def test_the_page_size_in_a_variable_counts_towards_the_cost(gql, settings):
    settings.GRAPHQL_MAX_COST = 500
    document = "query($n: Int) { jobs(first: $n) { edges { node { id kind state } } } }"
    refused(gql(document, {"n": 100}), "GRAPHQL_MAX_COST")
    assert gql(document, {"n": 5}).errors == []


def test_a_fragment_bomb_is_costed_without_expanding_it(gql):
    # Each fragment spreads the previous one ten times: 10^6 copies if expanded.
    fragments = ["fragment F0 on Job { id }"]
    for i in range(1, 7):
        fragments.append(f"fragment F{i} on Job {{ " + f"...F{i - 1} " * 10 + "}")
    document = '{ job(id: "1") { ...F6 } } ' + " ".join(fragments)
    refused(gql(document), "GRAPHQL_MAX_COST")


def test_too_many_operations_in_one_document_are_refused(gql):
    document = " ".join(f"query Q{i} {{ ping }}" for i in range(21))
    refused(gql(document), "GRAPHQL_MAX_OPERATIONS")


def test_a_huge_document_is_refused_by_its_token_count(gql):
    refused(gql("{ ping " + "# x\n" + " ".join(["ping"] * 30_000) + " }"), "GRAPHQL_MAX_TOKENS")


def test_a_batch_of_operations_as_a_json_list_is_refused_with_a_typed_error(client, gql):
    body = json.dumps([{"query": "{ ping }"}] * 50)
    raw = client.post("/graphql/", data=body, content_type="application/json")
    assert raw.status_code == 400
    (error,) = json.loads(raw.content)["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"


def test_limits_are_settings(gql, settings):
    settings.GRAPHQL_MAX_DEPTH = 3
    refused(gql(nested_jobs(4)), "GRAPHQL_MAX_DEPTH")
    settings.GRAPHQL_MAX_DEPTH = 12
    settings.GRAPHQL_MAX_COST = 10**12
    assert gql(nested_jobs(10)).codes == ["NOT_FOUND"]


def _readme_documents() -> list[str]:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    found = re.findall(r"-d '(\{.*?\})'", readme)
    assert found, "the README's curl examples moved: update this test"
    return [json.loads(body)["query"] for body in found]


DOCUMENTED = [
    TRIGGER_CHECK,
    RECOMPUTE,
    BULK_RECOMPUTE,
    JOBS_PAGE,
    BUNDLES_PAGE,
    get_introspection_query(descriptions=True),  # what GraphiQL sends
    *_readme_documents(),
]


@pytest.mark.parametrize("document", DOCUMENTED)
def test_documented_and_original_documents_are_within_every_limit(document):
    assert check_limits(schema.graphql_schema, parse(document), {"first": 100}) == []


def test_documented_pages_of_a_hundred_pass_through_the_view(gql):
    assert gql(JOBS_PAGE, {"first": 100}).errors == []
    assert gql(BUNDLES_PAGE, {"first": 100}).errors == []
    response = gql(get_introspection_query(descriptions=True))
    assert response.errors == []
