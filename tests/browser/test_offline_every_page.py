"""Offline, every page: each admin page the URLconf and the admin registry know of, and each
action's answer page, loads in Chromium with every request to a host other than 127.0.0.1
refused — one such request, a CSP violation or a script error fails the test.

The pages are discovered, not listed: every URL pattern of ``admin.site`` (index, app lists,
each registered model's changelist, add, change, history and delete pages, and every custom
view a ModelAdmin adds in ``get_urls`` — System → Jobs' workers, schedules, confirmations…),
with path values taken from real rows. A pattern whose values this file cannot fill fails
the test, so a new page is covered or noticed.
"""

from __future__ import annotations

import re

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group, User
from django.test import Client
from django.urls import URLPattern, URLResolver
from django.utils import timezone

from api.services import api_token_create
from jobs import conf
from jobs.enqueue import enqueue
from jobs.models import Job, JobTrigger, Schedule
from jobs.quick_actions import quick_actions
from tests.browser.conftest import assert_no_violation
from tests.factories import make_bundle

pytestmark = [pytest.mark.browser, pytest.mark.redis, pytest.mark.django_db(transaction=True)]

# Patterns that are no page to look at, each for a reason.
NOT_PAGES = {
    "(?P<url>.*)$": "the admin's catch-all 404",
    "r/<path:content_type_id>/<path:object_id>/": "view on site: a redirect to the public site",
    "logout/": "POST only, and it would end the session the other pages need",
    "jsi18n/": "a script, loaded by every page anyway",
    "autocomplete/": "JSON for select widgets, loaded by the forms that use it",
}
# A POST-only button (Retry, Run now, Pause…) answers a GET with 405, and a page refused to a
# superuser on purpose (no "add" for jobs: they come from enqueue) with 403: nothing to render.
NO_PAGE = (403, 405)

_PARAM = re.compile(r"<(?:(\w+):)?(\w+)>|\(\?P<(\w+)>([^)]*)\)")


def _walk(patterns, prefix=""):
    for p in patterns:
        if isinstance(p, URLResolver):
            yield from _walk(p.url_patterns, prefix + str(p.pattern))
        elif isinstance(p, URLPattern):
            yield prefix + str(p.pattern)


def _model_admin(route: str):
    for model, model_admin in admin.site._registry.items():
        if route.startswith(f"{model._meta.app_label}/{model._meta.model_name}/"):
            return model, model_admin
    return None, None


def _candidates(route: str, name: str, alternatives: str | None) -> list[str]:
    """Real values for one path parameter of ``route``."""
    if alternatives:  # ^(?P<app_label>auth|jobs|…)/$
        return alternatives.split("|")
    model, _ = _model_admin(route)
    if name in ("object_id", "pk", "id") and model is not None:
        obj = model._default_manager.order_by("pk").first()
        assert obj is not None, f"no {model._meta.label} row to open {route}"
        return [str(obj.pk)]
    if name == "how":
        return ["retry", "cancel", "discard", "pause", "resume"]
    if name == "queue":
        return conf.job_queues()[:1]
    if name == "fingerprint":  # an error group's key (an empty group still has its page)
        return ["0" * 16]
    if name == "slug":
        return [a.slug for a in quick_actions(user=User.objects.get(username="operator"))][:1]
    raise AssertionError(f"{route}: no sample value for <{name}>: add one to _candidates")


def _urls(route: str) -> list[str]:
    urls = [route.lstrip("^").rstrip("$")]
    for match in _PARAM.finditer(route):
        name = match.group(2) or match.group(3)
        values = _candidates(route, name, match.group(4))
        urls = [u.replace(match.group(0), v, 1) for u in urls for v in values]
    return ["/admin/" + u for u in urls]


def every_admin_page(client: Client) -> tuple[list[str], dict[str, int]]:
    """(pages to open, every probed URL -> status). Each route must answer one of its URLs
    with a page (200, or a redirect to one), as a button (405) or refused (403); none may
    answer 500."""
    pages, statuses = [], {}
    for route in sorted(set(_walk(admin.site.urls[0]))):
        if route in NOT_PAGES:
            continue
        answered = False
        for url in _urls(route):
            status = client.get(url).status_code
            statuses[url] = status
            assert status < 500, f"{url} answered {status}"
            if status in (200, 302):
                pages.append(url)
            answered |= status in (200, 302, *NO_PAGE)
        assert answered, f"{route}: none of its URLs is a page: {statuses}"
    return pages, statuses


@pytest.fixture
def one_of_everything(admin_user):
    """At least one row of every registered model, so every change page has one to show."""
    from axes.models import AccessAttempt, AccessFailureLog, AccessLog

    from tests.jobs_testapp.models import Widget

    bundle = make_bundle(name="Offline kit")
    job = enqueue("recompute", payload={"bundle_id": bundle.pk}, trigger=JobTrigger.COMMAND)
    Group.objects.create(name="Operators")
    api_token_create(username="operator", name="offline")
    Widget.objects.create(name="Offline widget")
    now = timezone.now()
    AccessAttempt.objects.create(
        username="x", ip_address="127.0.0.1", user_agent="t", failures_since_start=1
    )
    AccessLog.objects.create(username="operator", ip_address="127.0.0.1", user_agent="t")
    AccessFailureLog.objects.create(
        username="x", ip_address="127.0.0.1", user_agent="t", attempt_time=now
    )
    assert Schedule.objects.exists()  # the default schedules (tests/conftest.py)
    # The default alert rules come from a data migration, which a transactional test's flush
    # removes: put them back so System → Alerts has its rows.
    from jobs.alerts.defaults import load_defaults

    load_defaults()
    missing = [m._meta.label for m in admin.site._registry if not m._default_manager.exists()]
    assert not missing, f"give these a row here: {missing}"
    return job


def test_every_admin_page_loads_nothing_from_outside(guarded, one_of_everything, live_server):
    tab, base = guarded
    client = Client(raise_request_exception=False)
    client.force_login(User.objects.get(username="operator"))
    pages, statuses = every_admin_page(client)

    # The pages that matter most are among those found (a sign the discovery works).
    job = one_of_everything
    for must in (
        "/admin/",
        "/admin/jobs/job/",
        f"/admin/jobs/job/{job.pk}/change/",
        "/admin/jobs/job/workers/",
        "/admin/jobs/schedule/",
        "/admin/jobs/job/matching/cancel/",
        f"/admin/jobs/job/{job.pk}/cancel/",
        "/admin/bundles/bundle/",
        "/admin/bundles/bundle/add/",
    ):
        assert must in pages, must
    for model in admin.site._registry:
        changelist = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
        assert changelist in pages, changelist

    opened = []
    for url in pages:
        response = tab.goto(base + url)
        assert response is not None and response.status == 200, (url, response and response.status)
        tab.wait_for_load_state("networkidle")
        assert_no_violation(tab)
        opened.append(url)
    print(f"\n{len(opened)} admin pages opened offline ({len(statuses)} URLs probed)")
    # ``guarded`` fails the test at teardown on any outside request or script error.


def test_every_action_answer_page_loads_nothing_from_outside(
    guarded, one_of_everything, live_server
):
    """Each changelist action run on one row: its confirmation (delete, stop running jobs…) or
    the list it returns to, with its message."""
    tab, base = guarded
    ran = []
    for model in list(admin.site._registry):
        changelist = f"{base}/admin/{model._meta.app_label}/{model._meta.model_name}/"
        tab.goto(changelist)
        names = tab.locator('select[name="action"] option').evaluate_all(
            "options => options.map(o => o.value).filter(Boolean)"
        )
        for name in names:
            tab.goto(changelist)
            boxes = tab.locator('input[name="_selected_action"]')
            if boxes.count() == 0:
                break  # an earlier action (delete…) left nothing to select
            boxes.first.check()
            tab.select_option('select[name="action"]', name)
            with tab.expect_navigation():
                tab.click('button[name="index"]')
            tab.wait_for_load_state("networkidle")
            assert tab.locator("#site-name").count() == 1, f"{model._meta.label} {name}"
            assert_no_violation(tab)
            ran.append(f"{model._meta.label}.{name}")
    assert "jobs.Job.cancel_selected" in ran and "bundles.Bundle.recompute_selected" in ran, ran
    assert Job.objects.exists()
    print(f"\n{len(ran)} action answers opened offline: {', '.join(ran)}")
