"""The README's run command, end to end: start it, use the admin, Ctrl-C it.

This starts ``python -m config.demo`` exactly as ``bin/run`` does (its own embedded Redis, its
own SQLite file in a temporary VAR_DIR, four workers, the scheduler, the web server), changes a
variant's price through the admin in real Chromium, waits for the bundles that use it to be
recomputed by the workers, then sends SIGINT and checks that no process it started survives.
"""

from __future__ import annotations

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


@pytest.fixture
def demo(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "DATABASE_URL"}}
    env.update(VAR_DIR=str(tmp_path / "var"), DEMO_TEST_MARKER=str(tmp_path))
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
        yield {
            "proc": proc,
            "url": f"http://127.0.0.1:{port}",
            "user": user,
            "password": password,
            "db": tmp_path / "var" / "db.sqlite3",
            "marker": str(tmp_path),
            "lines": lines,
        }
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
        for pid in processes_with_env(str(tmp_path)):
            os.kill(pid, signal.SIGKILL)


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
