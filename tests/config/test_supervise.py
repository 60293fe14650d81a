"""``bin/run``'s start stops what a crashed earlier run left behind, and only that."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from config.supervise import (
    RUN_ENV,
    RUN_FILE,
    AnotherRunRunning,
    record_run,
    start_time,
    stop_leftovers,
)


@pytest.fixture
def spawn():
    """``sleep`` processes with a run id in their environment; all killed after the test."""
    started: list[subprocess.Popen] = []

    def run(run_id: str, **popen) -> subprocess.Popen:
        env = {**os.environ, RUN_ENV: run_id}
        proc = subprocess.Popen(["sleep", "300"], env=env, start_new_session=True, **popen)  # noqa: S603, S607
        started.append(proc)
        return proc

    yield run
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def gone(proc: subprocess.Popen, timeout: float = 5.0) -> bool:
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        return False
    return True


def write_run(var_dir: Path, *, pid: int, started: int | None, run_id: str) -> None:
    (var_dir / RUN_FILE).write_text(
        json.dumps({"pid": pid, "start_time": started, "run_id": run_id})
    )


def test_a_start_kills_what_a_crashed_run_left_and_nothing_else(tmp_path, spawn):
    # Given a run whose supervisor is gone (its pid now names another process, or none) and
    # two processes still running: one of that run, one of another
    leftover, stranger = spawn("crashed-run"), spawn("another-run")
    write_run(tmp_path, pid=os.getpid(), started=1, run_id="crashed-run")
    # When the next start looks for leftovers
    stopped = stop_leftovers(tmp_path)
    # Then the crashed run's process is killed, the other left alone
    assert stopped == [leftover.pid]
    assert gone(leftover) and leftover.returncode == -signal.SIGKILL
    assert stranger.poll() is None


def test_a_start_refuses_while_the_recorded_supervisor_still_runs(tmp_path, spawn):
    supervisor = spawn("live-run")
    write_run(tmp_path, pid=supervisor.pid, started=start_time(supervisor.pid), run_id="live-run")
    with pytest.raises(AnotherRunRunning, match=f"pid {supervisor.pid}"):
        stop_leftovers(tmp_path)
    assert supervisor.poll() is None


def test_a_first_start_has_nothing_to_stop_and_records_its_run(tmp_path, monkeypatch):
    monkeypatch.delenv(RUN_ENV, raising=False)
    assert stop_leftovers(tmp_path) == []
    run_id = record_run(tmp_path)
    recorded = json.loads((tmp_path / RUN_FILE).read_text())
    assert recorded == {"pid": os.getpid(), "start_time": start_time(os.getpid()), "run_id": run_id}
    assert os.environ[RUN_ENV] == run_id
    assert (tmp_path / RUN_FILE).stat().st_mode & 0o777 == 0o600


def test_a_child_gets_its_parent_death_signal_when_its_parent_is_sigkilled():
    # Given a parent process that started a child the way the supervisor does
    script = (
        "import subprocess, signal, sys, time\n"
        "from config.supervise import dies_with_this_process\n"
        "child = subprocess.Popen(['sleep', '300'], start_new_session=True,\n"
        "                         preexec_fn=dies_with_this_process(signal.SIGKILL))\n"
        "print(child.pid, flush=True)\n"
        "time.sleep(300)\n"
    )
    parent = subprocess.Popen(  # noqa: S603
        [sys.executable, "-c", script],
        cwd=Path(__file__).resolve().parents[2],
        stdout=subprocess.PIPE,
        text=True,
    )
    child = int(parent.stdout.readline())
    # When the parent is SIGKILLed
    parent.kill()
    parent.wait()
    # Then the child is gone within a second or two (reaped by init)
    deadline = time.monotonic() + 5
    while Path(f"/proc/{child}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not Path(f"/proc/{child}").exists()
