"""GraphQL updateSchedule / runSchedule follow the permission of the schedule's work: a
schedule-only user gets FORBIDDEN (audited, nothing changed); a bad argument is BAD_USER_INPUT."""

from __future__ import annotations

import pytest
from django.contrib.admin.models import LogEntry
from django.test import Client

from jobs.models import Job, Schedule
from tests.api.conftest import make_user, post_graphql

pytestmark = [pytest.mark.django_db]

SCHEDULE_ONLY = ["jobs.view_job", "jobs.add_schedule", "jobs.change_schedule", "jobs.run_schedule"]
BOTH = [*SCHEDULE_ONLY, "bundles.change_bundle", "jobs.delete_job"]
UPDATE = """
mutation($id: ID!, $cron: String, $enabled: Boolean, $arguments: GenericScalar) {
  updateSchedule(id: $id, cron: $cron, enabled: $enabled, arguments: $arguments) {
    message schedule { id cron enabled arguments }
  }
}"""
RUN = "mutation($id: ID!) { runSchedule(id: $id) { jobId message } }"
FIELDS = ("cron", "request", "arguments", "enabled", "grace_seconds", "changed_by_id")


def snapshot(name: str) -> dict:
    obj = Schedule.objects.get(name=name)
    return {f: getattr(obj, f) for f in FIELDS}


def as_user(perms: list[str], name: str):
    user = make_user(name, perms=perms)
    client = Client()
    client.force_login(user)
    return user, lambda query, variables: post_graphql(client, query, variables)


def refusals(user) -> int:
    return LogEntry.objects.filter(user=user, change_message__startswith="Refused").count()


def test_schedule_only_user_gets_forbidden_for_every_schedule_mutation_and_nothing_changes():
    user, gql = as_user(SCHEDULE_ONLY, "scheduler")
    weekly, nightly = snapshot("weekly-maintenance"), snapshot("nightly-consistency-check")
    attempts = [
        (UPDATE, {"id": "weekly-maintenance", "cron": "* * * * *"}),
        (UPDATE, {"id": "weekly-maintenance", "arguments": {"retention_days": 1}}),
        (UPDATE, {"id": "nightly-consistency-check", "enabled": False}),
        (RUN, {"id": "weekly-maintenance"}),
        (RUN, {"id": "nightly-consistency-check"}),
    ]
    for query, variables in attempts:
        result = gql(query, variables)
        assert result.codes == ["FORBIDDEN"], (variables, result.body)
    assert snapshot("weekly-maintenance") == weekly
    assert snapshot("nightly-consistency-check") == nightly
    assert not Job.objects.exists()
    assert refusals(user) == len(attempts)


def test_a_user_with_both_permissions_updates_and_runs_and_is_the_one_who_asked():
    user, gql = as_user(BOTH, "maintainer")
    result = gql(UPDATE, {"id": "weekly-maintenance", "arguments": {"retention_days": 3}})
    assert result.errors == []
    ran = gql(RUN, {"id": "weekly-maintenance"})
    assert ran.errors == []
    assert Job.objects.get(pk=ran.data["runSchedule"]["jobId"]).requested_by == user


@pytest.mark.parametrize(
    "arguments", [{"scope": "nope"}, {"scope": "everything"}, {"scope": 5}, {"scope": [None]}]
)
def test_a_bad_scope_is_bad_user_input_and_saves_nothing(arguments):
    _, gql = as_user(BOTH, "maintainer")
    before = snapshot("nightly-consistency-check")
    result = gql(UPDATE, {"id": "nightly-consistency-check", "arguments": arguments})
    assert result.codes == ["BAD_USER_INPUT"], result.body
    assert result.errors[0]["extensions"].get("field") == "arguments"
    assert snapshot("nightly-consistency-check") == before


def test_retention_below_the_floor_is_bad_user_input():
    _, gql = as_user(BOTH, "maintainer")
    result = gql(UPDATE, {"id": "weekly-maintenance", "arguments": {"retention_days": 0}})
    assert result.codes == ["BAD_USER_INPUT"]
    assert Schedule.objects.get(name="weekly-maintenance").arguments == {}


def test_run_schedule_of_a_request_that_fails_when_it_runs_is_bad_user_input():
    _, gql = as_user(BOTH, "maintainer")
    Schedule.objects.create(
        name="old-bad-check", cron="0 0 * * *", request="bundles.check", arguments={"scope": "x"}
    )
    result = gql(RUN, {"id": "old-bad-check"})
    assert result.codes == ["BAD_USER_INPUT"], result.body
    assert not Job.objects.exists()
