"""recompute_bundles, reindex_bundles, check_bundles: --sync, --wait, plain enqueue, bad input."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from bundles import services
from bundles.models import Bundle, ProductVariant
from jobs.models import Job, JobState
from tests.bundles.jobs_support import (
    ROOT,
    close_thread_connections,
    jobs,
    rq_queued,
    run_burst_worker,
    wait_until,
)
from tests.factories import make_bundle, make_variant
from tests.support import test_database_url

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis]


@pytest.fixture(autouse=True)
def no_fanout_debounce(settings):
    settings.BUNDLES_FANOUT_DEBOUNCE_SECONDS = 0


@pytest.fixture
def worker(start_worker):
    return start_worker()


@pytest.fixture
def drifted(redis_conn):
    """Three bundles whose stored price is wrong (changed behind the services' back)."""
    bundles = [make_bundle(name=f"Kit {i}") for i in range(3)]
    Bundle.objects.update(computed_price=Decimal("1.00"))
    return bundles


def run(*args, **options) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command(*args, stdout=out, stderr=err, **options)
    return out.getvalue(), err.getvalue()


def prices(bundles) -> set[Decimal]:
    return set(
        Bundle.objects.filter(pk__in=[b.pk for b in bundles]).values_list(
            "computed_price", flat=True
        )
    )


# --- recompute_bundles --------------------------------------------------------------------------


def test_recompute_one_bundle_sync_runs_it_here_without_rq(drifted):
    out, _ = run("recompute_bundles", str(drifted[0].pk), "--sync", "--reason", "audit")
    job = jobs("recompute").get()
    assert job.state == JobState.COMPLETED
    assert job.trigger == "command"
    assert job.reason == "audit"
    assert job.dispatched_at is None  # never handed to RQ
    assert rq_queued() == 0
    assert "completed" in out
    assert Decimal("1.00") not in prices(drifted[:1])


def test_recompute_several_ids_sync_runs_a_bulk_job_and_its_batches_here(drifted):
    ids = [str(b.pk) for b in drifted]
    run("recompute_bundles", *ids, "--batch-size", "2", "--sync")
    parent = jobs("bulk_operation").get()
    assert parent.state == JobState.COMPLETED
    assert parent.children.count() == 2
    assert set(parent.children.values_list("state", flat=True)) == {JobState.COMPLETED}
    assert Job.objects.filter(dispatched_at__isnull=False).count() == 0
    assert rq_queued() == 0
    assert Decimal("1.00") not in prices(drifted)


def test_recompute_all_sync(drifted):
    run("recompute_bundles", "--all", "--sync")
    parent = jobs("bulk_operation").get()
    assert parent.payload["bundle_ids"] == sorted(b.pk for b in drifted)
    assert parent.result["ok"] == 3
    assert Decimal("1.00") not in prices(drifted)


def test_recompute_variants_sync_fans_out_and_recomputes_here(redis_conn):
    battery = make_variant(price="10.00")
    kit = make_bundle(components=[(battery, 2)])
    ProductVariant.objects.filter(pk=battery.pk).update(price=Decimal("12.50"))  # an import
    out, _ = run("recompute_bundles", "--variants", str(battery.pk), "--sync")
    fanout = jobs("fanout").get()
    assert fanout.state == JobState.COMPLETED
    batch = jobs("recompute_batch").get()
    assert batch.state == JobState.COMPLETED
    # The batch is the fan-out's child: the command (jobs.cli), not the handler, ran it here
    assert batch.parent_id == fanout.pk
    assert "Ran 1 job it spawned here." in out
    assert rq_queued() == 0
    assert Bundle.objects.get(pk=kit.pk).computed_price == Decimal("25.00")


def test_recompute_without_flags_only_enqueues(drifted):
    out, _ = run("recompute_bundles", str(drifted[0].pk))
    job = jobs("recompute").get()
    assert job.state == JobState.PENDING
    assert rq_queued("bundle-recompute") == 1
    assert str(job.pk) in out


def test_recompute_wait_shows_progress_until_a_worker_finishes(drifted, worker):
    out, err = run("recompute_bundles", *[str(b.pk) for b in drifted], "--wait", "--timeout", "60")
    parent = jobs("bulk_operation").get()
    assert parent.state == JobState.COMPLETED
    assert "completed" in out
    assert "100%" in err  # the tqdm bar reached the end
    assert Decimal("1.00") not in prices(drifted)


def test_wait_exits_non_zero_when_the_job_fails(drifted, monkeypatch):
    # Given a recompute that always fails, run by an in-process worker
    def broken(**kwargs):
        raise RuntimeError("database on fire")

    monkeypatch.setattr(services, "bundle_recompute", broken)
    outcome: dict = {}

    def command() -> None:
        try:
            run("recompute_bundles", str(drifted[0].pk), "--wait", "--timeout", "60")
        except CommandError as exc:
            outcome["error"] = str(exc)
        finally:
            close_thread_connections()

    waiter = threading.Thread(target=command)
    waiter.start()
    job = wait_until(lambda: jobs("recompute").first())
    # Retries go through RQ's scheduler with backoff; make them immediate for the test
    Job.objects.filter(pk=job.pk).update(max_attempts=1)
    run_burst_worker()
    waiter.join(30)
    assert not waiter.is_alive()
    assert "ended failed" in outcome["error"]
    assert "database on fire" in outcome["error"]


def test_sync_exits_non_zero_when_the_job_fails_after_all_attempts(drifted, monkeypatch):
    def broken(**kwargs):
        raise RuntimeError("still broken")

    monkeypatch.setattr(services, "bundle_recompute", broken)
    with pytest.raises(CommandError, match=r"ended failed after 3 attempt\(s\): .*still broken"):
        run("recompute_bundles", str(drifted[0].pk), "--sync")
    assert len(jobs("recompute").get().errors) == 3


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["999999"], "No bundle with id 999999"),
        (["{kit}", "999998", "999999"], "No bundles with id 999998, 999999"),
        (["{kit}", "{kit2}", "--batch-size", "0"], "between 1 and 1000"),
        (["--all", "--batch-size", "1001"], "between 1 and 1000"),
        ([], "Nothing selected"),
        (["{kit}", "--all"], "only one of"),
        (["abc"], "'abc' is not a valid bundle id"),
        (["--variants", "999999"], "No variant with id 999999"),
    ],
)
def test_recompute_bad_input_is_refused_and_creates_no_job(drifted, args, message):
    args = [a.format(kit=drifted[0].pk, kit2=drifted[1].pk) for a in args]
    with pytest.raises(CommandError, match=message):
        run("recompute_bundles", *args, "--sync")
    assert Job.objects.count() == 0
    assert rq_queued() == 0


def test_bad_input_exits_with_status_1_from_the_shell(redis_conn):
    env = dict(os.environ)
    env["DATABASE_URL"] = test_database_url()
    proc = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "check_bundles", "--scope", "everything"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1
    assert "Invalid scope 'everything'" in proc.stderr
    assert Job.objects.count() == 0


# --- reindex_bundles ----------------------------------------------------------------------------


def test_reindex_ids_sync(redis_conn):
    kit = make_bundle(name="Kit")
    Bundle.objects.filter(pk=kit.pk).update(name="Kit renamed")
    run("reindex_bundles", str(kit.pk), "--sync")
    assert jobs("reindex").get().result == {"reindexed": 1, "missing": []}
    assert Bundle.objects.get(pk=kit.pk).search_entry.title == "Kit renamed"
    assert rq_queued() == 0


def test_reindex_all_wait(redis_conn, worker):
    kits = [make_bundle() for _ in range(3)]
    out, err = run("reindex_bundles", "--all", "--wait", "--timeout", "60")
    job = jobs("reindex").get()
    assert job.state == JobState.COMPLETED
    assert job.result == {"reindexed": len(kits), "scope": "all"}
    assert "100%" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["424242"], "No bundle with id 424242"),
        ([], "Nothing selected"),
        (["{kit}", "--all"], "not both"),
    ],
)
def test_reindex_bad_input_is_refused(redis_conn, args, message):
    kit = make_bundle()
    with pytest.raises(CommandError, match=message):
        run("reindex_bundles", *[a.format(kit=kit.pk) for a in args])
    assert Job.objects.count() == 0


# --- check_bundles ------------------------------------------------------------------------------


@pytest.fixture
def one_broken(redis_conn):
    gone = make_variant(name="Gone")
    broken = make_bundle(name="Broken kit", components=[(gone, 1)])
    ok = make_bundle(name="Fine kit")
    ProductVariant.objects.filter(pk=gone.pk).update(deleted_at=timezone.now())
    return broken, ok


def test_check_sync_with_fix_marks_the_broken_bundle(one_broken):
    broken, ok = one_broken
    out, _ = run("check_bundles", "--scope", "active", "--fix", "--sync")
    job = jobs("consistency_check").get()
    assert job.payload == {"scope": "active", "fix": True, "notify_admins": False}
    assert job.result["checked"] == 2
    assert job.result["broken"] == 1
    assert Bundle.objects.get(pk=broken.pk).status == "broken"
    assert Bundle.objects.get(pk=ok.pk).status == "active"
    assert '"broken": 1' in out


def test_check_ids_with_notify_mails_the_admins(one_broken, settings, mailoutbox):
    settings.ADMINS = [("Ops", "ops@example.com")]
    broken, ok = one_broken
    run("check_bundles", "--ids", str(broken.pk), str(ok.pk), "--notify", "--sync")
    job = jobs("consistency_check").get()
    assert job.payload["scope"] == sorted([broken.pk, ok.pk])
    assert job.result["notified"] is True
    assert len(mailoutbox) == 1
    assert "Broken kit" in mailoutbox[0].body


def test_check_wait_with_a_worker(one_broken, worker):
    out, err = run("check_bundles", "--scope", "all", "--wait", "--timeout", "60")
    job = jobs("consistency_check").get()
    assert job.state == JobState.COMPLETED
    assert job.result["broken"] == 1
    assert "100%" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--scope", "everything"], "Invalid scope 'everything'.*all.*active.*broken"),
        (["--ids", "{ok}", "515151"], "No bundle with id 515151"),
        (["--ids", "x1"], "'x1' is not a valid bundle id"),
        (["--scope", "all", "--ids", "{ok}"], "not both"),
    ],
)
def test_check_bad_input_is_refused(one_broken, args, message):
    _, ok = one_broken
    with pytest.raises(CommandError, match=message):
        run("check_bundles", *[a.format(ok=ok.pk) for a in args], "--sync")
    assert Job.objects.count() == 0
