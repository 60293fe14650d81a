"""The README's run command, end to end: start it, use the admin, Ctrl-C it.

This starts ``python -m config.demo`` exactly as ``bin/run`` does (its own embedded Redis, its
own SQLite file in a temporary VAR_DIR, four workers, the scheduler, the web server), changes a
variant's price through the admin in real Chromium, waits for the bundles that use it to be
recomputed by the workers, then sends SIGINT and checks that no process it started survives.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path

import pytest

from config.embedded_redis import free_port

BASE_DIR = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.browser


def wait_for(condition, *, timeout: float, interval: float = 0.2, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def processes_with_env(marker: str) -> list[int]:
    """PIDs of live processes whose environment contains ``marker`` (children inherit it)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if marker.encode() in (entry / "environ").read_bytes():
                state = (entry / "stat").read_text().split(") ", 1)[1][0]
                if state != "Z":
                    found.append(int(entry.name))
        except OSError:
            continue
    return found


def stop_demo(proc: subprocess.Popen, marker: str) -> None:
    """Ctrl-C the demo as a user would (SIGKILL if it hangs), then SIGKILL anything it left."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
    for pid in processes_with_env(marker):
        os.kill(pid, signal.SIGKILL)


@contextlib.contextmanager
def run_demo(tmp_path: Path, **extra_env: str):
    """``python -m config.demo`` on a free port with its var/ in ``tmp_path``, until its login
    is printed; stopped with SIGINT (and anything left SIGKILLed) on the way out."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "DATABASE_URL"}}
    env.update(VAR_DIR=str(tmp_path / "var"), DEMO_TEST_MARKER=str(tmp_path), **extra_env)
    env.pop("SECRET_KEY", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "config.demo", "--port", str(port), "--bundles", "30"],
        cwd=BASE_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
    reader.start()
    try:
        login = wait_for(
            lambda: next((ln for ln in lines if "Login:" in ln), None),
            timeout=180,
            what="the demo to print its login",
        )
        user, password = login.split("Login:", 1)[1].strip().split(" / ")
        redis_line = next((ln for ln in lines if "embedded Redis on" in ln), "")
        yield {
            "proc": proc,
            "url": f"http://127.0.0.1:{port}",
            "user": user,
            "password": password,
            "db": tmp_path / "var" / "db.sqlite3",
            "marker": str(tmp_path),
            "lines": lines,
            "redis_url": redis_line.split("embedded Redis on", 1)[-1].strip(),
            "env": env,
        }
    finally:
        stop_demo(proc, str(tmp_path))


@pytest.fixture
def demo(tmp_path):
    with run_demo(tmp_path) as running:
        yield running


def bundle_using_a_variant(db: Path) -> tuple[int, int, Decimal]:
    """(variant id, bundle id, bundle price) for an active bundle with a component."""
    with sqlite3.connect(db) as conn:
        row = conn.execute(
            "SELECT c.variant_id, b.id, b.computed_price FROM bundles_bundlecomponent c "
            "JOIN bundles_bundle b ON b.id = c.bundle_id "
            "WHERE b.status = 'active' AND b.computed_price IS NOT NULL ORDER BY b.id LIMIT 1"
        ).fetchone()
    return row[0], row[1], Decimal(str(row[2]))


def bundle_price(db: Path, bundle_id: int) -> Decimal:
    with sqlite3.connect(db) as conn:
        (price,) = conn.execute(
            "SELECT computed_price FROM bundles_bundle WHERE id = ?", (bundle_id,)
        ).fetchone()
    return Decimal(str(price))


def test_price_change_in_admin_reaches_bundles_and_ctrl_c_leaves_nothing(demo, chromium):
    # Given the demo is up with its seeded catalog
    variant_id, bundle_id, price_before = bundle_using_a_variant(demo["db"])

    context = chromium.new_context()
    try:
        page = context.new_page()
        page.goto(f"{demo['url']}/admin/login/")
        page.fill("#id_username", demo["user"])
        page.fill("#id_password", demo["password"])
        page.click("input[type=submit]")
        page.wait_for_url(f"{demo['url']}/admin/")

        # When a catalog manager raises the component's price in the admin
        page.goto(f"{demo['url']}/admin/bundles/productvariant/{variant_id}/change/")
        old_price = Decimal(page.input_value("#id_price"))
        page.fill("#id_price", str(old_price + Decimal("100")))
        page.click("input[name=_save]")
        page.wait_for_url(f"{demo['url']}/admin/bundles/productvariant/")
    finally:
        context.close()

    # Then the workers recompute the bundle within seconds: its price goes up
    wait_for(
        lambda: bundle_price(demo["db"], bundle_id) > price_before,
        timeout=30,
        what=f"bundle {bundle_id}'s price to rise above {price_before}",
    )

    # And Ctrl-C stops everything it started: no redis, worker, scheduler or web process left
    demo["proc"].send_signal(signal.SIGINT)
    assert demo["proc"].wait(timeout=60) == 0
    wait_for(
        lambda: not processes_with_env(demo["marker"]),
        timeout=15,
        what="every demo process to exit",
    )


ENQUEUE_SLOW = """
import tests.jobs.kinds
from django.db import transaction
from jobs.enqueue import enqueue
from jobs.models import JobTrigger
with transaction.atomic():
    job = enqueue("test_slow", payload={"token": "%s", "steps": 1200, "step_seconds": 0.1},
                  trigger=JobTrigger.COMMAND)
print(job.pk)
"""


def job_row(db: Path, job_id: str) -> dict:
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        row = conn.execute(
            "SELECT state, attempts, errors FROM jobs_job WHERE id = ?", (job_id.replace("-", ""),)
        ).fetchone()
    return {"state": row["state"], "attempts": row["attempts"], "errors": json.loads(row["errors"])}


def test_ctrl_c_with_a_long_job_running_leaves_nothing_and_the_row_settles_on_restart(tmp_path):
    worker_args = {"DEMO_WORKER_ARGS": "--import tests.jobs.kinds"}
    with run_demo(tmp_path, **worker_args) as demo:
        # Given a two-minute job running in a work horse of the demo's workers
        env = {**demo["env"], "REDIS_URL": demo["redis_url"], "ALLOW_INSECURE_KEY": "1"}
        out = subprocess.run(
            [sys.executable, "manage.py", "shell", "-c", ENQUEUE_SLOW % tmp_path.name],
            cwd=BASE_DIR,
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        )
        job_id = out.stdout.strip().splitlines()[-1]
        wait_for(
            lambda: job_row(demo["db"], job_id)["state"] == "running",
            timeout=60,
            what="the slow job to start",
        )

        # When the operator presses Ctrl-C
        demo["proc"].send_signal(signal.SIGINT)
        assert demo["proc"].wait(timeout=60) == 0

        # Then no process of the demo survives: workers, their work horses, web, Redis
        wait_for(
            lambda: not processes_with_env(demo["marker"]),
            timeout=15,
            what="every demo process (work horses included) to exit",
        )
    cut_short = job_row(demo["db"], job_id)
    assert cut_short["state"] == "running" and cut_short["attempts"] == 1

    # When the demo starts again, the row is settled: the cut-short attempt is recorded as
    # failed and the job is retried by its policy (test_slow: 2 attempts), never left running
    with run_demo(tmp_path, **worker_args) as demo:
        settled = wait_for(
            lambda: (row := job_row(demo["db"], job_id))["errors"] and row,
            timeout=60,
            what="the cut-short attempt to be recorded",
        )
        assert settled["errors"][0]["attempt"] == 1
        assert "Worker died" in settled["errors"][0]["message"]
        wait_for(
            lambda: job_row(demo["db"], job_id)["attempts"] == 2,
            timeout=60,
            what="the retry to start",
        )
