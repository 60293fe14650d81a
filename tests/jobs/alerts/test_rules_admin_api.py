"""System → Alerts, GraphQL alertRules / updateAlertRule, check_alerts, the default rules and
the maintenance pass's once-per-interval evaluation."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.conf import settings as django_settings
from django.contrib.admin.models import LogEntry
from django.core.management import call_command

from jobs.alerts.conditions import get_condition
from jobs.alerts.defaults import load_defaults
from jobs.alerts.due import ALERTS_DUE_KEY, evaluate_alerts_if_due
from jobs.alerts.models import AlertRule
from jobs.maintenance.ledger_pass import relay_and_reconcile
from tests.admin.conftest import client_for, make_user
from tests.api.conftest import post_graphql

pytestmark = pytest.mark.django_db

RULES = """
query { alertRules { name condition subject threshold state enabled email webhook
  channelWarnings recentEvents { kind } } }
"""
UPDATE = """
mutation($name: ID!, $threshold: Float, $subjectType: String, $enabled: Boolean) {
  updateAlertRule(name: $name, threshold: $threshold, subjectType: $subjectType,
                  enabled: $enabled) {
    message alertRule { name threshold enabled }
  }
}
"""


@pytest.fixture
def rules(db):
    AlertRule.objects.all().delete()
    load_defaults()
    return AlertRule.objects


def test_the_default_rules_come_from_settings_each_with_a_registered_condition(rules):
    names = [item["name"] for item in django_settings.JOBS_ALERT_RULES]
    assert sorted(rules.values_list("name", flat=True)) == sorted(names)
    for rule in rules.all():
        assert get_condition(rule.condition)  # registered (jobs' own or the bundles')
    assert set(rules.filter(enabled=False).values_list("name", flat=True)) == {
        "failure-rate-recompute"
    }
    assert load_defaults() == 0  # settings decide only the first creation


def test_the_admin_list_shows_state_channels_and_a_rule_nobody_would_hear(rules, settings):
    settings.ADMINS = []
    settings.JOBS_ALERT_WEBHOOK_URL = ""
    rules.filter(name="dead-workers").update(state="firing", last_message="dead: w1")
    client = client_for(make_user(permissions=["jobs.view_alertrule"]))
    page = client.get("/admin/jobs/alertrule/")
    html = page.content.decode()
    assert page.status_code == 200
    assert "dead-workers" in html and "Firing" in html
    assert "email: no ADMINS set" in html
    assert "webhook: no JOBS_ALERT_WEBHOOK_URL set" in html
    assert "no working channel" in html


def test_the_admin_form_validates_saves_and_audits(rules):
    rule = rules.get(name="failure-rate")
    url = f"/admin/jobs/alertrule/{rule.pk}/change/"
    form = {
        "description": rule.description,
        "subject_type": "",
        "subject": "",
        "threshold": "30",
        "min_count": "20",
        "window_seconds": "600",
        "cooldown_seconds": "1800",
        "enabled": "on",
        "email": "on",
        "webhook": "on",
    }
    viewer = client_for(make_user(permissions=["jobs.view_alertrule"]))
    assert viewer.post(url, form).status_code == 403
    editor_user = make_user(permissions=["jobs.view_alertrule", "jobs.change_alertrule"])
    editor = client_for(editor_user)

    refused = editor.post(url, {**form, "subject_type": "schedule", "subject": "x"})
    assert refused.status_code == 200  # the form again, with the error
    assert "Failure rate watches: everything, job kind, queue" in refused.content.decode()
    assert rules.get(pk=rule.pk).threshold == 50

    saved = editor.post(url, form)
    assert saved.status_code == 302
    rule.refresh_from_db()
    assert (rule.threshold, rule.window_seconds) == (30, 600)
    entry = LogEntry.objects.get(object_id=str(rule.pk), user=editor_user)
    assert "threshold to 30.0" in entry.change_message


def test_graphql_lists_rules_with_warnings_and_updates_one_with_permission(rules, client, settings):
    settings.ADMINS = [("Ops", "ops@example.com")]
    settings.JOBS_ALERT_WEBHOOK_URL = ""
    from tests.api.conftest import make_user as api_user

    viewer = api_user("viewer", perms=["jobs.view_alertrule"])
    client.force_login(viewer)
    listed = post_graphql(client, RULES)
    assert not listed.errors
    by_name = {r["name"]: r for r in listed.data["alertRules"]}
    assert by_name["oldest-waiting"]["channelWarnings"] == [
        "webhook: no JOBS_ALERT_WEBHOOK_URL set"
    ]
    assert post_graphql(client, UPDATE, {"name": "oldest-waiting", "threshold": 5}).codes == [
        "FORBIDDEN"
    ]

    editor = api_user("editor", perms=["jobs.view_alertrule", "jobs.change_alertrule"])
    client.force_login(editor)
    bad = post_graphql(client, UPDATE, {"name": "oldest-waiting", "subjectType": "kind"})
    assert bad.codes == ["BAD_USER_INPUT"]
    assert bad.errors[0]["extensions"].get("field") == "subjectType"
    done = post_graphql(client, UPDATE, {"name": "oldest-waiting", "threshold": 120})
    assert not done.errors
    assert done.data["updateAlertRule"]["alertRule"]["threshold"] == 120
    assert rules.get(name="oldest-waiting").threshold == 120
    assert LogEntry.objects.filter(user=editor, object_repr="oldest-waiting").exists()


def test_check_alerts_evaluates_once_and_prints_the_states(rules, redis_conn):
    rules.exclude(name__in=["oldest-waiting", "schedule-failed"]).update(enabled=False)
    out = StringIO()
    call_command("check_alerts", stdout=out)
    text = out.getvalue()
    assert "oldest-waiting" in text and "no job is waiting" in text
    assert "2 rule(s) evaluated, 0 firing." in text
    out = StringIO()
    call_command("check_alerts", "--json", stdout=out)
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    assert {r["rule"] for r in rows} == {"oldest-waiting", "schedule-failed"}


def test_the_maintenance_pass_evaluates_at_most_once_per_interval(rules, redis_conn, settings):
    settings.JOBS_ALERTS_ENABLED = True
    settings.JOBS_ALERTS_INTERVAL = 30
    rules.exclude(name="oldest-waiting").update(enabled=False)
    relay_and_reconcile()
    first = rules.get(name="oldest-waiting").last_evaluated_at
    assert first is not None  # evaluated by the pass
    assert 0 < redis_conn.pttl(ALERTS_DUE_KEY) <= 30_000
    relay_and_reconcile()
    assert evaluate_alerts_if_due(redis_conn) is None  # this interval's turn is taken
    assert rules.get(name="oldest-waiting").last_evaluated_at == first
    redis_conn.delete(ALERTS_DUE_KEY)  # the interval is over
    assert [o.rule for o in evaluate_alerts_if_due(redis_conn)] == ["oldest-waiting"]


def test_the_maintenance_pass_leaves_alerts_alone_when_they_are_off(rules, redis_conn, settings):
    settings.JOBS_ALERTS_ENABLED = False
    relay_and_reconcile()
    assert not rules.filter(last_evaluated_at__isnull=False).exists()


def test_the_change_page_shows_recent_events_linking_the_webhook_delivery_job(rules):
    from django.utils import timezone

    from jobs.alerts.models import AlertEvent
    from jobs.models import Job

    rule = rules.get(name="dead-workers")
    delivery = Job.objects.create(
        kind="jobs.alert_webhook", queue="bundle-consistency-check", trigger="schedule"
    )
    AlertEvent.objects.create(
        rule=rule,
        kind="fired",
        value=1,
        message="dead: w1",
        at=timezone.now(),
        channels={"email": "no ADMINS set", "webhook": f"job {delivery.pk}"},
    )
    client = client_for(make_user(permissions=["jobs.view_alertrule"]))
    html = client.get(f"/admin/jobs/alertrule/{rule.pk}/change/").content.decode()
    assert "dead: w1" in html and "email: no ADMINS set" in html
    assert f"/admin/jobs/job/{delivery.pk}/change/" in html
