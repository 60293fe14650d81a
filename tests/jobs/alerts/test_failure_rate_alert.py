"""A kind failing beyond its threshold: one email, one signed webhook POST, then one resolve.

Real Redis, real in-process RQ workers, the ledger in a real database; the webhook receiver is
an HTTP server the test starts on 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import hmac

import pytest

from jobs.alerts.evaluation import evaluate_alerts
from jobs.alerts.models import AlertEvent, AlertRule
from jobs.alerts.webhook import KIND, SIGNATURE_HEADER, TIMESTAMP_HEADER
from jobs.enqueue import enqueue
from jobs.models import Job, JobState
from tests.jobs.alerts.conftest import SECRET

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis]


def _run(count: int, *, fail: bool) -> None:
    for _ in range(count):
        enqueue("alert_test_job", payload={"fail": fail}, trigger="command")


def _alert_mails(outbox) -> list:
    """The alert mails (each failed job also mails ADMINS on its own: jobs.runner)."""
    return [m for m in outbox if "] Alert " in m.subject]


def _signature_ok(post: dict) -> bool:
    expected = "sha256=" + hmac.new(SECRET.encode(), post["body"], hashlib.sha256).hexdigest()
    return hmac.compare_digest(post["headers"][SIGNATURE_HEADER], expected)


def test_a_failing_kind_fires_once_by_email_and_signed_webhook_then_resolves_once(
    only_rule, receiver, run_burst, settings, mailoutbox
):
    # Given a rule on the kind's failure rate, ADMINS set and a webhook receiver up
    settings.ADMINS = [("Ops", "ops@example.com")]
    rule = only_rule(
        condition="failure_rate",
        subject_type="kind",
        subject="alert_test_job",
        threshold=50,
        min_count=4,
    )
    # When the kind fails 5 times out of 5 (real workers) and the rules are evaluated twice
    _run(5, fail=True)
    run_burst()
    assert Job.objects.filter(kind="alert_test_job", state=JobState.FAILED).count() == 5
    first, again = evaluate_alerts(), evaluate_alerts()
    run_burst()  # the webhook delivery is a ledger job

    # Then it fired once: one email, one POST, signed over the exact body
    assert [o.event for o in first] == ["fired"] and [o.event for o in again] == [""]
    rule.refresh_from_db()
    assert rule.state == "firing" and rule.last_value == 100.0
    assert [m.subject for m in _alert_mails(mailoutbox)] == ["[Django] Alert FIRING: test-rule"]
    assert "5 of 5 jobs of job kind alert_test_job failed" in _alert_mails(mailoutbox)[0].body
    assert len(receiver.posts) == 1
    post = receiver.posts[0]
    assert _signature_ok(post)
    assert post["headers"][TIMESTAMP_HEADER].isdigit()
    body = receiver.bodies()[0]
    assert body["alert"] == "test-rule" and body["status"] == "firing" and body["value"] == 100.0
    delivery = Job.objects.get(kind=KIND)
    assert delivery.state == JobState.COMPLETED and delivery.result["status"] == 204
    event = AlertEvent.objects.get()
    assert event.channels == {"email": "sent", "webhook": f"job {delivery.pk}"}

    # When the failures stop (20 successes bring the rate to 5 of 25 = 20 %)
    _run(20, fail=False)
    run_burst()
    resolved, quiet = evaluate_alerts(), evaluate_alerts()
    run_burst()

    # Then it resolves, and says so once on each channel
    assert [o.event for o in resolved] == ["resolved"] and [o.event for o in quiet] == [""]
    assert AlertRule.objects.get().state == "ok"
    assert [m.subject for m in _alert_mails(mailoutbox)] == [
        "[Django] Alert FIRING: test-rule",
        "[Django] Alert resolved: test-rule",
    ]
    assert len(receiver.posts) == 2 and _signature_ok(receiver.posts[1])
    assert receiver.bodies()[1]["status"] == "resolved"
    assert list(AlertEvent.objects.order_by("at").values_list("kind", flat=True)) == [
        "fired",
        "resolved",
    ]


def test_a_webhook_receiver_that_is_down_gets_retries_visible_as_jobs(
    only_rule, closed_port_url, quick_webhook_retries, run_burst, settings
):
    # Given a firing rule whose webhook points where nothing listens (email off)
    settings.JOBS_ALERT_WEBHOOK_URL = closed_port_url
    settings.JOBS_ALERT_WEBHOOK_SECRET = SECRET
    only_rule(
        condition="failure_rate",
        subject_type="kind",
        subject="alert_test_job",
        threshold=0,
        min_count=1,
        email=False,
    )
    _run(1, fail=True)
    run_burst()
    assert [o.event for o in evaluate_alerts()] == ["fired"]

    # When the workers try to deliver it
    run_burst()

    # Then the delivery job shows every attempt, each refused, and failed for good at the end
    delivery = Job.objects.get(kind=KIND)
    assert delivery.attempts == 3 and delivery.max_attempts == 3
    assert delivery.state == JobState.FAILED
    assert len(delivery.errors) == 3
    assert all("refused" in e["message"].lower() for e in delivery.errors)
    assert AlertEvent.objects.get().channels["webhook"] == f"job {delivery.pk}"


def test_cooldown_keeps_a_resolved_rule_from_firing_again_at_once(only_rule, settings):
    # Given a rule that fired and resolved, with a 10-minute cooldown
    from datetime import timedelta

    from django.utils import timezone

    rule = only_rule(
        condition="failure_rate",
        subject_type="kind",
        subject="alert_test_job",
        threshold=0,
        min_count=1,
        email=False,
        webhook=False,
        cooldown_seconds=600,
    )
    now = timezone.now()
    AlertRule.objects.filter(pk=rule.pk).update(last_resolved_at=now - timedelta(seconds=60))
    Job.objects.create(
        kind="alert_test_job",
        queue="bundle-recompute",
        trigger="command",
        state=JobState.FAILED,
        settled_at=now,
    )
    # When it is over the threshold again within the cooldown, then after it
    within = evaluate_alerts(now=now)
    after = evaluate_alerts(now=now + timedelta(seconds=600))

    # Then only the second evaluation fires
    assert within[0].event == "" and "in cooldown" in within[0].message
    assert after[0].event == "fired"


def test_the_delivery_kind_keeps_the_projects_retry_policy_after_a_test_changed_it():
    from jobs import conf
    from jobs.registry import get_kind

    kind = get_kind(KIND)
    assert kind.max_attempts == conf.alert_webhook_max_attempts() == 5
    assert kind.backoff == conf.alert_webhook_backoff() == (10, 60, 300, 900)
    assert kind.queue == "bundle-consistency-check"
