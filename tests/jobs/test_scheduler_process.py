"""The real scheduler process (``manage.py run_scheduler``) against a real Redis and workers:
resync after FLUSHALL, a Redis outage waited out, one active instance with takeover, one job
per fire, missed fires within / beyond the grace period.

Every-minute schedules make these tests wait for real minute boundaries (up to ~70 s each).
Each test prints its measured times (``-s`` shows them).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import pytest
import redis

from config.embedded_redis import free_port, start_embedded_redis
from jobs.models import Job, Schedule, ScheduleFire
from jobs.scheduling.fire import fire
from jobs.scheduling.scheduler_heartbeat import ACTIVE_KEY
from tests.support import ROOT, test_database_url, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis]

ZSET = "rq:scheduler:scheduled_jobs"
NAME = "every-minute-probe"
RQ_ID = f"schedule-{NAME}"


def probe_schedule(*, grace: int = 3600, cron: str = "* * * * *") -> Schedule:
    """An every-minute schedule whose fires make test_noop ledger jobs (no dedup key, so two
    jobs for one fire would show as two rows)."""
    return Schedule.objects.create(
        name=NAME,
        cron=cron,
        request="tests.noop",
        arguments={"token": "probe"},
        grace_seconds=grace,
        description="probe",
    )


def other_schedules_off() -> None:
    Schedule.objects.exclude(name=NAME).update(enabled=False)


class Proc:
    """A manage.py subprocess on the test database and the given Redis, with its log kept."""

    def __init__(self, *args: str, redis_url: str | None = None, tag: str = "proc") -> None:
        env = dict(os.environ, DATABASE_URL=test_database_url(), LOG_LEVEL="INFO")
        env["DJANGO_SETTINGS_MODULE"] = "config.settings"
        env.setdefault("SECRET_KEY", "test-suite-key-not-a-secret")
        env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        if redis_url:
            env["REDIS_URL"] = redis_url
        (ROOT / "var").mkdir(exist_ok=True)
        self.log_path = ROOT / "var" / f"test-{tag}-{os.getpid()}-{time.monotonic_ns()}.log"
        self.log = open(self.log_path, "w+")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(  # noqa: S603 - fixed argv
            [sys.executable, str(ROOT / "manage.py"), *args],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def alive(self) -> bool:
        return self.proc.poll() is None

    def output(self) -> str:
        self.log.flush()
        return self.log_path.read_text()

    def stop(self) -> None:
        if self.alive():
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.log.close()
        self.log_path.unlink(missing_ok=True)


@pytest.fixture
def procs():
    started: list[Proc] = []

    def start(*args: str, **kwargs) -> Proc:
        proc = Proc(*args, **kwargs)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()


def scheduler(procs, *, interval: int = 2, lock_ttl: int = 10, redis_url=None, tag="scheduler"):
    return procs(
        "run_scheduler", "--interval", str(interval), "--lock-ttl", str(lock_ttl),
        redis_url=redis_url, tag=tag,
    )  # fmt: skip


def worker(procs, *, redis_url=None):
    return procs("run_worker", "--import", "tests.jobs.kinds", "bundle-recompute",
                 redis_url=redis_url, tag="worker")  # fmt: skip


def wait_for_second(low: int, high: int) -> None:
    """Wait until the wall clock's second lies in [low, high] (a spot before a minute's fire)."""
    wait_until(lambda: low <= datetime.now(UTC).second <= high, timeout=70, interval=0.2)


def next_minute(now: datetime | None = None) -> datetime:
    now = now or datetime.now(UTC)
    return now.replace(second=0, microsecond=0) + timedelta(minutes=1)


def probe_jobs(fire_at: datetime) -> list[Job]:
    return list(
        Job.objects.filter(
            schedule_id=NAME, pk__in=ScheduleFire.objects.filter(fire_at=fire_at).values("job")
        )
    )


def fires_at(fire_at: datetime) -> list[ScheduleFire]:
    return list(ScheduleFire.objects.filter(schedule__name=NAME, fire_at=fire_at))


def test_flushall_registers_every_enabled_schedule_again_and_a_fire_in_the_gap_runs_once(
    procs, redis_conn
):
    # Given the probe and the default schedules, a scheduler and a worker
    probe_schedule()
    enabled = {f"schedule-{n}" for n in Schedule.objects.filter(enabled=True).values_list(
        "name", flat=True)}  # fmt: skip
    sched = scheduler(procs, interval=5, lock_ttl=30)
    worker(procs)
    registered = lambda: {m.decode() for m in redis_conn.zrange(ZSET, 0, -1)}  # noqa: E731
    wait_until(lambda: registered() == enabled, timeout=60)

    # When Redis is emptied while the scheduler runs
    redis_conn.flushall()
    flushed = time.monotonic()
    wait_until(lambda: registered() == enabled, timeout=60, interval=0.1)
    resync = time.monotonic() - flushed
    print(f"\nresync after FLUSHALL: {resync:.1f}s (interval 5 s, {len(enabled)} schedules)")

    # And when Redis is emptied just before a fire while the scheduler is paused, so it only
    # looks again after the fire time has passed (the entry is gone: nobody fires it)
    wait_for_second(52, 56)
    due = next_minute()
    os.kill(sched.proc.pid, signal.SIGSTOP)
    redis_conn.flushall()
    wait_until(lambda: datetime.now(UTC) >= due + timedelta(seconds=3), timeout=30)
    os.kill(sched.proc.pid, signal.SIGCONT)
    resumed = time.monotonic()

    # Then every schedule is back, and the missed fire ran once, as one ledger job
    wait_until(lambda: registered() == enabled, timeout=60, interval=0.1)
    print(f"resync after FLUSHALL + pause past a fire: {time.monotonic() - resumed:.1f}s")
    wait_until(lambda: len(probe_jobs(due)) == 1, timeout=60)
    wait_until(lambda: Job.objects.filter(schedule_id=NAME, state="completed").count() >= 1,
               timeout=30)  # fmt: skip
    assert len(fires_at(due)) == 1 and len(probe_jobs(due)) == 1
    assert sched.alive(), sched.output()


def test_redis_stopped_30s_the_scheduler_stays_alive_and_the_next_fire_runs(procs, tmp_path):
    # Given a private Redis (so it can be stopped), a scheduler and a worker on it
    port = free_port()
    server = start_embedded_redis(port=port, workdir=str(tmp_path))
    url = server.url
    try:
        probe_schedule()
        other_schedules_off()
        sched = scheduler(procs, interval=2, lock_ttl=10, redis_url=url)
        work = worker(procs, redis_url=url)
        conn = redis.Redis.from_url(url)
        wait_until(lambda: conn.zscore(ZSET, RQ_ID) is not None, timeout=60)
        # (the worker must be up first: one starting during the outage exits, and bin/run's
        # supervisor, not this test, is what restarts it)
        wait_until(lambda: conn.scard("rq:workers") >= 1, timeout=60)

        # When Redis is down for 30 seconds and comes back (empty: no persistence)
        server.stop()
        down_at = time.monotonic()
        wait_until(lambda: time.monotonic() - down_at >= 30, timeout=40, interval=0.5)
        assert sched.alive(), sched.output()
        server = start_embedded_redis(port=port, workdir=str(tmp_path))
        back_at = datetime.now(UTC)
        if not work.alive():
            # An rq worker may exit on a refused connection outside its retrying dequeue; under
            # bin/run the supervisor restarts it (tests/e2e/test_demo_supervisor.py). This test
            # is about the scheduler, so it plays the supervisor here, and says so.
            print(f"\nworker exited during the outage:\n{work.output()[-1500:]}")
            work = worker(procs, redis_url=url)

        # Then the scheduler is still alive, registers again, and the next fire makes its job
        wait_until(lambda: conn.zscore(ZSET, RQ_ID) is not None, timeout=60)
        print(f"\nre-registered {time.monotonic() - down_at - 30:.1f}s after Redis came back")
        try:
            wait_until(
                lambda: Job.objects.filter(schedule_id=NAME, created_at__gte=back_at).exists(),
                timeout=90,
            )
        except AssertionError:
            pytest.fail(
                f"no fire after the outage\n{sched.output()[-3000:]}\n"
                f"worker alive={work.alive()}\n{work.output()[-3000:]}"
            )
        assert sched.alive()
        log = sched.output()
        assert log.count("cannot reach Redis") == 1, log  # logged once per outage
        assert "resumed after" in log
    finally:
        server.stop()


def test_two_schedulers_one_active_the_other_takes_over_and_each_fire_makes_one_job(
    procs, redis_conn
):
    # Given the probe and two scheduler processes
    probe_schedule()
    other_schedules_off()
    first = scheduler(procs, interval=2, lock_ttl=10, tag="first")
    wait_until(lambda: redis_conn.get(ACTIVE_KEY), timeout=60)
    second = scheduler(procs, interval=2, lock_ttl=10, tag="second")
    worker(procs)
    active = redis_conn.get(ACTIVE_KEY).decode()
    assert active.endswith(f"pid {first.proc.pid}")
    # Both run through a fire: one job for it
    due = next_minute()
    wait_until(lambda: len(probe_jobs(due)) == 1, timeout=75)
    assert redis_conn.get(ACTIVE_KEY).decode() == active  # the second only waits

    # When the active one dies without a word (no lock release)
    first.proc.send_signal(signal.SIGKILL)
    first.proc.wait(timeout=10)
    killed = time.monotonic()
    wait_until(
        lambda: (redis_conn.get(ACTIVE_KEY) or b"").decode().endswith(f"pid {second.proc.pid}"),
        timeout=60,
        interval=0.1,
    )
    takeover = time.monotonic() - killed
    print(f"\ntakeover after SIGKILL of the active scheduler: {takeover:.1f}s (TTL 10 s)")
    assert takeover < 60

    # Then the next fire runs once too
    due = next_minute()
    wait_until(lambda: len(probe_jobs(due)) == 1, timeout=75)
    time.sleep(3)  # a duplicate would come from the same cycle
    for fired in ScheduleFire.objects.filter(schedule__name=NAME):
        assert len(probe_jobs(fired.fire_at)) == 1
    assert second.alive()


def test_a_fire_asked_for_twice_makes_one_job(redis_conn):
    # Given one fire time, asked for by two racing schedulers (or a restart at the fire time)
    probe_schedule()
    at = datetime.now(UTC).replace(second=0, microsecond=0)
    # When
    first = fire(NAME, fire_at=at)
    second = fire(NAME, fire_at=at)
    # Then
    assert "job" in first and "ran already" in second["skipped"]
    assert Job.objects.filter(schedule_id=NAME).count() == 1


def test_missed_fire_within_grace_runs_once_on_recovery_beyond_grace_is_skipped(procs, redis_conn):
    # Given two every-minute schedules whose entries were due while the scheduler was down:
    # one 10 minutes ago with an hour's grace, one 2 hours ago with 10 minutes' grace
    from jobs.scheduling.sync import register_schedules

    probe = probe_schedule(grace=3600)
    other_schedules_off()
    late = Schedule.objects.create(
        name="hourly-probe", cron="0 * * * *", request="tests.noop",
        arguments={"token": "late"}, grace_seconds=600,
    )  # fmt: skip
    register_schedules()
    now = time.time()
    redis_conn.zadd(ZSET, {RQ_ID: now - 600, "schedule-hourly-probe": now - 7200})
    Schedule.objects.filter(pk__in=[probe.pk, late.pk]).update(
        created_at=datetime.now(UTC) - timedelta(days=1)
    )

    # When the scheduler comes back (and a worker)
    scheduler(procs)
    worker(procs)

    # Then the one within grace ran once (not ten catch-up runs), the other was skipped
    missed = datetime.fromtimestamp(now - 600, UTC)
    wait_until(lambda: ScheduleFire.objects.filter(schedule=late).exists(), timeout=60)
    wait_until(lambda: len(probe_jobs(missed)) == 1, timeout=60)
    [skipped] = ScheduleFire.objects.filter(schedule=late)
    assert skipped.outcome == "skipped" and skipped.job is None
    late.refresh_from_db()
    assert "skipped" in late.last_skipped_note and "beyond the grace period of 600s" in \
        late.last_skipped_note  # fmt: skip
    assert not Job.objects.filter(schedule_id="hourly-probe").exists()
    # rescheduled at the next cron time, not in a burst of the nine other missed minutes
    assert redis_conn.zscore(ZSET, RQ_ID) > time.time()
    before_start = datetime.fromtimestamp(now, UTC)
    assert ScheduleFire.objects.filter(schedule=probe, fire_at__lt=before_start).count() == 1


def test_an_edit_or_disable_in_the_table_reaches_the_running_scheduler_without_restart(
    procs, redis_conn
):
    # Given a running scheduler holding the probe every minute
    probe = probe_schedule()
    scheduler(procs, interval=2, lock_ttl=10)
    wait_until(lambda: redis_conn.zscore(ZSET, RQ_ID) is not None, timeout=60)
    # When the row changes behind its back (no on-commit sync: only the loop's diff can see it)
    Schedule.objects.filter(pk=probe.pk).update(cron="0 5 * * *")
    edited = time.monotonic()
    # Then the next enqueue moves to 05:00 within a cycle or two
    from jobs.scheduling.cron import next_run

    expected = next_run("0 5 * * *").timestamp()
    wait_until(lambda: redis_conn.zscore(ZSET, RQ_ID) == expected, timeout=60, interval=0.1)
    print(f"\nedit seen by the running scheduler after {time.monotonic() - edited:.1f}s")
    # And disabling it takes it out
    Schedule.objects.filter(pk=probe.pk).update(enabled=False)
    wait_until(lambda: redis_conn.zscore(ZSET, RQ_ID) is None, timeout=60, interval=0.1)
