"""API tokens (command, hashing, last use, revocation), CSRF rules and GraphiQL access."""

from __future__ import annotations

import hashlib
import io
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from api.models import ApiToken
from jobs.models import Job
from tests.api.conftest import ALL_PERMS, make_user, post_graphql
from tests.factories import make_bundle

QUEUES = "{ jobQueues { name } }"


def _command(*args: str) -> str:
    out = io.StringIO()
    call_command("api_token", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def operator(db):
    return make_user("ops", perms=ALL_PERMS)


def test_api_token_command_creates_a_key_shown_once_and_stored_hashed(operator):
    # When
    out = _command("create", "--user", "ops", "--name", "CI")

    # Then the key is printed, and only its hash and prefix are stored
    key = out.strip().splitlines()[-1]
    assert key.startswith("bj_") and len(key) > 40
    row = ApiToken.objects.get()
    assert row.user == operator and row.name == "CI"
    assert row.key_hash == hashlib.sha256(key.encode()).hexdigest()
    assert key.startswith(row.prefix) and row.prefix != key
    assert key not in str(ApiToken.objects.values().get())


def test_api_token_command_lists_without_keys_and_revokes(operator):
    key = _command("create", "--user", "ops", "--name", "nightly", "--quiet").strip()
    row = ApiToken.objects.get()

    listing = _command("list")
    assert "nightly" in listing and row.prefix in listing and key not in listing
    assert "never used" in listing

    assert "Revoked" in _command("revoke", row.prefix)
    row.refresh_from_db()
    assert row.revoked_at is not None
    assert "revoked" in _command("list", "--user", "ops")


def test_api_token_command_refuses_unknown_users_and_tokens(db):
    with pytest.raises(CommandError, match="No user 'ghost'"):
        _command("create", "--user", "ghost", "--name", "x")
    with pytest.raises(CommandError, match="No token"):
        _command("revoke", "12345")


@pytest.mark.parametrize(
    ("username", "why"),
    [("bob", "is not staff"), ("gone", "is not active")],
)
def test_api_token_command_refuses_users_whose_token_could_only_be_forbidden(db, username, why):
    # Only active staff may use the API (api/permissions.py): a token for anyone else would
    # answer FORBIDDEN to every request, so creating one is refused, and nothing is stored.
    make_user("bob", staff=False)
    gone = make_user("gone")
    gone.is_active = False
    gone.save()
    with pytest.raises(CommandError, match=f"{username!r} {why}"):
        _command("create", "--user", username, "--name", "x")
    assert not ApiToken.objects.exists()


def test_token_request_records_last_use_and_acts_as_its_user(client, operator):
    # Given
    key = _command("create", "--user", "ops", "--name", "CI", "--quiet").strip()
    bundle = make_bundle()

    # When
    response = post_graphql(
        client,
        "mutation($id: ID!) { recomputeBundle(bundleId: $id) { jobId } }",
        {"id": str(bundle.pk)},
        token=key,
    )

    # Then
    assert not response.errors
    job = Job.objects.get(pk=response.data["recomputeBundle"]["jobId"])
    assert job.requested_by == operator and job.trigger == "graphql"
    assert ApiToken.objects.get().last_used_at is not None


def test_revoked_token_stops_working(client, operator):
    key = _command("create", "--user", "ops", "--name", "CI", "--quiet").strip()
    assert not post_graphql(client, QUEUES, token=key).errors
    _command("revoke", str(ApiToken.objects.get().pk))
    assert post_graphql(client, QUEUES, token=key).codes == ["UNAUTHENTICATED"]


def test_a_bad_token_is_not_rescued_by_a_session_cookie(client, operator):
    # Given a logged-in staff browser session, and a request with a wrong token
    client.force_login(operator)

    # When
    response = post_graphql(client, QUEUES, token="bj_wrong")

    # Then the token decides: unauthenticated
    assert response.codes == ["UNAUTHENTICATED"]


def test_other_authorization_schemes_are_refused(client, operator):
    raw = client.post(
        "/graphql/",
        data=json.dumps({"query": QUEUES}),
        content_type="application/json",
        HTTP_AUTHORIZATION="Basic b3BzOnB3",
    )
    body = json.loads(raw.content)
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert "Bearer" in body["errors"][0]["message"]


def test_session_post_without_csrf_token_is_refused(operator):
    # Given a browser session with CSRF checks on (as in production)
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(operator)

    # When it posts without the CSRF token
    raw = browser.post(
        "/graphql/", data=json.dumps({"query": QUEUES}), content_type="application/json"
    )

    # Then
    assert raw.status_code == 403
    assert json.loads(raw.content)["errors"][0]["extensions"]["code"] == "FORBIDDEN"


def test_session_post_with_csrf_token_works(operator):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(operator)
    # The CSRF cookie comes with any page the browser loads (GraphiQL here).
    browser.get("/graphql/", HTTP_ACCEPT="text/html")
    csrf = browser.cookies["csrftoken"].value

    raw = browser.post(
        "/graphql/",
        data=json.dumps({"query": QUEUES}),
        content_type="application/json",
        HTTP_X_CSRFTOKEN=csrf,
    )

    assert raw.status_code == 200
    assert "errors" not in json.loads(raw.content)


def test_token_requests_need_no_csrf_token(operator):
    key = _command("create", "--user", "ops", "--name", "CI", "--quiet").strip()
    script = Client(enforce_csrf_checks=True)
    raw = script.post(
        "/graphql/",
        data=json.dumps({"query": QUEUES}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {key}",
    )
    assert raw.status_code == 200
    assert "errors" not in json.loads(raw.content)


def test_graphiql_is_shown_to_logged_in_staff(client, operator):
    client.force_login(operator)
    page = client.get("/graphql/", HTTP_ACCEPT="text/html")
    assert page.status_code == 200
    assert b"graphiql.min.js" in page.content


def test_graphiql_sends_anonymous_visitors_to_the_login_page(client, db):
    page = client.get("/graphql/", HTTP_ACCEPT="text/html")
    assert page.status_code == 302
    assert page["Location"].startswith("/admin/login/")


def test_graphiql_is_refused_to_non_staff(client, db):
    client.force_login(make_user("customer", staff=False))
    page = client.get("/graphql/", HTTP_ACCEPT="text/html")
    assert page.status_code == 403
    assert b"graphiql.min.js" not in page.content and b"staff users only" in page.content


def test_queries_over_get_work_but_mutations_do_not(client, operator):
    client.force_login(operator)
    ok = client.get("/graphql/", {"query": QUEUES}, HTTP_ACCEPT="application/json")
    assert ok.status_code == 200 and "errors" not in json.loads(ok.content)
    refused = client.get(
        "/graphql/",
        {"query": 'mutation { triggerBundleConsistencyCheck(scope: "all") { jobId } }'},
        HTTP_ACCEPT="application/json",
    )
    assert refused.status_code == 405
    assert Job.objects.count() == 0


def test_admin_lists_tokens_without_keys_and_revokes_them(admin_client, operator):
    # Given
    key = _command("create", "--user", "ops", "--name", "CI", "--quiet").strip()
    row = ApiToken.objects.get()

    # When the admin lists tokens, then revokes the token with the action
    page = admin_client.get("/admin/api/apitoken/")
    admin_client.post(
        "/admin/api/apitoken/", {"action": "revoke", "_selected_action": [str(row.pk)]}
    )

    # Then
    assert page.status_code == 200 and row.prefix.encode() in page.content
    assert key.encode() not in page.content and row.key_hash.encode() not in page.content
    row.refresh_from_db()
    assert row.revoked_at is not None


INTROSPECTION = "{ __schema { queryType { name } } }"
TYPE_INTROSPECTION = '{ __type(name: "Job") { fields { name } } }'


@pytest.mark.parametrize("document", [INTROSPECTION, TYPE_INTROSPECTION])
def test_introspection_is_refused_to_anonymous_callers(client, db, document):
    # Given no session and no token; When they ask for the schema
    response = post_graphql(client, document)
    # Then one typed error and no schema
    assert response.codes == ["UNAUTHENTICATED"]
    assert response.data is None and "queryType" not in json.dumps(response.body)


def test_introspection_is_refused_to_non_staff_and_to_revoked_tokens(client, db, token_for):
    # Given a logged-in customer, and a staff user's revoked token
    client.force_login(make_user("customer", staff=False, perms=ALL_PERMS))
    revoked = token_for(make_user("script", perms=ALL_PERMS), revoked=True)
    # When / Then
    assert post_graphql(client, INTROSPECTION).codes == ["FORBIDDEN"]
    assert post_graphql(Client(), INTROSPECTION, token=revoked).codes == ["UNAUTHENTICATED"]


def test_introspection_works_for_staff_by_session_and_by_token(client, operator, token_for):
    # Given a staff session and a staff user's token
    client.force_login(operator)
    key = token_for(make_user("script", perms=ALL_PERMS))
    # When both ask for the schema (GraphiQL does this for its docs and completion)
    by_session = post_graphql(client, INTROSPECTION)
    by_token = post_graphql(Client(), TYPE_INTROSPECTION, token=key)
    # Then both get it
    assert not by_session.errors and by_session.data["__schema"]["queryType"]["name"] == "Query"
    assert not by_token.errors and "state" in {f["name"] for f in by_token.data["__type"]["fields"]}


def test_typename_alone_is_not_introspection(client, db):
    # __typename names nothing of the schema; anonymous callers still get only UNAUTHENTICATED
    # from the fields they select, not an introspection error.
    response = post_graphql(client, "{ __typename }")
    assert not response.errors and response.data == {"__typename": "Query"}
