"""Every System → Jobs URL and action × {anonymous, non-staff, staff without the permission,
staff with it}: login redirect, 403 that changes nothing, or the page / the effect.
Where a URL needs more than one permission (retry/cancel also need jobs.view_job; the bundle
quick buttons also bundles.change_bundle), lacking any one of them is a 403 too.
And every POST refuses a request without a CSRF token."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from django.contrib.admin.models import LogEntry
from django.urls import reverse

from bundles.models import Bundle
from jobs.models import Job, JobState, Schedule
from tests.admin.conftest import client_for, failed_job, make_job, make_user
from tests.factories import make_bundle

pytestmark = [pytest.mark.django_db, pytest.mark.redis]


@dataclass(frozen=True)
class Case:
    name: str
    method: str
    url: object  # callable(world) -> str
    perm: str  # the permission this URL/action needs
    data: object = None  # callable(world) -> dict
    base_perms: tuple[str, ...] = field(default=("jobs.view_job",))  # besides the one tested
    # Also required: each one's absence is tested on its own (test_every_needed_permission...)
    needs: tuple[str, ...] = ()


def _action(name, key="failed", extra=None):
    def data(w):
        return {"action": name, "_selected_action": [str(w[key].pk)], "index": "0", **(extra or {})}

    return data


CHANGELIST = lambda w: reverse("admin:jobs_job_changelist")  # noqa: E731
BUNDLES = lambda w: reverse("admin:bundles_bundle_changelist")  # noqa: E731
BUNDLE_BASE = ("bundles.view_bundle",)
VIEW_JOB = ("jobs.view_job",)

CASES = [
    Case("jobs list", "get", CHANGELIST, "jobs.view_job", base_perms=()),
    Case(
        "job page",
        "get",
        lambda w: reverse("admin:jobs_job_change", args=[w["failed"].pk]),
        "jobs.view_job",
        base_perms=(),
    ),
    Case(
        "live json",
        "get",
        lambda w: reverse("admin:jobs_job_live") + f"?ids={w['pending'].pk}",
        "jobs.view_job",
        base_perms=(),
    ),
    Case(
        "schedules",
        "get",
        lambda w: reverse("admin:jobs_schedule_changelist"),
        "jobs.view_schedule",
        base_perms=(),
    ),
    Case(
        "retry matching (confirm page)",
        "get",
        lambda w: reverse("admin:jobs_job_retry_matching"),
        "jobs.retry_job",
        base_perms=(),
        needs=VIEW_JOB,
    ),
    Case(
        "retry button",
        "post",
        lambda w: reverse("admin:jobs_job_retry", args=[w["failed"].pk]),
        "jobs.retry_job",
        base_perms=(),
        needs=VIEW_JOB,
    ),
    Case(
        "cancel button",
        "post",
        lambda w: reverse("admin:jobs_job_cancel", args=[w["pending"].pk]),
        "jobs.cancel_job",
        base_perms=(),
        needs=VIEW_JOB,
    ),
    Case(
        "cancel running (confirmed)",
        "post",
        lambda w: reverse("admin:jobs_job_cancel", args=[w["running"].pk]),
        "jobs.cancel_job",
        data=lambda w: {"post": "yes"},
        base_perms=(),
        needs=VIEW_JOB,
    ),
    Case(
        "retry all failed matching",
        "post",
        lambda w: reverse("admin:jobs_job_retry_matching") + "?queue=bundle-recompute",
        "jobs.retry_job",
        data=lambda w: {"post": "yes"},
        base_perms=(),
        needs=VIEW_JOB,
    ),
    Case(
        "run schedule now",
        "post",
        lambda w: reverse(
            "admin:jobs_schedule_run", args=[schedule_pk("nightly-consistency-check")]
        ),
        "jobs.run_schedule",
        needs=("bundles.change_bundle",),  # what the nightly check's request needs
    ),
    Case(
        "disable schedule",
        "post",
        lambda w: reverse("admin:jobs_schedule_toggle", args=[schedule_pk("weekly-maintenance")]),
        "jobs.change_schedule",
        data=lambda w: {"enabled": "0"},
        needs=("bundles.change_bundle", "jobs.delete_job"),  # what the maintenance needs
    ),
    Case(
        "quick: check active",
        "post",
        lambda w: reverse("admin:jobs_job_quick", args=["check-active"]),
        "jobs.run_schedule",
        needs=("bundles.change_bundle",),
    ),
    Case(
        "quick: emergency check",
        "post",
        lambda w: reverse("admin:jobs_job_quick", args=["emergency-check"]),
        "jobs.run_schedule",
        needs=("bundles.change_bundle",),
    ),
    Case(
        "quick: recompute all",
        "post",
        lambda w: reverse("admin:jobs_job_quick", args=["recompute-all"]),
        "jobs.run_schedule",
        needs=("bundles.change_bundle",),
    ),
    Case(
        "action retry selected",
        "post",
        CHANGELIST,
        "jobs.retry_job",
        data=_action("retry_selected"),
        base_perms=(),
        needs=VIEW_JOB,
    ),
    Case(
        "action cancel selected",
        "post",
        CHANGELIST,
        "jobs.cancel_job",
        data=_action("cancel_selected", key="pending"),
        base_perms=(),
        needs=VIEW_JOB,
    ),
    Case(
        "action delete settled",
        "post",
        CHANGELIST,
        "jobs.delete_job",
        data=_action("delete_settled", extra={"post": "yes"}),
    ),
    *[
        Case(
            f"bundle action {name}",
            "post",
            BUNDLES,
            "bundles.change_bundle",
            data=_action(name, key="bundle"),
            base_perms=BUNDLE_BASE,
        )
        for name in (
            "recompute_selected",
            "reindex_selected",
            "check_selected",
            "activate_selected",
            "archive_selected",
        )
    ],
    Case(
        "bundle recompute now",
        "post",
        lambda w: reverse("admin:bundles_bundle_recompute_now", args=[w["bundle"].pk]),
        "bundles.change_bundle",
        base_perms=BUNDLE_BASE,
    ),
]

ROLES = ("anonymous", "non-staff", "staff without permission", "staff with permission")


@pytest.fixture
def world(db):
    bundle = make_bundle(name="Starter kit")
    return {
        "bundle": bundle,
        "pending": make_job(),
        "running": make_job(state=JobState.RUNNING, attempts=1),
        "failed": failed_job(),
        "completed": make_job(state=JobState.COMPLETED, progress=100, attempts=1),
    }


def schedule_pk(name: str) -> int:
    return Schedule.objects.get(name=name).pk


def snapshot() -> tuple:
    """Everything an admin request could change."""
    return (
        sorted(
            (str(pk), state, cancel)
            for pk, state, cancel in Job.objects.values_list("pk", "state", "cancel_requested")
        ),
        # Refusals are logged on purpose; anything else logged means something happened.
        LogEntry.objects.exclude(change_message__startswith="Refused").count(),
        sorted(Schedule.objects.values_list("name", "enabled", "cron")),
        sorted(Bundle.objects.values_list("pk", "status")),
    )


def user_for(role: str, case: Case):
    if role == "anonymous":
        return None
    if role == "non-staff":
        return make_user(staff=False, permissions=(*case.base_perms, case.perm, *case.needs))
    if role == "staff without permission":
        return make_user(permissions=(*case.base_perms, *case.needs))
    return make_user(permissions=(*case.base_perms, case.perm, *case.needs))


def send(client, case: Case, world):
    url = case.url(world)
    data = case.data(world) if case.data else {}
    return getattr(client, case.method)(url, data)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_permission_matrix(case: Case, role: str, world):
    # Given a user in this role and the state of the world
    client = client_for(user_for(role, case))
    before = snapshot()

    # When they open the URL / post the action
    response = send(client, case, world)

    # Then
    if role in ("anonymous", "non-staff"):
        assert response.status_code == 302
        assert response.url.startswith(reverse("admin:login"))
        assert snapshot() == before
    elif role == "staff without permission":
        assert response.status_code == 403
        assert snapshot() == before
    else:
        if case.method == "get":
            assert response.status_code == 200
            assert snapshot() == before  # looking changes nothing
        else:
            assert response.status_code == 302, response.content[:500]
            assert snapshot() != before  # the action happened
            # and no error was reported back
            followed = client.get(response.url)
            errors = [m for m in followed.context["messages"] if m.level_tag == "error"]
            assert not errors, [str(m) for m in errors]


NEEDS = [(c, need) for c in CASES for need in c.needs]


@pytest.mark.parametrize(
    "case, missing", NEEDS, ids=[f"{c.name} without {need}" for c, need in NEEDS]
)
def test_every_needed_permission_is_checked_on_its_own(case: Case, missing: str, world):
    # Given staff with the tested permission and every other one needed, but not `missing`
    others = tuple(p for p in case.needs if p != missing)
    client = client_for(make_user(permissions=(*case.base_perms, case.perm, *others)))
    before = snapshot()

    # When they open the URL / post the action
    response = send(client, case, world)

    # Then they are refused and nothing changed
    assert response.status_code == 403
    assert snapshot() == before


def test_quick_buttons_are_shown_only_with_the_bundle_permission(world):
    # Given two operators who may run schedules, one of them also allowed to change bundles
    runner = client_for(make_user(permissions=("jobs.view_job", "jobs.run_schedule")))
    manager = client_for(
        make_user(permissions=("jobs.view_job", "jobs.run_schedule", "bundles.change_bundle"))
    )
    quick = reverse("admin:jobs_job_quick", args=["recompute-all"])
    # When each opens the jobs list; Then only the second sees the bundle buttons
    assert quick not in runner.get(CHANGELIST(world)).content.decode()
    assert quick in manager.get(CHANGELIST(world)).content.decode()


POST_CASES = [c for c in CASES if c.method == "post"]


@pytest.mark.parametrize("case", POST_CASES, ids=[c.name for c in POST_CASES])
def test_post_without_csrf_token_is_rejected_and_changes_nothing(case: Case, world):
    # Given a superuser whose client enforces CSRF like a browser would
    client = client_for(make_user(superuser=True), csrf=True)
    before = snapshot()
    # When they post without the token
    response = send(client, case, world)
    # Then
    assert response.status_code == 403
    assert b"CSRF" in response.content
    assert snapshot() == before


@pytest.mark.parametrize("path", ["retry", "cancel"])
def test_get_on_a_button_url_does_nothing(path, world):
    # Given a superuser; When they GET a button URL (a link preview, a crawler...)
    client = client_for(make_user(superuser=True))
    before = snapshot()
    job = world["failed"] if path == "retry" else world["pending"]
    response = client.get(reverse(f"admin:jobs_job_{path}", args=[job.pk]))
    # Then nothing happens (retry refuses GET; cancel shows its confirmation page)
    assert response.status_code in (200, 405)
    assert snapshot() == before
