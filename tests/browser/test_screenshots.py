"""Screenshots to look at: System → Jobs (list, a failed job's page, a fan-out's page with its
batches), Workers, Schedules, the bundle list and a bundle's page — light and dark, at 1366 and
1440 px wide — saved under artifacts/ (``screens-<page>-<width>-<scheme>.png``). Each page is
also checked for what a look would catch: no sideways scroll, nothing from outside."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from bundles.models import ProductVariant
from jobs.enqueue import enqueue
from jobs.models import SETTLED_STATES, Job, JobState
from jobs.selectors import workers
from tests.browser.conftest import screenshot, wait_until
from tests.browser.test_dashboard import _sideways_overflow
from tests.factories import make_bundle, make_variant

pytestmark = [pytest.mark.browser, pytest.mark.redis, pytest.mark.django_db(transaction=True)]

WIDTHS = (1366, 1440)


def test_screenshots_of_every_dashboard_page_light_and_dark(
    chromium, page, live_server, start_worker, settings
):
    # Given some history: long bundle names, a fan-out with its batches, a job that failed
    settings.BUNDLES_FANOUT_DEBOUNCE_SECONDS = 0
    worker = start_worker()
    battery = make_variant(price="10.00", sku="BATT-LONG-0001")
    bundles = [
        make_bundle(
            components=[(battery, i + 1), (make_variant(), 1)],
            name=f"Weekend camping starter kit with a rather long name {i}",
        )
        for i in range(4)
    ]
    variant = ProductVariant.objects.get(pk=battery.pk)
    variant.price = Decimal("11.50")
    variant.save()
    failing = enqueue(
        "test_flaky", payload={"token": uuid.uuid4().hex, "fail_times": 9}, trigger="admin"
    )
    wait_until(lambda: Job.objects.get(pk=failing.pk).state == JobState.FAILED, timeout=90)
    wait_until(lambda: not Job.objects.exclude(state__in=SETTLED_STATES).exists(), timeout=90)
    wait_until(lambda: worker.pid in {w.pid for w in workers() or []}, timeout=30)
    fanout = Job.objects.filter(kind="fanout").latest("created_at")
    pages = {
        "jobs-list": "/admin/jobs/job/",
        "job-failed": f"/admin/jobs/job/{failing.pk}/change/",
        "job-fanout": f"/admin/jobs/job/{fanout.pk}/change/",
        "workers": "/admin/jobs/job/workers/",
        "schedules": "/admin/jobs/schedule/",
        "bundles": "/admin/bundles/bundle/",
        "bundle": f"/admin/bundles/bundle/{bundles[0].pk}/change/",
    }
    saved = []
    for scheme in ("light", "dark"):
        for width in WIDTHS:
            context = chromium.new_context(
                viewport={"width": width, "height": 900},
                color_scheme=scheme,
                storage_state=page.context.storage_state(),
            )
            tab = context.new_page()
            for name, url in pages.items():
                tab.goto(live_server.url + url)
                expect(tab.locator("#content")).to_be_visible()
                tab.wait_for_timeout(1_200)  # relative times have ticked
                if name.startswith("job-"):  # the compact header keeps to one row
                    tops = tab.evaluate(
                        "[...document.querySelectorAll('.jobs-header dl > div')]"
                        ".map(d => d.offsetTop)"
                    )
                    assert len(set(tops)) == 1, f"{name} header wraps at {width}: {tops}"
                overflow = _sideways_overflow(tab)
                assert not overflow, f"{name} scrolls sideways at {width} ({scheme}): {overflow}"
                saved.append(screenshot(tab, f"screens-{name}-{width}-{scheme}.png"))
            context.close()
    assert len(saved) == len(pages) * len(WIDTHS) * 2
    assert all(p.stat().st_size > 10_000 for p in saved)
