"""Bundle job handlers run by a real RQ worker on the suite's Redis, through the jobs runner."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import django_rq
import pytest
from django.db import transaction
from django.utils import timezone
from rq.job import Job as RQJob

from bundles import requests
from bundles.bulk import bundles_bulk_enqueue
from bundles.errors import BundleNotFound, InvalidJobOptions, InvalidScope
from bundles.fanout import bundles_recompute_coalesced, variants_changed
from bundles.models import Bundle, BundleComponent, ProductVariant
from bundles.selectors import bulk_batch_jobs
from jobs.context import JobContext
from jobs.enqueue import enqueue
from jobs.models import Job, JobState
from jobs.runner import SETTLED_BY_WORKER, run_inline
from tests.bundles.jobs_support import jobs, rq_queued, run_burst_worker
from tests.factories import make_bundle, make_variant
from tests.support import grant, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis]


@pytest.fixture(autouse=True)
def no_fanout_debounce(settings):
    """Fan-outs go to RQ at once here; the debounce has tests of its own."""
    settings.BUNDLES_FANOUT_DEBOUNCE_SECONDS = 0


@pytest.fixture
def progress_log(monkeypatch):
    """Every set_progress call a handler makes: (kind, job id, pct, message)."""
    calls: list[tuple[str, str, int, str]] = []
    original = JobContext.set_progress

    def recording(self, pct, message=""):
        calls.append((self.job.kind, str(self.job.pk), int(pct), message))
        return original(self, pct, message)

    monkeypatch.setattr(JobContext, "set_progress", recording)
    return calls


@pytest.fixture
def admins(settings, mailoutbox):
    settings.ADMINS = [("Ops", "ops@example.com")]
    return mailoutbox


def drift(bundle: Bundle, price: str = "1.00") -> None:
    """Make the stored price wrong behind the services' back (no signals)."""
    Bundle.objects.filter(pk=bundle.pk).update(computed_price=Decimal(price))


def break_by_deleting_component(variant: ProductVariant) -> None:
    ProductVariant.objects.filter(pk=variant.pk).update(deleted_at=timezone.now())


# --- recompute --------------------------------------------------------------------------------


def test_recompute_job_prices_the_bundle_and_reports_25_50_75_100(redis_conn, progress_log):
    # Given a bundle whose component price changed behind its back
    camera = make_variant(price="100.00")
    kit = make_bundle(components=[(camera, 2)], rule_value="10")
    ProductVariant.objects.filter(pk=camera.pk).update(price=Decimal("50.00"))
    # When its recompute job runs on a worker
    job = requests.bundle_recompute_enqueue(bundle_id=kit.pk, trigger="admin", reason="test")
    run_burst_worker()
    # Then the price follows (2 × 50, 10 % off) and the ledger shows the steps and result
    job.refresh_from_db()
    assert job.state == JobState.COMPLETED
    assert job.attempts == 1
    assert job.result["price"] == "90.00"
    assert job.result["changed"] is True
    assert Bundle.objects.get(pk=kit.pk).computed_price == Decimal("90.00")
    steps = [pct for kind, job_id, pct, _ in progress_log if job_id == str(job.pk)]
    assert steps == [25, 50, 75, 100]


def test_recompute_of_a_vanished_bundle_completes_saying_so(redis_conn):
    kit = make_bundle()
    job = requests.bundle_recompute_enqueue(bundle_id=kit.pk, trigger="signal")
    Bundle.objects.filter(pk=kit.pk).delete()
    run_burst_worker()
    job.refresh_from_db()
    assert job.state == JobState.COMPLETED
    assert job.attempts == 1  # not retried: retrying can't bring it back
    assert job.result == {
        "bundle_id": kit.pk,
        "skipped": True,
        "message": "Bundle no longer exists",
    }


@pytest.mark.parametrize(
    "first_asks, second_asks",
    [
        ({"force": True}, {"force": False}),
        ({"force": False}, {"force": True}),
        ({"update_search": False}, {"update_search": True}),
        ({"update_search": True}, {"update_search": False}),
    ],
)
def test_merging_recompute_requests_in_either_order_keeps_what_either_asked(
    redis_conn, first_asks, second_asks
):
    kit = make_bundle()
    first = requests.bundle_recompute_enqueue(bundle_id=kit.pk, trigger="signal", **first_asks)
    merged = requests.bundle_recompute_enqueue(bundle_id=kit.pk, trigger="admin", **second_asks)
    assert merged.pk == first.pk and merged.merged_count == 1
    # force if either forced; update search if either wanted it
    [(option, _)] = first_asks.items()
    expected = first_asks[option] or second_asks[option]
    assert merged.payload[option] is expected


def test_repeated_recompute_requests_merge_while_not_started(redis_conn):
    kit = make_bundle()
    first = requests.bundle_recompute_enqueue(bundle_id=kit.pk, trigger="signal", reason="a")
    second = requests.bundle_recompute_enqueue(
        bundle_id=kit.pk, trigger="admin", reason="b", force=True
    )
    assert second.pk == first.pk
    assert second.merged_count == 1
    assert second.payload["force"] is True  # the merged job does what either asked
    run_burst_worker()
    first.refresh_from_db()
    assert first.state == JobState.COMPLETED
    # Once it has run, a new request makes a new job
    third = requests.bundle_recompute_enqueue(bundle_id=kit.pk, trigger="signal")
    assert third.pk != first.pk


def test_bundle_recompute_request_refuses_an_unknown_id_and_creates_nothing(redis_conn):
    with pytest.raises(BundleNotFound, match="999999"):
        requests.bundle_recompute_request(bundle_id=999999, trigger="command")
    assert Job.objects.count() == 0


# --- fan-out --------------------------------------------------------------------------------


def test_fanout_puts_the_bundles_using_the_variants_into_the_pending_batch(redis_conn):
    camera, battery, other = make_variant(), make_variant(), make_variant()
    kit = make_bundle(components=[(camera, 1), (battery, 1)])
    solo = make_bundle(components=[(battery, 3)])
    make_bundle(components=[(other, 1)])
    # One batch is already pending with the kit: the fan-out fills it rather than adding one
    (pending,) = bundles_recompute_coalesced(bundle_ids=[kit.pk], trigger="admin")

    (fanout,) = variants_changed(variant_ids=[camera.pk, battery.pk], reason="import")
    # Run just the fan-out (inline, through the runner) to look at what it enqueued
    fanout = run_inline(fanout)

    assert fanout.state == JobState.COMPLETED
    assert fanout.result["bundles"] == 2
    assert fanout.result["batches"] == [str(pending.pk)]
    batch = jobs("recompute_batch").get()
    assert batch.payload["bundle_ids"] == sorted([kit.pk, solo.pk])
    assert batch.merged_count == 1
    assert sorted(batch.target_links.values_list("target_id", flat=True)) == sorted(
        [str(kit.pk), str(solo.pk)]
    )


def test_cancelling_a_running_fanout_keeps_the_batches_it_opened(redis_conn):
    """A batch is shared: other changes merge into it, so cancelling the fan-out that opened
    it (it is listed as its child) must not cancel the batch — bulk parents' children go."""
    from jobs.services import job_cancel

    camera, other = make_variant(), make_variant()
    kit = make_bundle(components=[(camera, 1)])
    solo = make_bundle(components=[(other, 1)])
    (fanout,) = variants_changed(variant_ids=[camera.pk], reason="import")
    # The fan-out runs and opens a batch (as its handler does); another change merges in
    Job.objects.filter(pk=fanout.pk).update(state=JobState.RUNNING)
    (batch,) = bundles_recompute_coalesced(bundle_ids=[kit.pk], trigger="signal", parent=fanout)
    bundles_recompute_coalesced(bundle_ids=[solo.pk], trigger="admin")

    job_cancel(job_id=fanout.pk)

    batch.refresh_from_db()
    assert batch.state == JobState.PENDING and not batch.cancel_requested
    assert sorted(batch.payload["bundle_ids"]) == sorted([kit.pk, solo.pk])


# --- reindex --------------------------------------------------------------------------------


def test_reindex_job_rewrites_the_entries_of_the_given_bundles(redis_conn):
    kit, solo = make_bundle(name="Kit"), make_bundle(name="Solo")
    Bundle.objects.filter(pk=kit.pk).update(name="Kit renamed")  # no signal: entry is stale
    job = requests.bundles_reindex_enqueue(bundle_ids=[kit.pk, solo.pk], trigger="command")
    run_burst_worker()
    job.refresh_from_db()
    assert job.state == JobState.COMPLETED
    assert job.result == {"reindexed": 2, "missing": []}
    assert Bundle.objects.get(pk=kit.pk).search_entry.title == "Kit renamed"


def test_reindex_all_and_vanished_ids(redis_conn):
    kit, solo = make_bundle(), make_bundle()
    everything = requests.bundles_reindex_enqueue(bundle_ids=None, trigger="schedule")
    some = requests.bundles_reindex_enqueue(bundle_ids=[kit.pk, solo.pk], trigger="admin")
    Bundle.objects.filter(pk=solo.pk).delete()
    run_burst_worker()
    everything.refresh_from_db()
    some.refresh_from_db()
    assert everything.result == {"reindexed": 1, "scope": "all"}
    assert some.state == JobState.COMPLETED
    assert some.result == {"reindexed": 1, "missing": [solo.pk]}


def test_reindex_requests_record_who_asked(redis_conn, django_user_model):
    # Given a staff user asking for reindexes of one bundle and of several
    user = django_user_model.objects.create_user(username="cat", password="x", is_staff=True)
    kit, solo = make_bundle(), make_bundle()
    one = requests.bundle_reindex_enqueue(bundle_id=kit.pk, trigger="admin", requested_by=user)
    many = requests.bundles_reindex_enqueue(
        bundle_ids=[kit.pk, solo.pk], trigger="admin", requested_by=user
    )
    # Then both ledger rows name them; without a user nobody is named
    anonymous = requests.bundle_reindex_enqueue(bundle_id=solo.pk, trigger="signal")
    assert Job.objects.get(pk=one.pk).requested_by == user
    assert Job.objects.get(pk=many.pk).requested_by == user
    assert Job.objects.get(pk=anonymous.pk).requested_by is None


def test_reindex_request_with_unknown_ids_names_them_and_creates_nothing(redis_conn):
    kit = make_bundle()
    with pytest.raises(BundleNotFound) as excinfo:
        requests.bundles_reindex_enqueue(bundle_ids=[kit.pk, 424242, 434343], trigger="admin")
    assert excinfo.value.ids == [424242, 434343]
    assert Job.objects.count() == 0


# --- consistency check ------------------------------------------------------------------------


@pytest.fixture
def mixed_catalog(redis_conn):
    """ok (active), drifted (active, fixable), broken (active, component deleted), draft ok."""
    good = make_bundle(name="Good")
    drifted = make_bundle(name="Drifted")
    gone = make_variant(name="Gone")
    broken = make_bundle(name="Broken", components=[(gone, 1)])
    draft = make_bundle(name="Draft", status="draft")
    drift(drifted)
    break_by_deleting_component(gone)
    return {"good": good, "drifted": drifted, "broken": broken, "draft": draft}


def run_check(**options) -> Job:
    job = requests.bundles_check_enqueue(trigger="command", **options)
    run_burst_worker()
    job.refresh_from_db()
    assert job.state == JobState.COMPLETED, job.errors
    return job


def test_check_without_fix_reports_and_changes_nothing(mixed_catalog, admins):
    job = run_check(scope="all")
    result = job.result
    assert result["checked"] == 4
    assert result["broken"] == 1
    assert result["ok"] == 2
    assert result["errors"] == 0
    broken_ids = {b["id"] for b in result["broken_bundles"]}
    assert broken_ids == {mixed_catalog["broken"].pk, mixed_catalog["drifted"].pk}
    reasons = next(b for b in result["broken_bundles"] if b["id"] == mixed_catalog["broken"].pk)
    assert reasons["reasons"][0]["code"] == "component_deleted"
    assert Bundle.objects.get(pk=mixed_catalog["drifted"].pk).computed_price == Decimal("1.00")
    assert Bundle.objects.get(pk=mixed_catalog["broken"].pk).status == "active"
    assert admins == []  # notify_admins was off


def test_check_with_fix_repairs_drift_and_marks_broken_bundles(mixed_catalog):
    job = run_check(scope="active", fix=True)
    assert job.result["checked"] == 3  # the draft is not in scope "active"
    assert job.result["fixed"] == 1
    assert job.result["broken"] == 1
    assert [b["id"] for b in job.result["broken_bundles"]] == [mixed_catalog["broken"].pk]
    drifted = Bundle.objects.get(pk=mixed_catalog["drifted"].pk)
    assert drifted.computed_price != Decimal("1.00")
    broken = Bundle.objects.get(pk=mixed_catalog["broken"].pk)
    assert broken.status == "broken"
    assert broken.broken_reasons[0]["code"] == "component_deleted"
    # The broken scope now finds exactly that bundle
    again = run_check(scope="broken")
    assert again.result["checked"] == 1


def test_check_of_a_list_of_ids_skips_vanished_ones(mixed_catalog):
    good, draft = mixed_catalog["good"], mixed_catalog["draft"]
    job = requests.bundles_check_enqueue(scope=[good.pk, draft.pk], trigger="graphql")
    Bundle.objects.filter(pk=draft.pk).delete()
    run_burst_worker()
    job.refresh_from_db()
    assert job.state == JobState.COMPLETED
    assert job.result["checked"] == 1
    assert job.result["missing"] == [draft.pk]


def test_check_mails_the_admins_when_it_finds_problems_and_notify_is_set(mixed_catalog, admins):
    job = run_check(scope="all", fix=True, notify_admins=True)
    assert job.result["notified"] is True
    assert len(admins) == 1
    mail = admins[0]
    assert mail.to == ["ops@example.com"]
    assert "1 broken" in mail.subject
    assert "Broken (id" in mail.body
    assert "component_deleted" in mail.body
    assert str(job.pk) in mail.body


def test_a_clean_check_mails_nobody(redis_conn, admins):
    make_bundle()
    job = run_check(scope="all", notify_admins=True)
    assert job.result["notified"] is False
    assert admins == []


def test_check_request_refuses_bad_scopes_and_creates_nothing(redis_conn):
    kit = make_bundle()
    with pytest.raises(InvalidScope, match="all.*active.*broken"):
        requests.bundles_check_enqueue(scope="everything", trigger="admin")
    with pytest.raises(BundleNotFound, match="777777"):
        requests.bundles_check_enqueue(scope=[kit.pk, 777777], trigger="admin")
    with pytest.raises(InvalidJobOptions):
        requests.bundles_check_enqueue(scope=[], trigger="admin")
    assert Job.objects.count() == 0


def test_check_reports_chunked_progress(redis_conn, progress_log, monkeypatch):
    from bundles import services

    for _ in range(5):
        make_bundle()
    real = services.bundles_check
    monkeypatch.setattr(services, "bundles_check", lambda **kw: real(**{**kw, "chunk_size": 2}))
    job = run_check(scope="all")
    steps = [pct for kind, job_id, pct, _ in progress_log if job_id == str(job.pk)]
    assert steps == [40, 80, 100]


# --- maintenance ------------------------------------------------------------------------------


def test_maintenance_checks_with_fix_reindexes_and_purges_old_jobs(
    mixed_catalog, settings, redis_conn
):
    settings.JOBS_RETENTION_DAYS = 30
    old = enqueue("reindex", payload={"bundle_ids": None}, trigger="schedule")
    recent = enqueue("reindex", payload={"bundle_ids": None}, trigger="schedule")
    Job.objects.filter(pk=old.pk).update(
        state=JobState.COMPLETED, settled_at=timezone.now() - timedelta(days=31)
    )
    Job.objects.filter(pk=recent.pk).update(
        state=JobState.COMPLETED, settled_at=timezone.now() - timedelta(days=29)
    )
    redis_conn.flushdb()  # those two rows were only set dressing

    job = enqueue("maintenance", payload={}, trigger="schedule")
    run_burst_worker()
    job.refresh_from_db()

    assert job.state == JobState.COMPLETED, job.errors
    assert job.result["check"]["fixed"] == 1
    assert job.result["check"]["broken"] == 1
    assert job.result["reindexed"] == 4
    assert job.result["purged"] == 1
    assert not Job.objects.filter(pk=old.pk).exists()
    assert Job.objects.filter(pk=recent.pk).exists()
    assert Bundle.objects.get(pk=mixed_catalog["broken"].pk).status == "broken"


# --- bulk operations --------------------------------------------------------------------------


@pytest.fixture
def drafts(redis_conn):
    return [make_bundle(status="draft", name=f"Draft {i}") for i in range(7)]


def test_bulk_operation_runs_one_child_per_batch_and_its_progress_follows_them(drafts, monkeypatch):
    from bundles import handlers as bundle_jobs

    ids = [b.pk for b in drafts]
    parent = bundles_bulk_enqueue(
        operation="activate", bundle_ids=ids, batch_size=3, trigger="admin"
    )
    # The batches exist from the start, and went to RQ with their parent
    queued = bulk_batch_jobs(parent=parent)
    assert [c.payload["bundle_ids"] for c in queued] == [ids[0:3], ids[3:6], ids[6:]]
    assert [c.reason for c in queued] == [f"Batch {n}/3 of bulk activate" for n in (1, 2, 3)]
    assert {(c.trigger, c.state) for c in queued} == {("admin", JobState.PENDING)}
    assert rq_queued("bundle-bulk-operation") == 4
    # (the parent's progress as each batch starts: the runner's on-settle hook writes it)
    parent_steps = []
    real = bundle_jobs.BATCH_OPERATIONS["activate"]

    def recording(ids, continue_on_error, progress):
        parent_steps.append(Job.objects.values_list("progress", flat=True).get(pk=parent.pk))
        return real(ids, continue_on_error, progress)

    monkeypatch.setitem(bundle_jobs.BATCH_OPERATIONS, "activate", recording)
    run_burst_worker()

    parent.refresh_from_db()
    children = bulk_batch_jobs(parent=parent)
    assert [c.pk for c in children] == [c.pk for c in queued]
    assert [len(c.payload["bundle_ids"]) for c in children] == [3, 3, 1]
    assert all(c.state == JobState.COMPLETED for c in children)
    assert [c.payload["batch"] for c in children] == [1, 2, 3]
    assert parent.state == JobState.COMPLETED
    assert parent.progress == 100
    assert parent.result["ok"] == 7
    assert parent.result["completed_batches"] == 3
    assert parent.result["failed_batches"] == []
    assert set(Bundle.objects.filter(pk__in=ids).values_list("status", flat=True)) == {"active"}
    # The parent's progress climbed batch by batch, and the last step says all are done
    assert [*parent_steps, parent.progress] == [0, 33, 66, 100]
    assert parent.progress_message == "3/3 batches done"


def test_a_bulk_job_of_five_batches_completes_with_one_bulk_worker_and_says_5_of_5(
    drafts, start_worker
):
    # Given a 5-batch bulk job and one worker on the bulk queue (it runs the parent too)
    ids = [b.pk for b in drafts[:5]]
    with transaction.atomic():
        parent = bundles_bulk_enqueue(
            operation="activate", bundle_ids=ids, batch_size=1, trigger="admin"
        )
    parent_rq_id = Job.objects.get(pk=parent.pk).rq_job_id
    start_worker("bundle-bulk-operation")
    # Then every batch and the parent complete, and the parent reports 5/5
    wait_until(
        lambda: Job.objects.get(pk=parent.pk).state == JobState.COMPLETED,
        timeout=90,
    )
    parent.refresh_from_db()
    children = bulk_batch_jobs(parent=parent)
    assert [c.state for c in children] == [JobState.COMPLETED] * 5
    assert parent.progress == 100 and parent.progress_message == "5/5 batches done"
    assert parent.result["completed_batches"] == 5
    # The parent held no worker while its batches waited: its RQ delivery returned at once,
    # leaving the row awaiting its children, and every batch ran in its own RQ delivery on
    # the one worker (none inline inside the parent's process, so none to orphan if it dies)
    parent_delivery = RQJob.fetch(parent_rq_id, connection=django_rq.get_connection())
    assert parent_delivery.get_status() == "finished"
    # (the forking worker records what its horse reports: the horse returned "await")
    assert parent_delivery.return_value() == {
        "attempt": 1,
        "outcome": "await",
        SETTLED_BY_WORKER: True,
    }
    assert parent.rq_job_id.startswith("children-") and parent.worker_name == ""
    workers = {c.worker_name for c in children}
    assert len(workers) == 1 and not workers.pop().startswith("inline")
    assert all(c.rq_job_id.startswith("job-") for c in children)
    assert all(c.started_at >= parent.started_at for c in children)


def make_empty_draft() -> Bundle:
    """A draft bundle without components: activating it is refused."""
    bundle = make_bundle(status="draft")
    BundleComponent.objects.filter(bundle=bundle).delete()
    Job.objects.all().delete()  # the deletes' signals asked for a recompute; not wanted here
    return bundle


def test_bulk_continue_on_error_finishes_every_batch_and_reports_the_errors(drafts):
    empty = make_empty_draft()
    ids = [empty.pk] + [b.pk for b in drafts]
    parent = bundles_bulk_enqueue(
        operation="activate", bundle_ids=ids, batch_size=3, continue_on_error=True, trigger="admin"
    )
    run_burst_worker()
    parent.refresh_from_db()
    assert parent.state == JobState.COMPLETED
    assert parent.result["ok"] == 7
    assert [e["id"] for e in parent.result["errors"]] == [empty.pk]
    assert "no components" in parent.result["errors"][0]["message"]
    assert Bundle.objects.filter(pk__in=[b.pk for b in drafts], status="active").count() == 7


def hold_back_later_batches(parent: Job) -> None:
    """Take batches 2.. out of RQ (as if queued behind a long backlog): only batch 1 starts."""
    queue = django_rq.get_queue("bundle-bulk-operation")
    for child in bulk_batch_jobs(parent=parent)[1:]:
        queue.remove(child.rq_job_id)


def test_bulk_without_continue_on_error_stops_at_the_failed_batch(drafts):
    empty = make_empty_draft()
    ids = [empty.pk] + [b.pk for b in drafts]
    parent = bundles_bulk_enqueue(
        operation="activate",
        bundle_ids=ids,
        batch_size=3,
        continue_on_error=False,
        trigger="admin",
    )
    # (batches run in parallel on workers: keep 2 and 3 queued behind a backlog, not started)
    hold_back_later_batches(parent)
    run_burst_worker()
    parent.refresh_from_db()
    children = bulk_batch_jobs(parent=parent)
    assert parent.state == JobState.FAILED
    assert "Batch 1/3 failed" in parent.errors[-1]["message"]
    assert children[0].state == JobState.FAILED
    assert "no components" in children[0].errors[-1]["message"]
    # the later batches never ran
    assert [c.state for c in children[1:]] == [JobState.CANCELLED, JobState.CANCELLED]
    later = [pk for c in children[1:] for pk in c.payload["bundle_ids"]]
    assert set(Bundle.objects.filter(pk__in=later).values_list("status", flat=True)) == {"draft"}


def test_a_sync_bulk_that_stops_on_error_leaves_no_batch_pending(drafts):
    from jobs.runner import run_inline

    # Given a stop-on-error bulk activation run inline (--sync: no worker, no Redis delivery)
    empty = make_empty_draft()
    parent = bundles_bulk_enqueue(
        operation="activate",
        bundle_ids=[empty.pk] + [b.pk for b in drafts],
        batch_size=3,
        continue_on_error=False,
        trigger="command",
        dispatch_on_commit=False,
    )
    # When it runs and batch 1 fails
    run_inline(parent)
    # Then the parent failed and the batches that never ran are settled as cancelled
    parent.refresh_from_db()
    children = bulk_batch_jobs(parent=parent)
    assert parent.state == JobState.FAILED
    assert children[0].state == JobState.FAILED
    assert [c.state for c in children[1:]] == [JobState.CANCELLED, JobState.CANCELLED]
    assert all(c.settled_at is not None for c in children)


def test_retrying_a_failed_bulk_parent_runs_its_failed_and_cancelled_batches_again(
    drafts, django_user_model
):
    from jobs.services import job_retry

    # Given a bulk activation that failed at batch 1 (an empty draft) and cancelled 2 and 3
    empty = make_empty_draft()
    ids = [empty.pk] + [b.pk for b in drafts]
    parent = bundles_bulk_enqueue(
        operation="activate", bundle_ids=ids, batch_size=3, continue_on_error=False, trigger="admin"
    )
    hold_back_later_batches(parent)
    run_burst_worker()
    parent.refresh_from_db()
    assert parent.state == JobState.FAILED
    # When the cause is fixed and an operator retries the parent
    BundleComponent.objects.create(bundle=empty, variant=make_variant(), quantity=1)
    operator = django_user_model.objects.create_user(username="op", password="x", is_staff=True)
    operator = grant(operator, "jobs.retry_job")
    job_retry(job_id=parent.pk, user=operator)
    run_burst_worker()
    # Then every batch ran again and completed, keeping the first attempt's error
    parent.refresh_from_db()
    children = bulk_batch_jobs(parent=parent)
    assert parent.state == JobState.COMPLETED, parent.errors
    assert parent.result["failed_batches"] == [] and parent.result["ok"] == 8
    assert [c.state for c in children] == [JobState.COMPLETED] * 3
    # (batch 1 used both its attempts the first time: bulk_batch allows 2)
    assert children[0].attempts == 3 and len(children[0].errors) == 2
    assert all("no components" in e["message"] for e in children[0].errors)
    assert {c.last_action_by_id for c in children} == {operator.pk}
    assert set(Bundle.objects.filter(pk__in=ids).values_list("status", flat=True)) == {"active"}


def test_a_bulk_parent_waits_out_a_retrying_batchs_backoff(drafts, monkeypatch):
    from bundles import handlers as bundle_jobs

    # Given a parent whose only batch failed on another worker and retries in 1.5 s
    ids = [b.pk for b in drafts]
    parent = bundles_bulk_enqueue(
        operation="activate", bundle_ids=ids, trigger="admin", dispatch_on_commit=False
    )
    [child] = bulk_batch_jobs(parent=parent)
    retry_at = timezone.now() + timedelta(seconds=1.5)
    Job.objects.filter(pk=child.pk).update(
        state=JobState.RETRYING, attempts=1, next_attempt_at=retry_at, errors=[{"attempt": 1}]
    )
    ran_at = []
    real = bundle_jobs.BATCH_OPERATIONS["activate"]

    def recording(ids, continue_on_error, progress):
        ran_at.append(timezone.now())
        return real(ids, continue_on_error, progress)

    monkeypatch.setitem(bundle_jobs.BATCH_OPERATIONS, "activate", recording)
    # When the parent runs
    parent = run_inline(parent)
    # Then it ran the batch once, and not before the batch's next attempt was due
    assert parent.state == JobState.COMPLETED
    assert len(ran_at) == 1 and ran_at[0] >= retry_at
    assert Job.objects.get(pk=child.pk).attempts == 2


def test_a_bulk_parent_on_its_first_run_does_not_rerun_a_batch_that_failed_before_it_started(
    drafts,
):
    # Given a stop-on-error bulk activation whose batch 1 (an empty draft) another worker ran
    # and failed for good before the parent started
    empty = make_empty_draft()
    ids = [empty.pk] + [b.pk for b in drafts]
    parent = bundles_bulk_enqueue(
        operation="activate",
        bundle_ids=ids,
        batch_size=4,
        continue_on_error=False,
        trigger="admin",
        dispatch_on_commit=False,
    )
    first, second = bulk_batch_jobs(parent=parent)
    first = run_inline(run_inline(first))  # bulk_batch has 2 attempts
    assert first.state == JobState.FAILED and first.attempts == 2
    # When the parent runs for the first time
    parent = run_inline(parent)
    # Then it stops at that batch without running it again (only a retry of the parent does)
    assert parent.state == JobState.FAILED
    assert "Batch 1/2 failed" in parent.errors[-1]["message"]
    assert Job.objects.get(pk=first.pk).attempts == 2
    assert Job.objects.get(pk=second.pk).cancel_requested  # never runs
    later = second.payload["bundle_ids"]
    assert set(Bundle.objects.filter(pk__in=later).values_list("status", flat=True)) == {"draft"}


def test_a_bulk_parent_recorded_without_batches_does_nothing_when_it_runs(drafts):
    # Given a bulk parent written by enqueue itself, with no children: no door records one so
    # (bundles_bulk_enqueue writes the batches with it; generic enqueue schedules are gone)
    ids = [b.pk for b in drafts]
    parent = enqueue(
        "bulk_operation",
        payload={"operation": "activate", "bundle_ids": ids, "batch_size": 5},
        trigger="schedule",
    )
    assert not parent.children.exists()
    # When a worker runs it
    run_burst_worker()
    # Then it settles at once with no batch, and no bundle was touched
    parent.refresh_from_db()
    assert parent.state == JobState.COMPLETED, parent.errors
    assert parent.result["batches"] == 0 and not parent.children.exists()
    assert Bundle.objects.filter(pk__in=ids, status="active").count() == 0


def test_bulk_enqueue_in_a_rolled_back_transaction_leaves_neither_parent_nor_batches(drafts):
    with pytest.raises(RuntimeError), transaction.atomic():
        bundles_bulk_enqueue(
            operation="activate", bundle_ids=[b.pk for b in drafts], batch_size=2, trigger="admin"
        )
        raise RuntimeError("the caller's transaction fails")
    assert Job.objects.count() == 0
    assert rq_queued() == 0


@pytest.mark.parametrize("operation", ["recompute", "reindex", "check", "archive"])
def test_each_bulk_operation_runs_through_its_service(drafts, operation):
    ids = [b.pk for b in drafts]
    for bundle in drafts:
        drift(bundle)
    parent = bundles_bulk_enqueue(
        operation=operation, bundle_ids=ids, batch_size=4, trigger="admin"
    )
    run_burst_worker()
    parent.refresh_from_db()
    assert parent.state == JobState.COMPLETED, parent.errors
    assert parent.result["batches"] == 2
    assert parent.result["errors"] == []
    prices = set(Bundle.objects.filter(pk__in=ids).values_list("computed_price", flat=True))
    if operation in ("recompute", "check"):
        assert Decimal("1.00") not in prices  # drift repaired
    if operation == "archive":
        assert set(Bundle.objects.filter(pk__in=ids).values_list("status", flat=True)) == {
            "archived"
        }


def test_cancelling_a_bulk_parent_cancels_its_unstarted_children(drafts):
    from jobs.services import job_cancel

    parent = bundles_bulk_enqueue(
        operation="activate", bundle_ids=[b.pk for b in drafts], batch_size=2, trigger="admin"
    )
    # Cancel as soon as the first batch has run
    from bundles import handlers as bundle_jobs

    real = bundle_jobs.BATCH_OPERATIONS["activate"]

    def first_batch_then_cancel(ids, continue_on_error, progress):
        outcome = real(ids, continue_on_error, progress)
        job_cancel(job_id=parent.pk)
        return outcome

    bundle_jobs.BATCH_OPERATIONS["activate"] = first_batch_then_cancel
    try:
        parent = run_inline(parent)
    finally:
        bundle_jobs.BATCH_OPERATIONS["activate"] = real
    states = [c.state for c in bulk_batch_jobs(parent=parent)]
    assert parent.state == JobState.CANCELLED
    assert states[0] in (JobState.COMPLETED, JobState.CANCELLED)
    assert set(states[1:]) == {JobState.CANCELLED}
    assert Bundle.objects.filter(status="active").count() == 2  # only the first batch ran


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"batch_size": 0}, "between 1 and 1000"),
        ({"batch_size": 1001}, "between 1 and 1000"),
        ({"bundle_ids": []}, "No bundles selected"),
        ({"operation": "explode"}, "Unknown bulk operation"),
    ],
)
def test_bulk_enqueue_refuses_bad_input_and_creates_nothing(drafts, options, message):
    request = {
        "operation": "recompute",
        "bundle_ids": [b.pk for b in drafts],
        "batch_size": 10,
        "continue_on_error": True,
        "trigger": "admin",
        **options,
    }
    with pytest.raises(InvalidJobOptions, match=message):
        bundles_bulk_enqueue(**request)
    assert Job.objects.count() == 0


def test_bulk_enqueue_names_every_unknown_id(drafts):
    with pytest.raises(BundleNotFound) as excinfo:
        bundles_bulk_enqueue(
            operation="recompute",
            bundle_ids=[drafts[0].pk, 880001, 880002],
            batch_size=10,
            continue_on_error=True,
            trigger="graphql",
        )
    assert excinfo.value.ids == [880001, 880002]
    assert "880001, 880002" in excinfo.value.message
    assert Job.objects.count() == 0


def test_notify_without_admins_says_so_instead_of_notified(mixed_catalog, settings, mailoutbox):
    settings.ADMINS = []
    job = run_check(scope="all", fix=True, notify_admins=True)
    assert job.result["notified"] is False
    assert job.result["notify"] == "no ADMINS set"
    assert mailoutbox == []
