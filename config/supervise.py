"""What ``bin/run``'s supervisor needs so that nothing outlives it, however it ends.

* **Parent-death signal** (Linux ``prctl(PR_SET_PDEATHSIG)``): each child asks the kernel for a
  signal when the supervisor dies, SIGKILL included. Workers get SIGKILL (a SIGTERM would be
  RQ's warm shutdown, which waits for the running job); ``run_worker`` gives its own forks (the
  work horse, RQ's scheduler process) the same, so a horse never outlives its worker.
* **Leftovers of a crashed run**: every process of a run inherits ``RUN_ENV=<run id>`` and the
  run is recorded in ``var/demo-run.json`` (supervisor pid, its start time, the run id). A start
  reads it first: if that supervisor still runs, it refuses to start a second demo on the same
  ``var/``; otherwise it SIGKILLs every process of the current user whose environment carries
  the old run id (no other process can carry it), and only then starts anything.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import secrets
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

RUN_ENV = "BUNDLE_DEMO_RUN"
RUN_FILE = "demo-run.json"
_PR_SET_PDEATHSIG = 1


class AnotherRunRunning(RuntimeError):
    """A live ``bin/run`` already uses this ``var/``."""


def set_parent_death_signal(sig: int, *, parent: int) -> None:
    """Ask Linux to send ``sig`` to this process when its parent dies. If ``parent`` (the pid
    that forked us) is already gone, take the signal now: the kernel would never send it."""
    if not sys.platform.startswith("linux"):
        return
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(sig))
    if os.getppid() != parent:
        os.kill(os.getpid(), sig)


def dies_with_this_process(sig: int = signal.SIGTERM) -> Callable[[], None]:
    """A ``preexec_fn`` for ``Popen``: the child gets ``sig`` when the calling process dies.
    (The signal follows the forking *thread*: call Popen from the supervisor's main thread.)"""
    parent = os.getpid()
    return lambda: set_parent_death_signal(sig, parent=parent)


def start_time(pid: int) -> int | None:
    """The kernel's start time of ``pid`` (clock ticks since boot), None if it is gone: a pid
    and its start time name one process, even after the pid is reused."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])


def processes_of_run(run_id: str) -> list[int]:
    """Live processes of this user whose environment carries ``RUN_ENV=run_id``."""
    needle = f"{RUN_ENV}={run_id}".encode()
    found = []
    proc = Path("/proc")
    for entry in proc.iterdir() if proc.is_dir() else ():  # no /proc (macOS): none found
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if entry.stat().st_uid != os.getuid():
                continue
            if needle not in (entry / "environ").read_bytes().split(b"\0"):
                continue
            if (entry / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                continue  # a zombie is already dead; its parent reaps it
        except OSError:
            continue
        found.append(int(entry.name))
    return found


def stop_leftovers(var_dir: Path, *, timeout: float = 10.0) -> list[int]:
    """Before a start: SIGKILL what a crashed earlier run left behind. Returns their pids.

    Raises ``AnotherRunRunning`` if the recorded supervisor is alive (same pid and start time).
    """
    try:
        data = json.loads((var_dir / RUN_FILE).read_text())
        pid, started, run_id = int(data["pid"]), data["start_time"], str(data["run_id"])
    except (OSError, ValueError, KeyError, TypeError):
        return []
    still_running = _alive(pid) if started is None else start_time(pid) == started
    if still_running:
        raise AnotherRunRunning(
            f"another bin/run (pid {pid}) is using {var_dir}; stop it first (Ctrl-C there)"
        )
    leftovers = processes_of_run(run_id)
    for leftover in leftovers:
        with contextlib.suppress(ProcessLookupError):
            os.kill(leftover, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    while processes_of_run(run_id) and time.monotonic() < deadline:
        time.sleep(0.1)  # SIGKILL is not refusable; the kernel takes a moment to reap
    return leftovers


def _alive(pid: int) -> bool:
    """Without /proc (no start time to compare) the pid alone has to do."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def record_run(var_dir: Path) -> str:
    """Name this run: ``RUN_ENV`` for every child from now on, and ``var/demo-run.json``."""
    run_id = secrets.token_hex(8)
    os.environ[RUN_ENV] = run_id
    path = var_dir / RUN_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump({"pid": os.getpid(), "start_time": start_time(os.getpid()), "run_id": run_id}, fh)
    return run_id


def forget_run(var_dir: Path) -> None:
    """A clean stop: nothing is left, so there is nothing for the next start to look for."""
    with contextlib.suppress(OSError):
        (var_dir / RUN_FILE).unlink()
