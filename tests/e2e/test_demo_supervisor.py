"""``bin/run``'s supervisor keeps the demo running through a Redis restart: children that exit
are restarted (with a limit), the scheduler waits the outage out, and everything is back. Nothing
outlives it, even when it is SIGKILLed; a paused queue stays paused across Redis and demo
restarts."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import redis

from config.embedded_redis import free_port, start_embedded_redis
from jobs.maintenance.ledger_pass import RECONCILE_DUE_KEY
from jobs.pause import PAUSED_QUEUES_KEY
from jobs.rq_compat import WORKERS_REGISTRY_KEY
from jobs.scheduling.scheduler_heartbeat import HEARTBEAT_KEY
from tests.e2e.test_demo import (
    ENQUEUE_SLOW,
    job_row,
    processes_with_env,
    run_demo,
    stop_demo,
    wait_for,
)

BASE_DIR = Path(__file__).resolve().parents[2]


def test_demo_keeps_running_through_a_redis_restart(tmp_path):
    # Given the demo running on a Redis this test can stop
    port = free_port()
    server = start_embedded_redis(port=port, workdir=str(tmp_path))
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "SECRET_KEY"}}
    env.update(REDIS_URL=server.url, VAR_DIR=str(tmp_path / "var"), DEMO_TEST_MARKER=str(tmp_path))
    proc = subprocess.Popen(  # noqa: S603 - fixed argv
        [sys.executable, "-m", "config.demo", "--port", str(free_port()), "--bundles", "5"],
        cwd=BASE_DIR, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True).start()
    conn = redis.Redis.from_url(server.url, socket_connect_timeout=1)
    try:
        wait_for(lambda: any("Login:" in ln for ln in lines), timeout=240, what="the demo")

        # When Redis goes away for 20 seconds and comes back empty
        server.stop()
        time.sleep(20)  # the outage itself: nothing to wait for but the clock
        assert proc.poll() is None, "".join(lines[-30:])
        server = start_embedded_redis(port=port, workdir=str(tmp_path))
        back = time.monotonic()

        # Then the demo is still running and the scheduler beats again on the new Redis
        # (resumed, or restarted by the supervisor). rq workers that waited the outage out keep
        # serving but do not re-register an emptied Redis; ones the supervisor restarted do.
        wait_for(lambda: conn.exists(HEARTBEAT_KEY), timeout=90, what="the scheduler's beat")
        print(
            f"\nscheduler back {time.monotonic() - back:.1f}s after Redis restarted; "
            f"{conn.scard(WORKERS_REGISTRY_KEY)} workers registered"
        )
        assert proc.poll() is None
        output = "".join(lines)
        assert "stopping everything" not in output, output[-3000:]
        print("".join(ln for ln in lines if ln.startswith(("!!", "==> restarting"))))
    finally:
        stop_demo(proc, str(tmp_path))
        server.stop()


WORKER_ARGS = {"DEMO_WORKER_ARGS": "--import tests.jobs.kinds"}


def manage_shell(demo: dict, code: str, *, redis_url: str | None = None) -> str:
    """``manage.py shell -c code`` against the running demo; its last output line."""
    env = {**demo["env"], "REDIS_URL": redis_url or demo["redis_url"], "ALLOW_INSECURE_KEY": "1"}
    out = subprocess.run(  # noqa: S603 - fixed argv
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=BASE_DIR, env=env, capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    return out.stdout.strip().splitlines()[-1] if out.stdout.strip() else ""


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _ppid(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return 0


def work_horses(marker: str) -> list[int]:
    """The demo's busy work horses: forks of a worker in a process group of their own."""
    procs = processes_with_env(marker)
    workers = {pid for pid in procs if "run_worker" in _cmdline(pid)}
    found = []
    for pid in procs:
        try:
            if _ppid(pid) in workers and os.getpgid(pid) == pid:
                found.append(pid)
        except ProcessLookupError:
            continue
    return found


def test_sigkill_of_the_supervisor_mid_job_leaves_nothing_and_the_next_start_retries_once(
    tmp_path,
):
    with run_demo(tmp_path, **WORKER_ARGS) as demo:
        # Given a long job running in a work horse of the demo's workers
        job_id = manage_shell(demo, ENQUEUE_SLOW % tmp_path.name)
        wait_for(
            lambda: job_row(demo["db"], job_id)["state"] == "running",
            timeout=60,
            what="the slow job to start",
        )
        assert wait_for(lambda: work_horses(demo["marker"]), timeout=10, what="its work horse")
        before = processes_with_env(demo["marker"])
        # When the supervisor is SIGKILLed (no handler, no cleanup of its own)
        demo["proc"].kill()
        demo["proc"].wait()
        killed = time.monotonic()
        # Then within 10 s no process of that run remains: Redis, workers, horse, web, scheduler
        wait_for(
            lambda: not processes_with_env(demo["marker"]),
            timeout=10,
            interval=0.1,
            what=f"every process of the run to die (left: {processes_with_env(demo['marker'])})",
        )
        print(f"\n{len(before)} processes of the run gone {time.monotonic() - killed:.1f}s after")
    cut_short = job_row(demo["db"], job_id)
    assert cut_short["state"] == "running" and cut_short["attempts"] == 1

    # When the demo starts again, the attempt cut short is recorded and retried, once
    with run_demo(tmp_path, **WORKER_ARGS) as demo:
        retried = wait_for(
            lambda: (row := job_row(demo["db"], job_id))["attempts"] == 2 and row,
            timeout=120,
            what="the retry to start",
        )
        assert len(retried["errors"]) == 1
        assert retried["errors"][0]["attempt"] == 1
        assert "Worker died" in retried["errors"][0]["message"]
        assert len(work_horses(demo["marker"])) <= 1  # one copy of the job runs


ENQUEUE_NOOP = """
import tests.jobs.kinds
from django.db import transaction
from jobs.enqueue import enqueue
with transaction.atomic():
    job = enqueue("test_noop", payload={"token": "%s"}, trigger="command", queue="%s")
print(job.pk)
"""


def _paused_since(db: Path, queue: str) -> str | None:
    with sqlite3.connect(db) as conn:
        row = conn.execute(
            "SELECT paused_at FROM jobs_queuepause WHERE queue = ?", (queue,)
        ).fetchone()
    return row[0] if row else None


def _a_ledger_pass_ran(conn: redis.Redis) -> None:
    """Wait for a whole relay + reconcile pass of the workers to start after this call: the
    turn key is set at a pass' start and expires before the next."""
    conn.delete(RECONCILE_DUE_KEY)
    for what in ("a ledger pass to start", "its turn to end", "the next pass to start"):
        want = what != "its turn to end"
        wait_for(lambda w=want: bool(conn.exists(RECONCILE_DUE_KEY)) == w, timeout=60, what=what)


def _held_while_another_queue_runs(demo: dict, conn: redis.Redis, url: str, held_id: str) -> None:
    """A job on another queue completes and a ledger pass runs; the held job stays pending."""
    control = manage_shell(demo, ENQUEUE_NOOP % ("control", "bundle-reindex"), redis_url=url)
    wait_for(
        lambda: job_row(demo["db"], control)["state"] == "completed",
        timeout=60,
        what="a job on a running queue to complete",
    )
    _a_ledger_pass_ran(conn)
    held = job_row(demo["db"], held_id)
    assert (held["state"], held["attempts"]) == ("pending", 0)


def test_a_paused_queue_stays_paused_across_a_redis_restart_and_a_demo_restart(tmp_path):
    port = free_port()
    server = start_embedded_redis(port=port, workdir=str(tmp_path))
    conn = redis.Redis.from_url(server.url, socket_connect_timeout=1)
    env = {**WORKER_ARGS, "REDIS_URL": server.url}
    queue = "bundle-recompute"
    try:
        with run_demo(tmp_path, **env) as demo:
            # Given a paused queue
            manage_shell(
                demo,
                f"from jobs.services import queue_pause; queue_pause(queue={queue!r})",
                redis_url=server.url,
            )
            assert _paused_since(demo["db"], queue)
            # When Redis restarts empty (no persistence) and a job of the queue is enqueued
            server.stop()
            server = start_embedded_redis(port=port, workdir=str(tmp_path))
            assert not conn.exists(PAUSED_QUEUES_KEY)
            held = manage_shell(demo, ENQUEUE_NOOP % ("held", queue), redis_url=server.url)
            # Then the pause is back in Redis, from the table, and the job waits
            wait_for(lambda: conn.sismember(PAUSED_QUEUES_KEY, queue), timeout=30, what="flag")
            _held_while_another_queue_runs(demo, conn, server.url, held)

        # When the demo restarts (Ctrl-C, then bin/run again) on a Redis emptied once more
        server.stop()
        server = start_embedded_redis(port=port, workdir=str(tmp_path))
        with run_demo(tmp_path, **env) as demo:
            # Then the queue is still paused, its job still waiting
            assert _paused_since(demo["db"], queue)
            _held_while_another_queue_runs(demo, conn, server.url, held)
            # And resuming runs it
            manage_shell(
                demo,
                f"from jobs.services import queue_resume; print(queue_resume(queue={queue!r}))",
                redis_url=server.url,
            )
            wait_for(
                lambda: job_row(demo["db"], held)["state"] == "completed",
                timeout=60,
                what="the resumed job to complete",
            )
    finally:
        server.stop()
