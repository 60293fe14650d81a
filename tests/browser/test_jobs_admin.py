"""System → Jobs in a real browser with a real worker: live progress, errors per attempt,
Retry, Cancel, the bundle action, and screenshots of the pages (artifacts/, not committed)."""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.sync_api import expect

from jobs.enqueue import enqueue
from jobs.models import Job, JobState
from tests.browser.conftest import screenshot, wait_until
from tests.factories import make_bundle

pytestmark = [
    pytest.mark.browser,
    pytest.mark.redis,
    pytest.mark.django_db(transaction=True),
]


def row_state(page, job: Job):
    return page.locator(f'[data-live="state"][data-job-id="{job.pk}"]').first


def job_progress(page, job: Job):
    return page.locator(f'[data-live="progress"][data-job-id="{job.pk}"] .job-progress-text').first


def mark_page(page) -> None:
    """A flag that a reload would wipe: proves later checks saw in-place updates."""
    page.evaluate("window.__notReloaded = true")


def assert_not_reloaded(page) -> None:
    assert page.evaluate("window.__notReloaded === true")


def test_recompute_from_bundle_action_goes_live_to_completed(page, live_server, start_worker):
    # Given a bundle and no worker yet (so we see the job wait, then run)
    bundle = make_bundle(name="Starter kit")
    Job.objects.all().delete()  # the signal-driven jobs of creating it are not what we watch

    # When the operator selects it in the bundle list and runs "Recompute"
    page.goto(f"{live_server.url}/admin/bundles/bundle/")
    page.check(f'input[name="_selected_action"][value="{bundle.pk}"]')
    page.select_option('select[name="action"]', "recompute_selected")
    page.click('button[name="index"]')

    # Then the admin answers "1 job queued" with a link to exactly that job
    message = page.locator(".messagelist li").first
    expect(message).to_contain_text("1 job queued")
    job = Job.objects.get(kind="recompute", target_id=str(bundle.pk))
    assert job.trigger == "admin"
    message.locator("a").click()
    expect(page).to_have_url(re.compile(rf"caused_by={job.pk}$"))
    expect(page.locator("#result_list tbody tr")).to_have_count(1)
    expect(row_state(page, job)).to_have_text("Pending")
    screenshot(page, "jobs-list-pending.png")

    # When a worker starts, the row goes to 100 % and Completed without a reload
    mark_page(page)
    start_worker()
    expect(row_state(page, job)).to_have_text("Completed", timeout=30_000)
    expect(job_progress(page, job)).to_have_text("100%")
    assert_not_reloaded(page)
    job.refresh_from_db()
    assert job.state == JobState.COMPLETED and job.progress == 100

    # And the bundle page lists the job
    page.goto(f"{live_server.url}/admin/bundles/bundle/{bundle.pk}/change/")
    expect(page.locator(".jobs-recent")).to_contain_text("recompute")
    screenshot(page, "bundle-page.png")


def test_failing_job_shows_every_attempt_and_retry_runs_it_again(
    page, dark_page, live_server, start_worker, redis_conn
):
    # Given a job that fails its three attempts in a real worker
    start_worker()
    token = uuid.uuid4().hex
    job = enqueue("test_flaky", payload={"token": token, "fail_times": 3}, trigger="admin")
    wait_until(lambda: Job.objects.get(pk=job.pk).state == JobState.FAILED, timeout=60)

    # When the operator opens its page
    page.goto(f"{live_server.url}/admin/jobs/job/{job.pk}/change/")

    # Then each attempt's error is there, newest first, each with a collapsible traceback
    errors = page.locator(".jobs-attempt-error")
    expect(errors).to_have_count(3)
    for i, attempt in enumerate((3, 2, 1)):
        expect(errors.nth(i)).to_contain_text(f"Attempt {attempt}")
        expect(errors.nth(i)).to_contain_text(f"flaky failure number {attempt}")
    traceback = errors.nth(0).locator("pre.jobs-traceback")
    expect(traceback).to_be_hidden()
    errors.nth(0).locator("details summary").click()  # the traceback's, inside the attempt's
    expect(traceback).to_be_visible()
    expect(traceback).to_contain_text("RuntimeError")
    expect(page.locator(".jobs-timeline")).to_contain_text("Attempt 3 failed")
    screenshot(page, "job-page-failed.png")
    dark_page.goto(page.url)
    screenshot(dark_page, "job-page-failed-dark.png")

    # When they press Retry
    page.click("#job-retry")

    # Then it runs again (attempt 4, which succeeds) and the page shows it without a reload
    expect(page.locator(".messagelist")).to_contain_text("will run again")
    mark_page(page)
    expect(row_state(page, job)).to_have_text("Completed", timeout=30_000)
    expect(page.locator(f'[data-live="attempts"][data-job-id="{job.pk}"]').first).to_have_text(
        "4/4"
    )
    assert_not_reloaded(page)
    job.refresh_from_db()
    assert job.state == JobState.COMPLETED
    assert job.attempts == 4
    assert len(job.errors) == 3  # history kept
    assert int(redis_conn.get(f"test:runs:{token}")) == 4
    # and the audit says who retried it
    page.reload()
    expect(page.locator(".jobs-audit")).to_contain_text("operator")
    expect(page.locator(".jobs-audit")).to_contain_text("Retried")


def test_cancel_stops_a_pending_job_and_a_running_one_after_confirmation(
    page, live_server, start_worker, redis_conn
):
    # Given a slow job running in the worker and a job waiting behind it in the same queue
    start_worker()
    slow_token, waiting_token = uuid.uuid4().hex, uuid.uuid4().hex
    slow = enqueue(
        "test_slow",
        payload={"token": slow_token, "steps": 60, "step_seconds": 0.25},
        trigger="admin",
    )
    wait_until(lambda: redis_conn.get(f"test:started:{slow_token}"), timeout=30)
    waiting = enqueue("test_noop", payload={"token": waiting_token}, trigger="admin")

    # When the operator cancels the pending job from its page
    page.goto(f"{live_server.url}/admin/jobs/job/{waiting.pk}/change/")
    expect(row_state(page, waiting)).to_have_text("Pending")
    page.click("#job-cancel")

    # Then it is cancelled at once (no confirmation needed for a job that has not started)
    expect(page.locator(".messagelist")).to_contain_text("cancelled")
    expect(row_state(page, waiting)).to_have_text("Cancelled")

    # When they stop the running job, a confirmation page comes first
    page.goto(f"{live_server.url}/admin/jobs/job/{slow.pk}/change/")
    page.click("#job-cancel")
    expect(page.locator("#content")).to_contain_text("is running")
    assert Job.objects.get(pk=slow.pk).cancel_requested is False  # nothing happened yet
    page.click('input[type=submit][value="Yes, stop it"]')
    expect(page.locator(".messagelist")).to_contain_text("asked to stop")

    # Then the running job stops mid-way and the pending one never ran
    mark_page(page)
    expect(row_state(page, slow)).to_have_text("Cancelled", timeout=30_000)
    assert_not_reloaded(page)
    slow.refresh_from_db()
    assert slow.progress < 100
    assert redis_conn.get(f"test:finished:{slow_token}") is None
    # give the worker the chance it would need to (wrongly) run the cancelled job
    noop_after = enqueue("test_noop", payload={"token": "after-" + waiting_token}, trigger="admin")
    wait_until(lambda: Job.objects.get(pk=noop_after.pk).state == JobState.COMPLETED, timeout=30)
    assert redis_conn.get(f"test:runs:{waiting_token}") is None
    assert Job.objects.get(pk=waiting.pk).state == JobState.CANCELLED


def test_jobs_list_overview_and_screenshots_light_and_dark(
    page, dark_page, live_server, start_worker
):
    # Given some history: a bundle recomputed by a worker, a failure, a waiting job
    start_worker()
    make_bundle(name="Travel set")
    failing = enqueue(
        "test_flaky", payload={"token": uuid.uuid4().hex, "fail_times": 9}, trigger="admin"
    )
    wait_until(lambda: Job.objects.get(pk=failing.pk).state == JobState.FAILED, timeout=60)
    wait_until(
        lambda: not Job.objects.filter(state__in=["pending", "running"]).exists(), timeout=60
    )

    # When the operator opens System → Jobs
    page.goto(f"{live_server.url}/admin/jobs/job/")

    # Then it is an admin change list with the overview strip, chart and quick buttons (the
    # strip opens on the queue table and the chart)
    expect(page.locator("#changelist")).to_be_visible()
    page.locator("#jobs-overview-panel > summary").click()
    expect(page.locator(".jobs-overview")).to_contain_text("bundle-recompute")
    expect(page.locator(".jobs-overview")).to_contain_text("worker")
    expect(page.locator("svg.jobs-chart")).to_be_visible()
    expect(page.get_by_role("button", name="Recompute all bundles")).to_be_visible()
    expect(page.locator("#changelist-filter")).to_contain_text("queue")
    screenshot(page, "jobs-list.png")
    dark_page.goto(page.url)
    expect(dark_page.locator("#changelist")).to_be_visible()
    bg = dark_page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert bg != "rgb(255, 255, 255)"  # the admin's dark theme applies to our page too
    screenshot(dark_page, "jobs-list-dark.png")

    # When they press a quick button, the job is queued and linked
    page.get_by_role("button", name="Run consistency check (active)").click()
    expect(page.locator(".messagelist")).to_contain_text("1 job queued")
    assert Job.objects.filter(kind="consistency_check", trigger="admin").exists()

    # And the schedules page lists the cron schedules in words with Run now
    page.goto(f"{live_server.url}/admin/jobs/job/schedules/")
    expect(page.locator("#result_list")).to_contain_text("At 02:00 UTC")
    expect(page.locator("#result_list")).to_contain_text("At 03:00 UTC, only on Sunday")
    screenshot(page, "schedules.png")
