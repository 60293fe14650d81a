"""The jobs screens at 1366×768 with the admin's nav sidebar open (Django's default), light and
dark: System → Jobs shows at least 8 job rows on its first screen, a ``?caused_by=`` link's job
is in view, the job page's header cells never clip, Workers / Schedules / a schedule's page do
not scroll sideways, and "Run now" works on the first and the last schedule row. Screenshots of
the first screen of each page go to artifacts/ (``jobs-screen-<page>-<scheme>.png``)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from jobs.models import Job, JobState, Schedule
from jobs.pause import set_paused
from jobs.scheduling.store import schedule_create
from tests.browser.conftest import ARTIFACTS
from tests.factories import make_bundle

pytestmark = [pytest.mark.browser, pytest.mark.redis, pytest.mark.django_db(transaction=True)]

LAPTOP = {"width": 1366, "height": 768}

ROWS_IN_VIEW = """
() => [...document.querySelectorAll('#result_list tbody tr')].filter(tr => {
  const r = tr.getBoundingClientRect();
  return r.top >= 0 && r.bottom <= window.innerHeight && r.left >= 0
    && r.right <= window.innerWidth;
}).length
"""

CLIPPED_HEADER_CELLS = """
() => [...document.querySelectorAll('.jobs-header dl > div, .jobs-header dd')]
  .filter(e => e.scrollWidth > e.clientWidth)
  .map(e => e.textContent.trim().replace(/\\s+/g, ' '))
"""

HEADER_ROWS = "[...document.querySelectorAll('.jobs-header dl > div')].map(d => d.offsetTop)"


def _laptop(chromium, page, scheme: str):
    context = chromium.new_context(
        viewport=LAPTOP, color_scheme=scheme, storage_state=page.context.storage_state()
    )
    return context, context.new_page()


def _fits(tab, name: str) -> list[str]:
    expect(tab.locator("#nav-sidebar")).to_be_visible()  # the sidebar is open, as by default
    width = tab.evaluate("document.documentElement.scrollWidth")
    problems = [f"{name} scrolls sideways: {width}"] if width > LAPTOP["width"] else []
    # nor does a results table inside its own box (Django's .results scrolls, cutting columns)
    cut = tab.evaluate(
        "[...document.querySelectorAll('.results')].filter(e => e.scrollWidth > e.clientWidth)"
        ".map(e => e.scrollWidth + ' > ' + e.clientWidth + ' '"
        " + [...e.querySelectorAll('thead th')]"
        ".map(t => t.className + ':' + t.offsetWidth).join(' '))"
    )
    return problems + ([f"{name} cuts its table: {cut}"] if cut else [])


def _shot(tab, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    tab.screenshot(path=str(ARTIFACTS / f"jobs-screen-{name}.png"))


def _history() -> dict:
    bundle = make_bundle(name="Weekend camping starter kit with a rather long name")
    now = timezone.now()
    common = {"trigger": "signal", "attempts": 1, "max_attempts": 3}
    for i in range(24):
        Job.objects.create(
            queue="bundle-recompute",
            kind="recompute_bundle",
            state=JobState.COMPLETED,
            target_type="bundle",
            target_id=str(bundle.pk),
            target_label=bundle.name,
            progress=100,
            progress_message="Recomputed",
            started_at=now - timedelta(seconds=30 + i),
            settled_at=now - timedelta(seconds=29 + i),
            **common,
        )
    parent = Job.objects.create(
        queue="bundle-recompute",
        kind="bulk_recompute",
        state=JobState.COMPLETED,
        target_label="Recompute 500 bundles",
        progress=100,
        progress_message="10/10 batches",
        started_at=now - timedelta(seconds=20),
        settled_at=now - timedelta(seconds=5),
        **common,
    )
    failed = Job.objects.create(
        queue="bundle-recompute",
        kind="recompute_batch",
        state=JobState.FAILED,
        parent=parent,
        target_label="Recompute 500 bundles, batch 3 of 10",
        errors=[{"attempt": 1, "error": "ValueError: boom", "at": now.isoformat()}],
        started_at=now - timedelta(seconds=15),
        settled_at=now - timedelta(seconds=10),
        **common,
    )
    set_paused("bundle-reindex", True)
    waiting = Job.objects.create(
        queue="bundle-reindex",
        kind="reindex_bundle",
        state=JobState.PENDING,
        target_type="bundle",
        target_id=str(bundle.pk),
        target_label=bundle.name,
        trigger="admin",
        attempts=0,
        max_attempts=3,
    )
    return {"bundle": bundle, "parent": parent, "failed": failed, "waiting": waiting}


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_jobs_screens_fit_a_laptop_with_the_sidebar_open(chromium, page, live_server, scheme):
    jobs = _history()
    context, tab = _laptop(chromium, page, scheme)
    schedule = Schedule.objects.order_by("name").first()
    pages = {
        "jobs-list": "/admin/jobs/job/",
        "job-parent": f"/admin/jobs/job/{jobs['parent'].pk}/change/",
        "job-failed": f"/admin/jobs/job/{jobs['failed'].pk}/change/",
        "job-paused": f"/admin/jobs/job/{jobs['waiting'].pk}/change/",
        "workers": "/admin/jobs/job/workers/",
        "schedules": "/admin/jobs/schedule/",
        "schedule": f"/admin/jobs/schedule/{schedule.pk}/change/",
        "errors": "/admin/jobs/job/errors/",
    }
    problems: list[str] = []  # every page is looked at (and shot) before the verdict
    for name, url in pages.items():
        tab.goto(live_server.url + url)
        expect(tab.locator("#content")).to_be_visible()
        _shot(tab, f"{name}-{scheme}")
        problems += _fits(tab, name)
        if name.startswith("job-") and (clipped := tab.evaluate(CLIPPED_HEADER_CELLS)):
            problems.append(f"{name} header cells clip: {clipped}")
        if name.startswith("job-") and len(set(tab.evaluate(HEADER_ROWS))) != 1:
            problems.append(f"{name} header wraps to a second row")
        if name == "jobs-list":
            expect(tab.locator("#searchbar")).to_be_in_viewport()
            if (rows := tab.evaluate(ROWS_IN_VIEW)) < 8:
                problems.append(f"only {rows} job rows on the first screen")
    context.close()
    assert problems == [], problems


def test_run_now_works_on_the_first_and_the_last_schedule_row(page, live_server):
    # Given System → Schedules: the default ones (the first queues a consistency check) and,
    # last, one that queues a job too (the default last one, relay-and-reconcile, runs inline)
    schedule_create(user=None, name="probe-noop", cron="0 0 * * *", request="tests.noop")
    names = list(Schedule.objects.order_by("name").values_list("name", flat=True))
    for row in ("first", "last"):
        page.goto(live_server.url + "/admin/jobs/schedule/")
        rows = page.locator("#result_list tbody tr")
        expect(rows).to_have_count(len(names))
        target = rows.first if row == "first" else rows.last
        name = next(n for n in names if n in target.inner_text())
        before = Job.objects.filter(schedule_id=name).count()
        # When its "Run now" is clicked
        target.get_by_role("button", name="Run now").click()
        # Then the admin says so and a job of that schedule exists
        expect(page.locator(".messagelist")).to_contain_text(f"Run {name}: 1 job queued")
        assert Job.objects.filter(schedule_id=name).count() == before + 1, row


def test_a_save_messages_jobs_link_shows_the_job_on_the_first_screen(chromium, page, live_server):
    # Given a busy ledger and a bundle
    jobs = _history()
    before = set(Job.objects.values_list("pk", flat=True))
    context, tab = _laptop(chromium, page, "light")
    # When the operator recomputes the bundle from its list and follows the answer's link
    tab.goto(live_server.url + "/admin/bundles/bundle/")
    tab.locator(f"input.action-select[value='{jobs['bundle'].pk}']").check()
    tab.select_option("select[name=action]", "recompute_selected")
    tab.get_by_role("button", name="Go").click()
    tab.locator(".messagelist a", has_text="System → Jobs").click()
    # Then the job it queued is a row fully inside the viewport, nothing to scroll
    queued = Job.objects.exclude(pk__in=before).earliest("created_at")
    row = tab.locator("#result_list tbody tr", has_text=str(queued.pk)[:8])
    expect(row).to_be_in_viewport(ratio=1)
    assert tab.evaluate("window.scrollY") == 0
    _shot(tab, "jobs-caused-by-light")
    context.close()
