"""The shipped Prometheus rules (deploy/prometheus/alerts.yml) are valid, do what their unit
tests say, and name metrics a real scrape of /metrics exports — checked with promtool.

promtool comes with Debian's ``prometheus`` package (.ci/run installs it when missing); these
tests skip, saying so, only where it is absent.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import urllib.request
from datetime import timedelta
from pathlib import Path

import pytest
from django.test import override_settings
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from jobs.models import Job, JobState, Schedule

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "alerts.yml"
RULE_TESTS = ROOT / "deploy" / "prometheus" / "alerts_test.yml"
PROMTOOL = shutil.which("promtool")
TOKEN = "scrape-token-for-promtool"

needs_promtool = pytest.mark.skipif(
    PROMTOOL is None,
    reason="promtool is not installed (apt-get install prometheus; .ci/run does it in CI)",
)


def promtool(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [PROMTOOL, *args], input=stdin, capture_output=True, text=True, timeout=120, cwd=ROOT
    )


@needs_promtool
def test_promtool_check_rules_passes():
    done = promtool("check", "rules", str(RULES))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


@needs_promtool
def test_the_rules_unit_tests_pass():
    done = promtool("test", "rules", str(RULE_TESTS))
    assert done.returncode == 0, done.stdout + done.stderr


@needs_promtool
@pytest.mark.django_db(transaction=True)
@pytest.mark.redis
@override_settings(JOBS_METRICS_TOKEN=TOKEN)
def test_promtool_check_metrics_passes_on_a_real_scrape_with_every_name_the_rules_use(
    live_server, redis_conn
):
    # Given a ledger with something in each family: a failed and a waiting job, a completed
    # consistency check, an open fan-out, a schedule with a skipped fire
    now = timezone.now()
    Job.objects.create(
        queue="bundle-recompute",
        kind="recompute_batch",
        trigger="signal",
        state=JobState.FAILED,
        settled_at=now,
        started_at=now - timedelta(seconds=2),
    )
    Job.objects.create(queue="bundle-bulk-operation", kind="fanout", trigger="signal")
    Job.objects.create(
        queue="bundle-consistency-check",
        kind="consistency_check",
        trigger="schedule",
        state=JobState.COMPLETED,
        settled_at=now,
        result={"checked": 3, "broken": 0, "fixed": 1},
    )
    Schedule.objects.create(
        name="nightly-test", cron="0 2 * * *", request="bundles.check", last_skipped_at=now
    )
    # When Prometheus would scrape it: over HTTP, with the bearer token
    request = urllib.request.Request(
        f"{live_server.url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        scrape = response.read().decode()
    # Then promtool finds nothing to complain about
    done = promtool("check", "metrics", stdin=scrape)
    assert done.returncode == 0, done.stdout + done.stderr
    # And every metric the rules name is in the scrape
    exported = {f.name for f in text_string_to_metric_families(scrape)}
    used = set(re.findall(r"\b((?:jobs|bundles)_[a-z0-9_]+)", RULES.read_text()))
    assert used, "the rules name no metric?"
    assert used - exported == set()
