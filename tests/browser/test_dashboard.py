"""System → Jobs as an operator uses it, in Chromium with real workers: Workers page (a
SIGKILLed worker shown dead), pause / resume, a new job appearing live, Retry now, no
horizontal scroll at 1366×768, badge contrast from the rendered colours, nothing fetched from
outside 127.0.0.1. Screenshots go to artifacts/."""

from __future__ import annotations

import re
import time
import uuid
from urllib.parse import urlparse

import pytest
from playwright.sync_api import expect

from jobs.enqueue import enqueue
from jobs.models import Job, JobState
from jobs.selectors import workers
from tests.browser.conftest import screenshot, wait_until
from tests.factories import make_bundle

pytestmark = [pytest.mark.browser, pytest.mark.redis, pytest.mark.django_db(transaction=True)]

LAPTOP = {"width": 1366, "height": 768}


def only_local_requests(tab) -> list[str]:
    """Record (and abort) every request to a host other than 127.0.0.1."""
    outside: list[str] = []

    def check(route):
        host = urlparse(route.request.url).hostname
        if host in ("127.0.0.1", "localhost") or route.request.url.startswith(("data:", "blob:")):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    tab.route("**/*", check)
    return outside


def row_state(tab, job: Job):
    return tab.locator(f'[data-live="state"][data-job-id="{job.pk}"]').first


def test_workers_page_shows_a_sigkilled_worker_dead_within_30_seconds(
    page, dark_page, live_server, start_worker
):
    # Given two workers, and the operator on System → Workers
    outside = only_local_requests(page)
    doomed, survivor = start_worker(), start_worker()
    wait_until(lambda: {doomed.pid, survivor.pid} <= {w.pid for w in workers() or []}, 60)
    page.goto(f"{live_server.url}/admin/jobs/job/")
    page.get_by_role("link", name="Workers").first.click()
    expect(page.locator("#result_list")).to_contain_text(str(doomed.pid))
    expect(page.locator('tr[data-state="dead"]')).to_have_count(0)
    # When one is SIGKILLed
    doomed.kill()
    killed = time.monotonic()
    # Then the page (it refreshes itself) shows it dead within 30 s, the other not
    dead_row = page.locator('tr[data-state="dead"]')
    expect(dead_row).to_have_count(1, timeout=30_000)
    assert time.monotonic() - killed < 30
    expect(dead_row).to_contain_text(str(doomed.pid))
    screenshot(page, "workers.png")
    dark_page.goto(page.url)
    screenshot(dark_page, "workers-dark.png")
    dark_page.goto(f"{live_server.url}/admin/jobs/job/schedules/")
    expect(dark_page.locator("#result_list")).to_be_visible()
    screenshot(dark_page, "schedules-dark.png")
    assert outside == []


def test_pause_holds_a_new_job_pending_and_resume_runs_it(page, live_server, start_worker):
    # Given a worker and the jobs list
    start_worker()
    page.goto(f"{live_server.url}/admin/jobs/job/")
    cell = page.locator('.jobs-queue-state[data-queue="bundle-recompute"]')
    # When the operator opens the queues panel (it stays open: localStorage) and pauses
    # bundle-recompute
    page.locator("#jobs-overview-panel > summary").click()
    cell.get_by_role("button", name="Pause").click()
    expect(page.locator(".messagelist")).to_contain_text("Queue bundle-recompute paused")
    expect(cell).to_contain_text("paused")
    # Then a new job on it stays pending (visibly), undispatched
    job = enqueue("test_noop", payload={"token": uuid.uuid4().hex}, trigger="admin")
    page.goto(f"{live_server.url}/admin/jobs/job/?queue=bundle-recompute")
    expect(row_state(page, job)).to_have_text("Pending")
    assert Job.objects.get(pk=job.pk).dispatched_at is None
    # When they resume it, the job completes (live, no reload)
    page.locator('.jobs-queue-state[data-queue="bundle-recompute"]').get_by_role(
        "button", name="Resume"
    ).click()
    expect(page.locator(".messagelist")).to_contain_text("1 waiting job sent")
    expect(row_state(page, job)).to_have_text("Completed", timeout=30_000)


def test_a_job_created_while_the_list_is_open_appears_without_a_reload(
    page, live_server, start_worker
):
    # Given the list open, with one job on it and a row selected
    first = enqueue("test_noop", payload={"token": "first"}, trigger="admin")
    page.goto(f"{live_server.url}/admin/jobs/job/")
    page.evaluate("window.__notReloaded = true")
    page.check(f'input[name="_selected_action"][value="{first.pk}"]')
    # When a job is created elsewhere
    new = enqueue("test_noop", payload={"token": "second"}, trigger="command")
    # Then a bar announces it; a click puts it on top, the selection kept, no reload
    bar = page.locator("#jobs-new-bar button")
    expect(bar).to_have_text(re.compile(r"^1 new job"), timeout=15_000)
    bar.click()
    expect(page.locator("#result_list tbody tr").first).to_contain_text(str(new.pk)[:8])
    expect(page.locator(f'input[name="_selected_action"][value="{first.pk}"]')).to_be_checked()
    assert page.evaluate("window.__notReloaded === true")
    # And the action bar counts the inserted row: selecting it, select-all, clearing
    counter = page.locator("span.action-counter")
    expect(counter).to_have_text("1 of 2 selected")
    page.check(f'input[name="_selected_action"][value="{new.pk}"]')
    expect(counter).to_have_text("2 of 2 selected")
    expect(page.locator("#action-toggle")).to_be_checked()
    page.uncheck(f'input[name="_selected_action"][value="{first.pk}"]')
    expect(counter).to_have_text("1 of 2 selected")
    expect(page.locator("#action-toggle")).not_to_be_checked()
    page.check("#action-toggle")
    expect(counter).to_have_text("2 of 2 selected")
    expect(page.locator(f'input[name="_selected_action"][value="{new.pk}"]')).to_be_checked()
    page.uncheck("#action-toggle")
    expect(counter).to_have_text("0 of 2 selected")
    expect(page.locator(f'input[name="_selected_action"][value="{new.pk}"]')).not_to_be_checked()
    page.check(f'input[name="_selected_action"][value="{first.pk}"]')
    # And the live toggle stops it: a third job is not announced
    page.uncheck("#jobs-live-toggle")
    enqueue("test_noop", payload={"token": "third"}, trigger="command")
    page.wait_for_timeout(6_000)  # longer than one refresh interval: nothing may arrive
    expect(page.locator("#jobs-new-bar")).to_be_hidden()
    page.check("#jobs-live-toggle")
    expect(bar).to_have_text(re.compile(r"^1 new job"), timeout=15_000)


def test_retry_now_runs_a_retrying_job_within_2_seconds(
    page, live_server, start_worker, redis_conn
):
    # Given a job waiting 300 s for its retry
    start_worker()
    token = uuid.uuid4().hex
    job = enqueue("test_long_backoff", payload={"token": token}, trigger="admin")
    wait_until(lambda: Job.objects.get(pk=job.pk).state == JobState.RETRYING, timeout=60)
    page.goto(f"{live_server.url}/admin/jobs/job/{job.pk}/change/")
    expect(page.locator(".jobs-header")).to_contain_text("Retrying")
    expect(page.locator(".jobs-attempt-error[open]")).to_have_count(1)  # the newest, open
    screenshot(page, "job-page-retrying.png")
    # When the operator presses Retry now
    page.locator("#job-retry-now").click()
    pressed = time.monotonic()
    # Then it completes within 2 s
    wait_until(lambda: Job.objects.get(pk=job.pk).state == JobState.COMPLETED, timeout=2)
    assert time.monotonic() - pressed < 2
    expect(page.locator(".messagelist")).to_contain_text("runs now")


def _sideways_overflow(tab) -> list:
    """Each scrolling box (the page, the results table's wrapper) wider than it shows."""
    return tab.evaluate(
        "[document.documentElement, ...document.querySelectorAll('.results')]"
        ".filter(e => e.scrollWidth > e.clientWidth)"
        ".map(e => [e.className || e.tagName, e.scrollWidth, e.clientWidth,"
        " [...document.querySelectorAll('#result_list thead th')]"
        ".map(th => th.className.replace('column-', '') + ':' + th.offsetWidth).join(' ')])"
    )


def test_no_horizontal_scroll_at_1366_on_the_jobs_and_bundle_lists(
    chromium, page, live_server, start_worker
):
    # Given a realistic list: long names, an error, a merged fan-out
    start_worker()
    for i in range(3):
        make_bundle(name=f"Weekend camping starter kit with a rather long name {i}")
    enqueue("test_flaky", payload={"token": uuid.uuid4().hex, "fail_times": 9}, trigger="admin")
    wait_until(lambda: not Job.objects.filter(state__in=["pending", "running"]).exists(), 60)
    # and the longest kinds and targets the list shows (ledger rows, as the runner leaves them)
    for kind, label, message in (
        ("consistency_check", "Weekend camping starter kit with a rather long name 0", "Checked"),
        ("recompute_batch", "Recompute 500 bundles", "500 recomputed, 498 changed"),
    ):
        Job.objects.create(
            queue="bundle-recompute",
            kind=kind,
            trigger="signal",
            state=JobState.COMPLETED,
            target_type="bundle",
            target_label=label,
            progress=100,
            progress_message=message,
            attempts=1,
            max_attempts=3,
        )
    for scheme in ("light", "dark"):
        context = chromium.new_context(
            viewport=LAPTOP, color_scheme=scheme, storage_state=page.context.storage_state()
        )
        tab = context.new_page()
        outside = only_local_requests(tab)
        for url, name in (("/admin/jobs/job/", "jobs-list"), ("/admin/bundles/bundle/", "bundles")):
            tab.goto(live_server.url + url)
            expect(tab.locator("#result_list")).to_be_visible()
            screenshot(tab, f"{name}-1366-{scheme}.png")
            overflow = _sideways_overflow(tab)
            assert not overflow, f"{url} scrolls sideways ({scheme}): {overflow}"
        assert outside == []
        context.close()


CONTRAST = """
() => {
  function rgb(s) { const m = s.match(/[\\d.]+/g).map(Number); return m; }
  function lum(c) {
    const [r, g, b] = c.slice(0, 3).map(v => {
      v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  }
  return [...document.querySelectorAll('.job-state, .job-pill:not([hidden])')].map(el => {
    const st = getComputedStyle(el);
    const fg = lum(rgb(st.color)), bg = lum(rgb(st.backgroundColor));
    const ratio = (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05);
    const name = el.classList.contains('job-pill') ? 'pill ' + el.textContent.trim() : null;
    return {state: name || el.dataset.state || el.textContent.trim(),
            ratio: Math.round(ratio * 100) / 100};
  });
}
"""


def test_every_state_badge_has_at_least_4_5_to_1_contrast_in_light_and_dark(
    chromium, page, live_server
):
    # Given one job in every state
    for state in JobState.values:
        job = enqueue("test_noop", payload={"state": state}, trigger="admin")
        Job.objects.filter(pk=job.pk).update(state=state)
    for scheme in ("light", "dark"):
        context = chromium.new_context(
            viewport=LAPTOP, color_scheme=scheme, storage_state=page.context.storage_state()
        )
        tab = context.new_page()
        tab.goto(f"{live_server.url}/admin/jobs/job/")
        badges = tab.evaluate(CONTRAST)
        # Then each state is shown and readable
        assert {b["state"] for b in badges} >= set(JobState.values), badges
        assert any(b["state"].startswith("pill ") for b in badges), badges  # the strip's pills
        low = [b for b in badges if b["ratio"] < 4.5]
        assert not low, f"{scheme}: {low}"
        context.close()
