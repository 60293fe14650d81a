"""What the jobs pages show and do (test client; the browser tests cover the live parts)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.admin.models import LogEntry
from django.urls import reverse
from django.utils import timezone

from jobs import selectors
from jobs.admin.display import hourly_chart_svg
from jobs.models import Job, JobState
from jobs.scheduling.cron import in_words as cron_in_words
from tests.admin.conftest import client_for, failed_job, make_job, make_user
from tests.factories import make_bundle, make_variant

pytestmark = [pytest.mark.django_db, pytest.mark.redis]

LIST = "/admin/jobs/job/"


def listed_ids(response) -> set[str]:
    return {str(job.pk) for job in response.context["cl"].result_list}


@pytest.fixture
def admin_client(db):
    return client_for(make_user(superuser=True))


def test_admin_index_shows_system_section_with_jobs(admin_client):
    response = admin_client.get(reverse("admin:index"))
    apps = {
        a["name"]: [m["object_name"] for m in a["models"]] for a in response.context["app_list"]
    }
    assert "Job" in apps["System"]


def test_list_is_newest_first_with_the_columns(admin_client):
    new = failed_job()
    old = make_job()
    Job.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(hours=1))
    response = admin_client.get(LIST)
    rows = list(response.context["cl"].result_list)
    assert rows.index(new) < rows.index(old)
    html = response.content.decode()
    for text in (str(new.pk)[:8], "bundle-recompute", "Failed", "2/2", "ValueError: second boom"):
        assert text in html
    assert reverse("admin:bundles_bundle_change", args=["1"]) in html  # target links the bundle


@pytest.mark.parametrize(
    "query, expected",
    [
        ("?queue=bundle-reindex", {"reindex"}),
        ("?state__exact=failed", {"failed"}),
        ("?kind=consistency_check", {"check"}),
        ("?trigger__exact=schedule", {"check"}),
        ("?state__in=pending,retrying", {"pending"}),
    ],
)
def test_filters(admin_client, query, expected):
    jobs = {
        "pending": make_job(),
        "reindex": make_job(queue="bundle-reindex", kind="reindex", state=JobState.COMPLETED),
        "failed": failed_job(),
        "check": make_job(
            queue="bundle-consistency-check",
            kind="consistency_check",
            trigger="schedule",
            state=JobState.RUNNING,
        ),
    }
    response = admin_client.get(LIST + query)
    assert listed_ids(response) == {str(jobs[k].pk) for k in expected}


def test_created_date_filter(admin_client):
    recent = make_job()
    old = make_job()
    Job.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=30))
    since = (timezone.now() - timedelta(days=7)).isoformat()
    response = admin_client.get(LIST, {"created_at__gte": since})
    assert listed_ids(response) == {str(recent.pk)}


def test_search_by_job_id_prefix_name_sku_dedup_key_and_error_text(admin_client):
    variant = make_variant(sku="CAM-001")
    bundle = make_bundle(name="Camera kit", components=[(variant, 1)])
    Job.objects.all().delete()
    by_bundle = make_job(target_id=str(bundle.pk), target_label="Camera kit")
    by_key = make_job(dedup_key="recompute:777", target_id="777")
    by_error = failed_job(target_id="8")
    other = make_job(target_id="9", target_label="Something else")

    def search(term: str) -> set[str]:
        return listed_ids(admin_client.get(LIST, {"q": term}))

    assert search(str(other.pk)) == {str(other.pk)}
    assert search(str(other.pk)[:8]) == {str(other.pk)}
    assert search("camera") == {str(by_bundle.pk)}
    assert search("CAM-001") == {str(by_bundle.pk)}  # a component's SKU finds its bundle's jobs
    assert search(bundle.shell_variant.sku) == {str(by_bundle.pk)}
    assert search("recompute:777") == {str(by_key.pk)}
    assert search("second boom") == {str(by_error.pk)}


def test_list_links_filtered_to_exactly_some_jobs(admin_client):
    a, b, _c = make_job(), make_job(), make_job()
    response = admin_client.get(LIST + f"?id__in={a.pk},{b.pk}")
    assert listed_ids(response) == {str(a.pk), str(b.pk)}


def test_live_endpoint_returns_state_progress_attempts(admin_client):
    job = make_job(state=JobState.RUNNING, progress=40, progress_message="priced", attempts=1)
    response = admin_client.get(reverse("admin:jobs_job_live"), {"ids": f"{job.pk},nonsense"})
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    [row] = response.json()["jobs"]
    assert row["id"] == str(job.pk)
    assert (row["state"], row["progress"], row["message"], row["attempts"]) == (
        "running",
        40,
        "priced",
        1,
    )


def test_job_page_shows_every_attempt_error_timeline_merged_and_children(admin_client):
    parent = make_job(kind="bulk_operation", merged_count=2, payload={"operation": "recompute"})
    children = [
        make_job(parent=parent, state=JobState.COMPLETED, progress=100),
        make_job(parent=parent, state=JobState.RUNNING, progress=50),
        failed_job(parent=parent, progress=10),
    ]
    response = admin_client.get(reverse("admin:jobs_job_change", args=[parent.pk]))
    html = response.content.decode()
    assert "2 later requests merged into this job" in html
    assert "&quot;operation&quot;: &quot;recompute&quot;" in html  # pretty-printed payload
    summary = response.context["children_summary"]
    assert summary.total == 3 and summary.settled == 2
    assert summary.progress == (100 + 50 + 100) // 3  # a settled child counts as done
    for child in children:
        assert str(child.pk)[:8] in html

    page = admin_client.get(reverse("admin:jobs_job_change", args=[children[2].pk]))
    html = page.content.decode()
    assert html.count('class="form-row jobs-attempt-error"') == 2
    assert "first boom" in html and "second boom" in html
    assert "<details><summary>Traceback</summary>" in html
    labels = [e.label for e in page.context["timeline"]]
    assert labels[0] == "Created" and "Attempt 1 failed" in labels and labels[-1] == "Failed"
    assert f'action="{reverse("admin:jobs_job_retry", args=[children[2].pk])}"' in html


def test_retry_and_cancel_buttons_record_who_did_it(admin_client):
    failed = failed_job()
    pending = make_job()
    admin_client.post(reverse("admin:jobs_job_retry", args=[failed.pk]))
    admin_client.post(reverse("admin:jobs_job_cancel", args=[pending.pk]))
    failed.refresh_from_db()
    pending.refresh_from_db()
    assert failed.state == JobState.PENDING and len(failed.errors) == 2
    assert pending.state == JobState.CANCELLED
    messages = set(LogEntry.objects.values_list("object_id", "change_message"))
    assert (str(failed.pk), "Retried") in messages
    assert (str(pending.pk), "Cancelled") in messages
    page = admin_client.get(reverse("admin:jobs_job_change", args=[failed.pk]))
    assert "Retried" in page.content.decode()


def test_cancelling_a_running_job_asks_first(admin_client):
    running = make_job(state=JobState.RUNNING, attempts=1)
    url = reverse("admin:jobs_job_cancel", args=[running.pk])
    confirm = admin_client.post(url)
    assert confirm.status_code == 200 and b"Yes, stop it" in confirm.content
    assert Job.objects.get(pk=running.pk).cancel_requested is False
    admin_client.post(url, {"post": "yes"})
    assert Job.objects.get(pk=running.pk).cancel_requested is True


def test_retry_all_failed_matching_the_filter_confirms_then_retries_only_those(admin_client):
    recompute_failed = [failed_job(), failed_job()]
    reindex_failed = failed_job(queue="bundle-reindex", kind="reindex")
    url = reverse("admin:jobs_job_retry_matching") + "?queue=bundle-recompute"
    confirm = admin_client.get(url)
    assert confirm.context["total"] == 2
    assert Job.objects.filter(state=JobState.FAILED).count() == 3  # nothing yet
    admin_client.post(url, {"post": "yes"})
    assert {j.state for j in Job.objects.filter(pk__in=[j.pk for j in recompute_failed])} == {
        JobState.PENDING
    }
    assert Job.objects.get(pk=reindex_failed.pk).state == JobState.FAILED


def test_delete_selected_removes_settled_jobs_only_after_confirmation(admin_client):
    settled, active = failed_job(), make_job()
    data = {"action": "delete_settled", "_selected_action": [settled.pk, active.pk]}
    confirm = admin_client.post(LIST, data)
    assert confirm.status_code == 200 and Job.objects.count() == 2
    admin_client.post(LIST, {**data, "post": "yes"})
    assert list(Job.objects.values_list("pk", flat=True)) == [active.pk]


def test_bundle_action_answers_with_a_link_to_exactly_those_jobs(admin_client):
    bundles = [make_bundle(name=f"Kit {i}") for i in range(3)]
    Job.objects.all().delete()
    unrelated = make_job(target_id="999")
    response = admin_client.post(
        reverse("admin:bundles_bundle_changelist"),
        {"action": "recompute_selected", "_selected_action": [b.pk for b in bundles[:2]]},
        follow=True,
    )
    [message] = [str(m) for m in response.context["messages"]]
    assert "2 jobs queued" in message
    link = message.split('href="')[1].split('"')[0].replace("&amp;", "&")
    listed = listed_ids(admin_client.get(link))
    queued = Job.objects.filter(kind="recompute").exclude(pk=unrelated.pk)
    assert listed == {str(pk) for pk in queued.values_list("pk", flat=True)}
    assert {j.target_id for j in queued} == {str(b.pk) for b in bundles[:2]}
    assert all(j.trigger == "admin" for j in queued)


@pytest.mark.parametrize(
    "action, kind",
    [
        ("reindex_selected", "reindex"),
        ("check_selected", "consistency_check"),
    ],
)
def test_other_bundle_actions_queue_their_job(admin_client, action, kind):
    bundle = make_bundle()
    before = set(Job.objects.values_list("pk", flat=True))
    response = admin_client.post(
        reverse("admin:bundles_bundle_changelist"),
        {"action": action, "_selected_action": [bundle.pk]},
        follow=True,
    )
    assert "1 job queued" in str(list(response.context["messages"])[0])
    new = Job.objects.exclude(pk__in=before)
    assert [j.kind for j in new] == [kind]


@pytest.mark.parametrize(
    "action, operation", [("activate_selected", "activate"), ("archive_selected", "archive")]
)
def test_bulk_bundle_actions_link_to_the_bulk_job_and_its_batch_jobs(
    admin_client, action, operation
):
    # Given three draft bundles
    bundles = [make_bundle(name=f"Kit {i}", status="draft") for i in range(3)]
    before = set(Job.objects.values_list("pk", flat=True))
    # When the action runs on them
    response = admin_client.post(
        reverse("admin:bundles_bundle_changelist"),
        {"action": action, "_selected_action": [b.pk for b in bundles]},
        follow=True,
    )
    # Then one bulk job and its one batch job were queued, and the answer links to both
    [message] = [str(m) for m in response.context["messages"]]
    assert "2 jobs queued" in message
    new = Job.objects.exclude(pk__in=before)
    [parent] = [j for j in new if j.kind == "bulk_operation"]
    [batch] = [j for j in new if j.kind == "bulk_batch"]
    assert batch.parent_id == parent.pk and len(new) == 2
    assert parent.payload["operation"] == operation
    link = message.split('href="')[1].split('"')[0].replace("&amp;", "&")
    assert listed_ids(admin_client.get(link)) == {str(parent.pk), str(batch.pk)}


def test_recompute_all_button_links_to_the_bulk_job_and_every_batch_job(admin_client):
    # Given three bundles
    for i in range(3):
        make_bundle(name=f"Kit {i}")
    before = set(Job.objects.values_list("pk", flat=True))
    # When an operator presses "Recompute all bundles" on System → Jobs
    response = admin_client.post(
        reverse("admin:jobs_job_quick", args=["recompute-all"]), follow=True
    )
    # Then the answer links to exactly the bulk job and its batch job
    [message] = [str(m) for m in response.context["messages"]]
    assert "2 jobs queued" in message
    new = Job.objects.exclude(pk__in=before)
    assert sorted(new.values_list("kind", flat=True)) == ["bulk_batch", "bulk_operation"]
    link = message.split('href="')[1].split('"')[0].replace("&amp;", "&")
    assert listed_ids(admin_client.get(link)) == {str(j.pk) for j in new}


def test_bundle_page_lists_recent_jobs_and_recompute_now_queues_one(admin_client):
    bundle = make_bundle(name="Desk set")
    url = reverse("admin:bundles_bundle_change", args=[bundle.pk])
    admin_client.post(reverse("admin:bundles_bundle_recompute_now", args=[bundle.pk]))
    job = Job.objects.filter(target_id=str(bundle.pk), kind="recompute").latest("created_at")
    assert job.payload["force"] is True
    page = admin_client.get(url)
    assert job in page.context["recent_jobs"]
    assert b"Recompute now" in page.content


def test_overview_counts_per_queue_and_stale_jobs(admin_client):
    make_job()
    make_job(state=JobState.RETRYING)
    failed_job()
    make_job(state=JobState.COMPLETED, settled_at=timezone.now())
    make_job(state=JobState.COMPLETED, settled_at=timezone.now() - timedelta(days=2))
    stale = make_job(state=JobState.RUNNING, attempts=1)
    Job.objects.filter(pk=stale.pk).update(
        heartbeat_at=timezone.now() - timedelta(hours=1),
        started_at=timezone.now() - timedelta(hours=1),
    )
    health = admin_client.get(LIST).context["health"]
    [q] = [q for q in health.queues if q.name == "bundle-recompute"]
    assert (q.waiting, q.running, q.failed, q.completed_24h) == (2, 1, 1, 1)
    assert health.stale_jobs == 1
    assert listed_ids(admin_client.get(LIST + "?stale=yes")) == {str(stale.pk)}


def test_hourly_chart_counts_and_svg():
    now = timezone.now()
    make_job(state=JobState.COMPLETED, settled_at=now)
    failed_job()
    make_job(state=JobState.COMPLETED, settled_at=now - timedelta(hours=3))
    make_job(state=JobState.COMPLETED, settled_at=now - timedelta(hours=30))  # outside
    buckets = selectors.jobs_per_hour(hours=24, now=now)
    assert len(buckets) == 24
    assert (buckets[-1].completed, buckets[-1].failed) == (1, 1)
    assert sum(b.completed for b in buckets) == 2
    svg = hourly_chart_svg(buckets)
    assert svg.startswith("<svg") and "2 completed, 1 failed" in svg


@pytest.mark.parametrize(
    "cron, words",
    [
        ("0 2 * * *", "At 02:00 UTC"),
        ("0 3 * * 0", "At 03:00 UTC, only on Sunday"),
        ("* * * * *", "Every minute"),
        ("*/5 * * * *", "Every 5 minutes"),
        ("15 * * * *", "At 15 minutes past the hour"),
        ("30 4 1 * *", "At 04:30 UTC, on day 1 of the month"),
        ("0 9 * * 1-5", "At 09:00 UTC, Monday through Friday"),
        ("not a cron line", "not a cron line"),
    ],
)
def test_cron_in_words(cron, words):
    assert cron_in_words(cron) == words


def test_list_shows_a_stale_badge_on_a_running_job_without_a_recent_heartbeat(
    admin_client, settings
):
    # Given a running job silent for longer than the stale limit, and one with a fresh heartbeat
    settings.JOBS_STALE_AFTER_SECONDS = 90
    now = timezone.now()
    silent = make_job(state=JobState.RUNNING, attempts=1)
    alive = make_job(state=JobState.RUNNING, attempts=1)
    Job.objects.filter(pk=silent.pk).update(
        started_at=now - timedelta(minutes=10), heartbeat_at=now - timedelta(seconds=91)
    )
    Job.objects.filter(pk=alive.pk).update(
        started_at=now - timedelta(minutes=10), heartbeat_at=now - timedelta(seconds=5)
    )

    # When the list and the live endpoint are read
    html = admin_client.get(LIST).content.decode()
    live = admin_client.get(reverse("admin:jobs_job_live"), {"ids": f"{silent.pk},{alive.pk}"})

    # Then only the silent job's badge is visible
    def badge(job):
        start = html.index(f'data-job-id="{job.pk}" data-live="stale"')
        return html[start : html.index("</span>", start)]

    assert "hidden" not in badge(silent) and badge(silent).endswith(">stale")
    assert "hidden" in badge(alive)
    assert {row["id"]: row["stale"] for row in live.json()["jobs"]} == {
        str(silent.pk): True,
        str(alive.pk): False,
    }


def test_a_settled_job_has_no_stale_badge(admin_client):
    # Given a completed job that last reported long ago
    job = make_job(state=JobState.COMPLETED, progress=100, settled_at=timezone.now())
    Job.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(hours=2))
    # When / Then
    assert (
        f'data-job-id="{job.pk}" data-live="stale"' not in admin_client.get(LIST).content.decode()
    )


@pytest.mark.parametrize("action", ["recompute_selected", "reindex_selected"])
def test_bundle_recompute_and_reindex_actions_record_who_asked(action):
    # Given a catalog manager and a bundle without pending jobs
    user = make_user(permissions=("bundles.view_bundle", "bundles.change_bundle"))
    bundle = make_bundle(name="Camping kit")
    Job.objects.all().delete()

    # When they run the action on it
    client_for(user).post(
        reverse("admin:bundles_bundle_changelist"),
        {"action": action, "_selected_action": [bundle.pk]},
    )

    # Then one job per bundle, requested by them, with the admin's reason
    [job] = Job.objects.all()
    assert job.requested_by == user and job.target_id == str(bundle.pk)
    assert job.reason.endswith("from the bundle admin")


def test_delete_settled_keeps_a_parent_whose_child_is_still_running(admin_client):
    # Given a failed bulk parent with a running child, and an unrelated completed job
    parent = failed_job(kind="bulk_operation", queue="bundle-bulk-operation")
    child = make_job(state=JobState.RUNNING, attempts=1, parent=parent)
    done = make_job(state=JobState.COMPLETED, progress=100, settled_at=timezone.now())
    data = {"action": "delete_settled", "_selected_action": [parent.pk, done.pk], "post": "yes"}

    # When the operator deletes both settled jobs
    response = admin_client.post(LIST, data, follow=True)

    # Then the completed job is gone, the parent and its running child stay
    assert set(Job.objects.values_list("pk", flat=True)) == {parent.pk, child.pk}
    text = str(list(response.context["messages"])[0])
    assert "1 settled job deleted" in text and "1 kept" in text
    # and the audit records the deletion of exactly the job that went
    deletions = LogEntry.objects.filter(action_flag=3)  # DELETION
    assert [e.object_id for e in deletions] == [str(done.pk)]
