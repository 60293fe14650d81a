"""Users per role and ledger rows for the admin tests."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.utils import timezone

from jobs.models import Job, JobState, JobTrigger
from tests.support import link_main_targets

_n = itertools.count(1)


def make_job(**fields) -> Job:
    """A ledger row as the runner would leave it (never dispatched: no worker involved)."""
    defaults = {
        "queue": "bundle-recompute",
        "kind": "recompute",
        "trigger": JobTrigger.ADMIN,
        "state": JobState.PENDING,
        "payload": {"bundle_id": 1},
        "max_attempts": 3,
        "target_type": "bundle",
        "target_id": "1",
        "target_label": f"Bundle {next(_n)}",
    }
    defaults.update(fields)
    job = Job.objects.create(**defaults)
    link_main_targets()  # the link row enqueue would write
    return job


def failed_job(**fields) -> Job:
    now = timezone.now()
    fields.setdefault(
        "errors",
        [
            {
                "attempt": 1,
                "at": (now - timedelta(minutes=2)).isoformat(),
                "message": "ValueError: first boom",
                "traceback": "Traceback...\nValueError: first boom",
            },
            {
                "attempt": 2,
                "at": (now - timedelta(minutes=1)).isoformat(),
                "message": "ValueError: second boom",
                "traceback": "Traceback...\nValueError: second boom",
            },
        ],
    )
    job = make_job(
        state=JobState.FAILED,
        attempts=2,
        max_attempts=2,
        started_at=now - timedelta(minutes=1),
        settled_at=now,
        **fields,
    )
    # created before its first attempt, like a real one
    Job.objects.filter(pk=job.pk).update(created_at=now - timedelta(minutes=3))
    job.refresh_from_db()
    return job


def perms(*codenames: str) -> list[Permission]:
    """Permission objects from "app.codename" strings."""
    out = []
    for name in codenames:
        app, codename = name.split(".")
        out.append(Permission.objects.get(content_type__app_label=app, codename=codename))
    return out


def make_user(*, staff: bool = True, superuser: bool = False, permissions=()) -> User:
    user = User.objects.create_user(
        username=f"user{next(_n)}",
        password="pw-for-tests-only",
        is_staff=staff,
        is_superuser=superuser,
    )
    user.user_permissions.set(perms(*permissions))
    return user


def client_for(user: User | None, *, csrf: bool = False) -> Client:
    client = Client(enforce_csrf_checks=csrf)
    if user is not None:
        client.force_login(user)
    return client


@pytest.fixture
def superuser_client(db):
    return client_for(make_user(superuser=True))
