"""Every admin page an operator opens fits a 1366×768 laptop with Django admin's navigation
sidebar open (its default), in light and in dark mode: the document never scrolls sideways, and
no results table hides columns behind its own scrollbar. A screenshot of each page, light and
dark, is saved under artifacts/ (``fits-<page>-<scheme>.png``) to be looked at.

The data is what an operator sees on a working day: long bundle names, bundles in USD, EUR and
JPY, a broken bundle, shell variants among the real ones, a failed job with its error group.
"""

from __future__ import annotations

import re
import uuid
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from bundles import services
from bundles.models import Bundle, ProductVariant
from jobs.alerts.defaults import load_defaults
from jobs.enqueue import enqueue
from jobs.models import Job, JobState, Schedule
from tests.browser.conftest import screenshot
from tests.bundles.jobs_support import run_burst_worker
from tests.factories import make_bundle, make_variant

pytestmark = [pytest.mark.browser, pytest.mark.redis, pytest.mark.django_db(transaction=True)]

LAPTOP = {"width": 1366, "height": 768}
SCHEMES = ("light", "dark")
# Django remembers a collapsed sidebar in localStorage; make sure none is remembered.
SIDEBAR_OPEN = "localStorage.setItem('django.admin.navSidebarIsOpen', 'true');"

# name -> (path template, whether the nav sidebar belongs on it, xfail reason or "")
PAGES = {
    # The admin index is the sidebar's own content: Django shows no sidebar there.
    "index": ("/admin/", False, ""),
    "jobs-list": ("/admin/jobs/job/", True, ""),
    "job": ("/admin/jobs/job/{job}/change/", True, ""),
    "workers": ("/admin/jobs/job/workers/", True, ""),
    "errors": ("/admin/jobs/job/errors/", True, ""),
    "schedules": ("/admin/jobs/schedule/", True, ""),
    "schedule": ("/admin/jobs/schedule/{schedule}/change/", True, ""),
    "alerts": ("/admin/jobs/alertrule/", True, ""),
    "bundles": ("/admin/bundles/bundle/", True, ""),
    "bundle": ("/admin/bundles/bundle/{bundle}/change/", True, ""),
    "variants": ("/admin/bundles/productvariant/", True, ""),
    "variant": ("/admin/bundles/productvariant/{variant}/change/", True, ""),
    "products": ("/admin/bundles/product/", True, ""),
}

# Each box that scrolls sideways: the document, and a changelist's results wrapper (which
# would hide the last columns behind its own scrollbar while the page itself fits).
OVERFLOW = """
() => {
  const doc = document.documentElement;
  const out = [];
  if (doc.scrollWidth > window.innerWidth) out.push(['document', doc.scrollWidth, innerWidth]);
  for (const e of document.querySelectorAll('.results')) {
    if (e.scrollWidth > e.clientWidth) out.push(['.results', e.scrollWidth, e.clientWidth,
      [...e.querySelectorAll('thead th')].map(th =>
        th.className.replace('column-', '') + ':' + th.offsetWidth).join(' ')]);
  }
  return out;
}
"""


@pytest.fixture
def working_day(admin_user, settings):
    """The rows the pages show, settled by an in-process worker: {placeholder: pk}."""
    settings.BUNDLES_FANOUT_DEBOUNCE_SECONDS = 0
    battery = make_variant(name="AA battery, pack of 4", sku="BATT-AA-0004", price="4.99")
    lamp = make_variant(name="Head lamp with red light", sku="LAMP-HEAD-0001", price="24.50")
    bundles = [
        make_bundle(
            components=[(battery, i + 1), (lamp, 1)],
            name=f"Weekend camping starter kit with a rather long name {i}",
            pricing_rule="percent_off",
            rule_value="12.5",
        )
        for i in range(6)
    ]
    euro = [make_variant(currency="EUR", price="12.50"), make_variant(currency="EUR", price="3")]
    make_bundle(
        components=[(euro[0], 2), (euro[1], 1)],
        name="Kit de randonnée pour deux personnes",
        currency="EUR",
        pricing_rule="amount_off",
        rule_value="2.5",
    )
    yen = [make_variant(currency="JPY", price="1500"), make_variant(currency="JPY", price="980")]
    make_bundle(
        components=[(yen[0], 1), (yen[1], 3)],
        name="Tea ceremony set",
        currency="JPY",
        pricing_rule="fixed_price",
        rule_value="3000",
    )
    fragile = make_variant(sku="GLASS-0001", price="7.25")
    make_bundle(components=[(fragile, 1), (battery, 2)], name="Lantern kit (broken)")
    services.variant_soft_delete(variant_id=fragile.pk)  # its bundle breaks on the recompute
    variant = ProductVariant.objects.get(pk=battery.pk)
    variant.price = Decimal("5.49")
    variant.save()  # a fan-out over every bundle using it
    failed = enqueue("test_always_fails", payload={"token": uuid.uuid4().hex}, trigger="admin")
    run_burst_worker()
    assert Job.objects.get(pk=failed.pk).state == JobState.FAILED
    assert Bundle.objects.filter(status=Bundle.Status.BROKEN).exists()
    load_defaults()  # System → Alerts' default rules (the flush between tests removed them)
    fanout = Job.objects.filter(kind="fanout").latest("created_at")
    schedule = Schedule.objects.order_by("pk").first()  # the defaults (tests/conftest.py)
    assert schedule is not None
    return {
        "job": fanout.pk,
        "schedule": schedule.pk,
        "bundle": bundles[0].pk,
        "variant": battery.pk,
    }


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(name, marks=pytest.mark.xfail(strict=False, reason=reason)) if reason else name
        for name, (_path, _sidebar, reason) in PAGES.items()
    ],
)
def test_the_page_fits_1366_with_the_sidebar_open_light_and_dark(
    name, chromium, page, live_server, working_day
):
    path, has_sidebar, _reason = PAGES[name]
    url = live_server.url + path.format(**working_day)
    problems = []
    for scheme in SCHEMES:
        # Given a laptop-sized window with the admin's sidebar open
        context = chromium.new_context(
            viewport=LAPTOP, color_scheme=scheme, storage_state=page.context.storage_state()
        )
        context.add_init_script(SIDEBAR_OPEN)
        tab = context.new_page()
        # When the page is opened
        response = tab.goto(url)
        assert response is not None and response.status == 200, (url, response and response.status)
        expect(tab.locator("#content")).to_be_visible()
        tab.wait_for_load_state("networkidle")
        if has_sidebar:
            expect(tab.locator("#nav-sidebar")).to_be_visible()
            expect(tab.locator("#main")).to_have_class(re.compile(r"\bshifted\b"))
        screenshot(tab, f"fits-{name}-{scheme}.png")
        # Then nothing scrolls sideways
        overflow = tab.evaluate(OVERFLOW)
        if overflow:
            problems.append(f"{scheme}: {overflow}")
        context.close()
    assert not problems, f"{name} ({path}) scrolls sideways at 1366 with the sidebar: {problems}"
