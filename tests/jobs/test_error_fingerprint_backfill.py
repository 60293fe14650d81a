"""Migration 0015's backfill gives the rows already in the ledger the runner's fingerprints."""

from __future__ import annotations

import importlib

import pytest
from django.apps import apps
from django.db import connection

from jobs.error_fingerprint import fingerprint
from jobs.models import Job, JobState

pytestmark = [pytest.mark.django_db]

migration = importlib.import_module("jobs.migrations.0015_error_fingerprint")


def traceback_text(n: int, cls: str) -> str:
    return f'Traceback (most recent call last):\n  File "x.py", line {n}, in f\n{cls}: id {n}\n'


def test_backfill_fingerprints_every_row_with_errors_in_chunks(monkeypatch):
    # Given old rows (no fingerprint): failed with tracebacks, retrying with a message only,
    # and completed ones; more rows than one chunk
    monkeypatch.setattr(migration, "CHUNK", 7)
    failed = [
        Job.objects.create(
            queue="q",
            kind="k",
            trigger="admin",
            state=JobState.FAILED,
            errors=[
                {"message": "old"},
                {"traceback": traceback_text(i, "KeyError" if i % 2 else "OSError")},
            ],
        )
        for i in range(20)
    ]
    retrying = Job.objects.create(
        queue="q",
        kind="k",
        trigger="admin",
        state=JobState.RETRYING,
        errors=[{"message": "Worker died (pid 12)"}],
    )
    done = Job.objects.create(queue="q", kind="k", trigger="admin", state=JobState.COMPLETED)

    class Editor:
        pass

    editor = Editor()
    editor.connection = connection
    # When
    migration.backfill_fingerprints(apps, editor)
    # Then each row has the key the runner gives its last error; two groups among the failed
    got = dict(Job.objects.values_list("pk", "error_fingerprint"))
    for job in failed:
        assert got[job.pk] == fingerprint(job.errors[-1]["traceback"])
    assert len({got[j.pk] for j in failed}) == 2
    assert got[retrying.pk] == fingerprint("Worker died (pid 12)")
    assert got[done.pk] == ""
