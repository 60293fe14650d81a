"""``bin/run``'s supervisor keeps the demo running through a Redis restart: children that exit
are restarted (with a limit), the scheduler waits the outage out, and everything is back."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import redis
from rq.worker_registration import REDIS_WORKER_KEYS

from config.embedded_redis import free_port, start_embedded_redis
from jobs.heartbeat import HEARTBEAT_KEY
from tests.e2e.test_demo import stop_demo, wait_for

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
        print(f"\nscheduler back {time.monotonic() - back:.1f}s after Redis restarted; "
              f"{conn.scard(REDIS_WORKER_KEYS)} workers registered")
        assert proc.poll() is None
        output = "".join(lines)
        assert "stopping everything" not in output, output[-3000:]
        print("".join(ln for ln in lines if ln.startswith(("!!", "==> restarting"))))
    finally:
        stop_demo(proc, str(tmp_path))
        server.stop()
