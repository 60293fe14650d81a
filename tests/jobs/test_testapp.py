"""The jobs app serves an app it has never heard of: tests/jobs_testapp (installed only by the
test settings) registers its own job kind, target type and request function, and its jobs show
in System → Jobs and GraphQL with a working link and filter."""

from __future__ import annotations

import pytest
from django.urls import reverse

from jobs.models import JobState
from jobs.request_functions import get_request
from jobs.runner import run_inline
from tests.admin.conftest import client_for
from tests.api.conftest import ALL_PERMS, make_user, post_graphql
from tests.jobs_testapp.models import Widget

JOBS_OF_TARGET = """
query($type: String, $id: ID) {
  jobs(targetType: $type, targetId: $id) { totalCount edges { node { id kind targetType } } }
}
"""
JOBS_OF_WIDGET = "query($id: ID) { jobs(widgetId: $id) { totalCount } }"
JOBS_MATCHING = "query($term: String) { jobs(search: $term) { totalCount } }"


@pytest.fixture
def widgets(db):
    return [Widget.objects.create(name=name) for name in ("Sprocket", "Gizmo", "Doohickey")]


@pytest.fixture
def polish_job(widgets):
    # Asked for through the app's own request function, as a schedule would name it.
    return get_request("testapp.polish").call(
        {"widget_ids": [widgets[0].pk, widgets[1].pk]}, trigger="admin"
    )


@pytest.mark.django_db
def test_the_test_apps_job_runs_through_the_one_runner(polish_job, widgets):
    job = run_inline(polish_job)
    assert job.state == JobState.COMPLETED
    assert job.result == {"polished": 2}
    assert [w.polished for w in Widget.objects.order_by("pk")] == [1, 1, 0]


@pytest.mark.django_db
def test_its_jobs_show_in_system_jobs_with_a_working_link_to_each_target(polish_job, widgets):
    admin = client_for(make_user("boss", superuser=True))
    # Given the jobs list filtered to one widget (the link table finds the job)
    page = admin.get(
        reverse("admin:jobs_job_changelist"),
        {"target_type": "widget", "target_id": str(widgets[1].pk)},
    )
    assert page.status_code == 200
    assert str(polish_job.pk)[:8] in page.content.decode()
    # and not when filtered to a widget it never touched
    other = admin.get(
        reverse("admin:jobs_job_changelist"),
        {"target_type": "widget", "target_id": str(widgets[2].pk)},
    )
    assert str(polish_job.pk)[:8] not in other.content.decode()
    # The search box finds it by a widget's name (the target type's search)
    found = admin.get(reverse("admin:jobs_job_changelist"), {"q": "gizmo"})
    assert str(polish_job.pk)[:8] in found.content.decode()
    # The job page links every widget to its admin page, and the link works
    detail = admin.get(reverse("admin:jobs_job_change", args=[polish_job.pk]))
    assert detail.status_code == 200
    url = reverse("admin:jobs_testapp_widget_change", args=[widgets[0].pk])
    assert url in detail.content.decode()
    assert admin.get(url).status_code == 200


@pytest.mark.django_db
def test_graphql_filters_its_jobs_by_target_type_and_id_and_by_its_own_argument(
    client, polish_job, widgets
):
    client.force_login(make_user("operator", perms=ALL_PERMS))
    first, _second, untouched = (str(w.pk) for w in widgets)

    linked = post_graphql(client, JOBS_OF_TARGET, {"type": "widget", "id": first})
    assert not linked.errors, linked.errors
    assert linked.data["jobs"]["totalCount"] == 1
    node = linked.data["jobs"]["edges"][0]["node"]
    assert (node["id"], node["kind"], node["targetType"]) == (
        str(polish_job.pk),
        "widget_polish",
        "widget",
    )
    none = post_graphql(client, JOBS_OF_TARGET, {"type": "widget", "id": untouched})
    assert none.data["jobs"]["totalCount"] == 0
    assert post_graphql(client, JOBS_OF_WIDGET, {"id": first}).data["jobs"]["totalCount"] == 1
    assert post_graphql(client, JOBS_MATCHING, {"term": "Sprocket"}).data["jobs"]["totalCount"] == 1


@pytest.mark.django_db
def test_graphql_refuses_an_unknown_target_type_naming_the_known_ones(client):
    client.force_login(make_user("operator", perms=ALL_PERMS))
    response = post_graphql(client, JOBS_OF_TARGET, {"type": "gadget", "id": "1"})
    assert response.codes == ["BAD_USER_INPUT"]
    assert "widget" in response.errors[0]["message"] and "bundle" in response.errors[0]["message"]
