"""The server errors found by probing (issue 11) and their kin, each answered with a clear 400,
404 or the admin's own message — and nothing changed. (test_fuzz_admin.py covers every route
with drawn values; these are the named cases, on whichever database the suite runs.)"""

from __future__ import annotations

import pytest
from django.contrib.contenttypes.models import ContentType
from django.test import Client

from bundles.models import Bundle
from jobs.models import Job, JobState
from tests.admin.conftest import failed_job
from tests.factories import make_bundle


@pytest.fixture
def staff(db, django_user_model):
    user = django_user_model.objects.create_superuser("guard", "g@example.com", "pw")
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize(
    "query",
    ["queue=%00", "trigger=%00", "kind=%00", "state=%00", "q=%00", "q=a%00b", "o=%00", "%00=1"],
)
def test_nul_bytes_in_the_jobs_list_query_are_a_400(staff, query):
    response = staff.get(f"/admin/jobs/job/?{query}")
    assert response.status_code == 400
    assert b"NUL character" in response.content


def test_nul_bytes_in_form_data_are_a_400_and_change_nothing(staff):
    bundle = make_bundle(name="Guarded kit")
    response = staff.post(
        f"/admin/bundles/bundle/{bundle.pk}/change/", {"name": "evil\x00name", "slug": "x"}
    )
    assert response.status_code == 400
    assert Bundle.objects.get(pk=bundle.pk).name == "Guarded kit"


@pytest.mark.parametrize("action", ["retry_selected", "cancel_selected", "delete_settled"])
def test_junk_ids_in_a_jobs_list_action_are_a_400_and_change_nothing(staff, action):
    job = failed_job()
    response = staff.post(
        "/admin/jobs/job/",
        {"action": action, "index": "0", "_selected_action": ["zzz", str(job.pk)]},
    )
    assert response.status_code == 400
    assert b"'zzz' is not the id of a job" in response.content
    job.refresh_from_db()
    assert job.state == JobState.FAILED and Job.objects.count() == 1


@pytest.mark.parametrize(
    "action", ["recompute_selected", "reindex_selected", "activate_selected", "archive_selected"]
)
def test_junk_ids_in_a_bundles_list_action_are_a_400_and_queue_nothing(staff, action):
    bundle = make_bundle(name="Guarded kit")
    jobs_before = Job.objects.count()
    for junk in ("zzz", "-1.5", "1e3", "99999999999999999999999"):
        response = staff.post(
            "/admin/bundles/bundle/",
            {"action": action, "index": "0", "_selected_action": [junk, str(bundle.pk)]},
        )
        assert response.status_code in {302, 400}, junk
    assert Job.objects.count() == jobs_before
    assert Bundle.objects.get(pk=bundle.pk).status == bundle.status


@pytest.mark.parametrize(
    "path",
    [
        "/admin/jobs/job/not-a-uuid/change/",
        "/admin/jobs/job/00000000-0000-0000-0000-00000000000g/change/",
        "/admin/bundles/bundle/zzz/change/",
        "/admin/bundles/bundle/99999999999999999999999/change/",
        "/admin/bundles/bundle/-1/delete/",
    ],
)
def test_malformed_ids_in_change_pages_answer_with_the_admins_message(staff, path):
    response = staff.get(path, follow=True)
    assert response.status_code == 200
    assert "doesn’t exist" in response.content.decode()


def test_view_on_site_for_a_model_without_an_admin_page_is_a_404(staff):
    # django-rq's dashboard model has no table: looking an object up in it was a 500.
    ct = ContentType.objects.get(app_label="django_rq", model="dashboard")
    assert staff.get(f"/admin/r/{ct.pk}/1/").status_code == 404
    assert staff.get("/admin/r/zzz/1/").status_code == 404


def test_junk_filters_on_retry_all_failed_go_back_to_the_list_flagged(staff):
    response = staff.get("/admin/jobs/job/retry-matching/?-1=a")
    assert response.status_code == 302
    assert response["Location"].endswith("/admin/jobs/job/?e=1")


@pytest.mark.parametrize("method", ["get", "post"])
def test_an_empty_to_field_on_a_delete_page_is_a_400_and_deletes_nothing(staff, method):
    # Django's delete view looks the empty name up as a field and fails (found by the fuzz test).
    bundle = make_bundle(name="Kept kit")
    url = f"/admin/bundles/bundle/{bundle.pk}/delete/?_to_field="
    response = getattr(staff, method)(url, {"post": "yes"} if method == "post" else None)
    assert response.status_code == 400
    assert b"_to_field" in response.content
    assert Bundle.objects.filter(pk=bundle.pk).exists()
