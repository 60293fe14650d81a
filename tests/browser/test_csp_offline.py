"""The admin, the jobs page's live refresh and GraphiQL under the Content-Security-Policy,
offline: any request to a host other than the test server's 127.0.0.1 fails the test, and so
does any CSP violation the browser reports."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest
from playwright.sync_api import expect

from jobs.enqueue import enqueue
from jobs.models import Job, JobState, JobTrigger
from tests.browser.conftest import assert_no_violation
from tests.factories import make_bundle

pytestmark = [
    pytest.mark.browser,
    pytest.mark.redis,
    pytest.mark.django_db(transaction=True),
]


def test_admin_pages_and_live_refresh_run_under_the_policy(guarded, start_worker):
    tab, base = guarded
    bundle = make_bundle(name="CSP kit")
    job = enqueue("recompute", payload={"bundle_id": bundle.pk}, trigger=JobTrigger.COMMAND)

    for path in (
        "/admin/",
        "/admin/bundles/bundle/",
        f"/admin/bundles/bundle/{bundle.pk}/change/",
        f"/admin/jobs/job/{job.pk}/change/",
    ):
        response = tab.goto(base + path)
        assert response.status == 200, path
        assert "Content-Security-Policy" in {k.title(): v for k, v in response.headers.items()}
        assert_no_violation(tab)

    # The jobs list refreshes itself: the pending row turns Completed with no reload.
    tab.goto(base + "/admin/jobs/job/")
    state = tab.locator(f'[data-live="state"][data-job-id="{job.pk}"]').first
    expect(state).to_have_text("Pending")
    start_worker()
    expect(state).to_have_text("Completed", timeout=30_000)
    assert Job.objects.get(pk=job.pk).state == JobState.COMPLETED
    assert_no_violation(tab)


def test_graphiql_renders_and_runs_a_query_offline(guarded):
    tab, base = guarded
    tab.goto(f"{base}/graphql/#query={quote('{ ping }')}")
    expect(tab.locator(".graphiql-container")).to_be_visible()

    def is_our_query(response) -> bool:
        return response.request.method == "POST" and "ping" in (response.request.post_data or "")

    with tab.expect_response(is_our_query) as answer:
        tab.locator(".graphiql-execute-button").click()
    assert json.loads(answer.value.body())["data"] == {"ping": "pong"}
    expect(tab.locator(".result-window")).to_contain_text('"pong"')
    assert_no_violation(tab)


def test_graphiql_opens_on_an_example_of_this_api_that_runs(guarded):
    """A first visit shows the project's example query (not GraphiQL's welcome text), and
    running it answers data, no errors: the example stays true to the schema."""
    tab, base = guarded
    tab.goto(f"{base}/graphql/")
    expect(tab.locator(".graphiql-container")).to_be_visible()
    editor = tab.locator(".graphiql-query-editor")
    expect(editor).to_contain_text("query Overview")
    expect(editor).not_to_contain_text("Welcome to GraphiQL")

    def is_overview(response) -> bool:
        return response.request.method == "POST" and "Overview" in (
            response.request.post_data or ""
        )

    with tab.expect_response(is_overview) as answer:
        tab.locator(".graphiql-execute-button").click()
    body = json.loads(answer.value.body())
    assert "errors" not in body, body
    assert {"jobQueues", "jobs"} <= set(body["data"])
    assert_no_violation(tab)
