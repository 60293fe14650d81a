"""GraphQL schedules: the stored fields, updateSchedule with the admin's validation, the
scheduler's heartbeat flagged stale."""

from __future__ import annotations

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType

from jobs.models import Schedule
from jobs.scheduling.cron import next_run
from jobs.scheduling.scheduler_heartbeat import HEARTBEAT_KEY

pytestmark = [pytest.mark.django_db]

UPDATE = """
mutation($id: ID!, $cron: String, $enabled: Boolean, $arguments: GenericScalar) {
  updateSchedule(id: $id, cron: $cron, enabled: $enabled, arguments: $arguments) {
    message schedule { id cron enabled arguments nextRun }
  }
}"""
SCHEDULES = """{ schedules { id cron cronInWords timezone enabled graceSeconds arguments request
  lastRunAt lastSkippedAt lastSkippedNote } }"""
SCHEDULER = "{ scheduler { reachable stale lastSeen ageSeconds maxAgeSeconds active } }"


def log_messages(name: str) -> list[str]:
    ct = ContentType.objects.get_for_model(Schedule)
    pk = str(Schedule.objects.get(name=name).pk)
    return list(
        LogEntry.objects.filter(content_type=ct, object_id=pk)
        .order_by("pk")
        .values_list("change_message", flat=True)
    )


def test_schedules_show_the_stored_fields(gql):
    rows = {s["id"]: s for s in gql(SCHEDULES).data["schedules"]}
    nightly = rows["nightly-consistency-check"]
    assert nightly["cronInWords"] == "At 02:00 UTC"
    assert nightly["timezone"] == "UTC" and nightly["enabled"] is True
    assert nightly["graceSeconds"] == 3600 and nightly["request"] == "bundles.check"
    assert nightly["arguments"] == {"scope": "active", "fix": False, "notify_admins": True}
    assert nightly["lastSkippedAt"] is None and nightly["lastSkippedNote"] == ""


def test_update_schedule_changes_cron_arguments_and_enabled_and_logs_it(gql, redis_conn):
    result = gql(UPDATE, {"id": "nightly-consistency-check", "cron": "15 1 * * *",
                          "arguments": {"scope": "active", "fix": True}})  # fmt: skip
    assert result.errors == []
    saved = result.data["updateSchedule"]["schedule"]
    assert saved["cron"] == "15 1 * * *" and saved["arguments"] == {"scope": "active", "fix": True}
    assert saved["nextRun"] == next_run("15 1 * * *").isoformat()
    gql(UPDATE, {"id": "nightly-consistency-check", "enabled": False})
    assert Schedule.objects.get(name="nightly-consistency-check").enabled is False
    messages = log_messages("nightly-consistency-check")
    assert len(messages) == 2 and "15 1 * * *" in messages[0]
    assert messages[1] == "Schedule nightly-consistency-check disabled"


@pytest.mark.parametrize(
    "variables, field, words",
    [
        ({"cron": "0 25 * * *"}, "cron", "Bad cron expression '0 25 * * *'"),
        ({"cron": "every night"}, "cron", "5 fields"),
        ({"arguments": {"scope": "active", "colour": "red"}}, "arguments", "colour"),
        ({"arguments": {"trigger": "admin"}}, "arguments", "come from the door"),
    ],
)
def test_update_schedule_refuses_bad_input_naming_the_field_and_changes_nothing(
    gql, variables, field, words
):
    before = list(Schedule.objects.values_list("name", "cron", "arguments", "enabled"))
    result = gql(UPDATE, {"id": "nightly-consistency-check", **variables})
    [error] = result.errors
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["field"] == field and words in error["message"]
    assert list(Schedule.objects.values_list("name", "cron", "arguments", "enabled")) == before
    assert log_messages("nightly-consistency-check") == []


def test_update_of_an_unknown_schedule_is_not_found(gql):
    result = gql(UPDATE, {"id": "nope", "enabled": False})
    assert (
        result.codes == ["NOT_FOUND"] and "Unknown schedule 'nope'" in result.errors[0]["message"]
    )


def test_scheduler_status_flags_a_missing_or_old_heartbeat_stale(gql, redis_conn):
    assert gql(SCHEDULER).data["scheduler"]["stale"] is True
    import time

    redis_conn.set(HEARTBEAT_KEY, f"{time.time() - 5:.3f}")
    fresh = gql(SCHEDULER).data["scheduler"]
    assert fresh["stale"] is False and 4 <= fresh["ageSeconds"] < 60 and fresh["lastSeen"]
    redis_conn.set(HEARTBEAT_KEY, f"{time.time() - 600:.3f}")
    old = gql(SCHEDULER).data["scheduler"]
    assert old["stale"] is True and old["ageSeconds"] >= 600 and old["maxAgeSeconds"] == 60
