"""Fixtures for the GraphQL tests: users with and without permissions, tokens, a client helper."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client

from api.services import api_token_create, api_token_revoke

ALL_PERMS = [
    "jobs.view_job",
    "jobs.retry_job",
    "jobs.cancel_job",
    "jobs.run_schedule",
    "jobs.change_schedule",
    "jobs.delete_job",  # the weekly maintenance's request purges the ledger
    "jobs.pause_queue",
    "jobs.view_alertrule",  # issue 24: alertRules
    "jobs.change_alertrule",  # issue 24: updateAlertRule
    "bundles.view_bundle",
    "bundles.change_bundle",
]


@dataclass
class Response:
    status: int
    body: dict[str, Any]

    @property
    def data(self) -> dict[str, Any] | None:
        return self.body.get("data")

    @property
    def errors(self) -> list[dict[str, Any]]:
        return self.body.get("errors") or []

    @property
    def codes(self) -> list[str]:
        return [e.get("extensions", {}).get("code") for e in self.errors]


def post_graphql(
    client: Client, query: str, variables: dict | None = None, *, token: str | None = None
) -> Response:
    """POST a GraphQL document as JSON to /graphql/, as a script would."""
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    payload: dict[str, Any] = {"query": query}
    if variables is not None:
        payload["variables"] = variables
    raw = client.post(
        "/graphql/", data=json.dumps(payload), content_type="application/json", **headers
    )
    return Response(raw.status_code, json.loads(raw.content))


def make_user(username: str, *, staff: bool = True, perms: list[str] = (), superuser=False):
    user = get_user_model().objects.create_user(
        username=username, password=None, is_staff=staff, is_superuser=superuser
    )
    for dotted in perms:
        app_label, codename = dotted.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    return user


@pytest.fixture
def staff_with_perms(db):
    return make_user("operator", perms=ALL_PERMS)


@pytest.fixture
def gql(client, staff_with_perms):
    """Post as the logged-in staff user who has every permission the API checks."""
    client.force_login(staff_with_perms)

    def run(query: str, variables: dict | None = None) -> Response:
        return post_graphql(client, query, variables)

    return run


@pytest.fixture
def token_for():
    def make(user, *, revoked: bool = False) -> str:
        row, key = api_token_create(username=user.username, name="tests")
        if revoked:
            api_token_revoke(token=str(row.pk))
        return key

    return make
