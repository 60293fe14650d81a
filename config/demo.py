"""The one command a newcomer runs: ``bin/run`` (``python -m config.demo``).

It starts a private Redis (unless ``REDIS_URL`` is set), migrates, loads demo data once, makes a
demo superuser, then supervises RQ workers for the four queues (``WORKERS``), the cron
scheduler and the web server.
Every child runs in its own process group and dies with this process, SIGKILL of it included
(Linux's parent-death signal, ``config.supervise``): workers get SIGKILL, and each work horse
dies with its worker the same way (``run_worker`` arranges it); Redis, the scheduler and the web
server get SIGTERM. A start first stops whatever a crashed earlier run left behind (found by the
run id every process of a run carries, recorded in ``var/demo-run.json``), and refuses to start
while another ``bin/run`` uses the same ``var/``.

Stopping (Ctrl-C or SIGTERM): RQ moves each work horse into a process group of its own
(``os.setpgrp()`` when rq 3.0 forks its work horse), so a signal to a worker's group
misses it. Workers are therefore stopped the way RQ means them to be: a first SIGTERM asks for a
warm shutdown (idle workers quit, busy ones take no new job), a second one, after
``STOP_JOB_GRACE`` seconds, is RQ's cold shutdown, in which the worker kills its own horse
(``kill_horse()``) and waits for it. Whatever still lives after that — a worker and the horses
it forked — is SIGKILLed by pid. A job cut short that way stays "running" in the ledger until the
next start: the first worker's first maintenance pass (``jobs.worker``, run as it starts)
reconciles it (its worker is gone and RQ no longer knows it: a failed attempt, retried by its
kind's policy).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from config.demo_env import write_demo_env
from config.embedded_redis import free_port, start_embedded_redis
from config.supervise import (
    AnotherRunRunning,
    dies_with_this_process,
    forget_run,
    processes_of_run,
    record_run,
    stop_leftovers,
)

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("VAR_DIR", BASE_DIR / "var"))
QUEUES = ("bundle-recompute", "bundle-reindex", "bundle-consistency-check", "bundle-bulk-operation")
# One worker per queue, plus a second for two of them: a second bulk worker so fan-outs never
# wait behind a long bulk parent, and a second recompute worker so the batches of a change that
# reaches many bundles run two at a time (both cores: all of 100,000 bundles right in under a
# minute, where one worker needs about twice as long).
WORKERS = (
    *((f"worker {queue}", queue) for queue in QUEUES),
    ("worker bundle-recompute (2)", "bundle-recompute"),
    ("worker bundle-bulk-operation (2)", "bundle-bulk-operation"),
)
DEMO_USER = "admin"
# Seconds a busy worker may use to finish its current job after Ctrl-C before RQ's cold
# shutdown kills the job's work horse.
STOP_JOB_GRACE = float(os.environ.get("DEMO_STOP_JOB_GRACE", "3"))


def manage(*args: str) -> list[str]:
    return [sys.executable, str(BASE_DIR / "manage.py"), *args]


def run_step(title: str, argv: list[str]) -> None:
    print(f"==> {title}", flush=True)
    subprocess.run(argv, check=True, cwd=BASE_DIR, preexec_fn=dies_with_this_process())  # noqa: S603


def demo_password() -> str:
    """A random password, made once per checkout and kept in var/ so the login stays the same."""
    path = VAR_DIR / "demo-password"
    if not path.exists():
        # Owner-only (0600), like demo-env.json: it is the admin's password.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(12))
    elif path.stat().st_mode & 0o077:
        path.chmod(0o600)  # made by an older version: tighten it
    return path.read_text().strip()


def wait_for_port(port: int, supervisor: Supervisor, timeout: float = 60.0) -> None:
    """Block until the web server accepts connections, so the printed URL works when shown."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if supervisor.first_exited():
            return  # the main loop reports which child died
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"the web server did not listen on port {port} within {timeout:.0f}s")


def wait_until_started(supervisor: Supervisor, *, workers: int, timeout: float = 60.0) -> None:
    """Block until the workers are registered in Redis and the scheduler's loop has beaten, so
    the login box comes after their start-up lines instead of scrolling away among them."""
    import redis

    from jobs.rq_compat import WORKERS_REGISTRY_KEY
    from jobs.scheduling.scheduler_heartbeat import HEARTBEAT_KEY

    conn = redis.Redis.from_url(os.environ["REDIS_URL"], socket_connect_timeout=2)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not supervisor.first_exited():
        try:
            if conn.scard(WORKERS_REGISTRY_KEY) >= workers and conn.exists(HEARTBEAT_KEY):
                return
        except redis.RedisError:
            pass
        time.sleep(0.2)


# A child that exits unexpectedly is restarted after a growing pause (1, 2, 4 … 30 s), at most
# RESTART_LIMIT times within RESTART_WINDOW seconds; one that keeps dying stops the demo.
RESTART_LIMIT = 10
RESTART_WINDOW = 600.0
RESTART_MAX_DELAY = 30.0


class Supervisor:
    def __init__(self) -> None:
        self.children: dict[str, subprocess.Popen] = {}
        self.argv: dict[str, list[str]] = {}
        self.restarts: dict[str, list[float]] = {}
        self.due: dict[str, float] = {}  # name -> when to restart it

    def spawn(self, name: str, argv: list[str]) -> None:
        self.argv[name] = argv
        # A worker's SIGTERM is RQ's warm shutdown, which waits for the running job: a worker
        # whose supervisor is gone gets SIGKILL (its horse follows it, see run_worker).
        sig = signal.SIGKILL if name.startswith("worker") else signal.SIGTERM
        self.children[name] = subprocess.Popen(  # noqa: S603 - our own commands
            argv, cwd=BASE_DIR, start_new_session=True, preexec_fn=dies_with_this_process(sig)
        )

    def watch(self) -> str | None:
        """Restart children that exited (after their pause). Returns a reason to stop the
        whole demo — a child that exited too often — or None."""
        now = time.monotonic()
        for name, proc in list(self.children.items()):
            if name in self.due:
                if now >= self.due[name]:
                    del self.due[name]
                    print(f"==> restarting {name}", flush=True)
                    self.spawn(name, self.argv[name])
                continue
            code = proc.poll()
            if code is None:
                continue
            recent = [t for t in self.restarts.get(name, []) if now - t < RESTART_WINDOW]
            if len(recent) >= RESTART_LIMIT:
                return (
                    f"{name} exited (code {code}) {len(recent) + 1} times within "
                    f"{RESTART_WINDOW / 60:.0f} minutes; stopping everything"
                )
            recent.append(now)
            self.restarts[name] = recent
            delay = min(RESTART_MAX_DELAY, 2.0 ** (len(recent) - 1))
            print(
                f"!! {name} exited unexpectedly (code {code}); restarting in {delay:.0f}s "
                f"(restart {len(recent)} of at most {RESTART_LIMIT} in "
                f"{RESTART_WINDOW / 60:.0f} minutes)",
                file=sys.stderr,
                flush=True,
            )
            self.due[name] = now + delay
        return None

    def first_exited(self) -> str | None:
        for name, proc in self.children.items():
            if proc.poll() is not None:
                return name
        return None

    def stop_all(self, grace: float = 10.0) -> None:
        workers = {n: p for n, p in self.children.items() if n.startswith("worker")}
        others = {n: p for n, p in self.children.items() if n not in workers}
        # Warm shutdown for workers (the worker process itself: its horse ignores SIGTERM and
        # is not in its group anyway); the web server and scheduler get SIGTERM as a group.
        for proc in workers.values():
            _signal_pid(proc.pid, signal.SIGTERM)
        for proc in others.values():
            _signal_group(proc, signal.SIGTERM)
        busy = _wait_all(workers.values(), timeout=max(STOP_JOB_GRACE, 1.1))
        # Cold shutdown (RQ ignores a second signal within 1 s of the first): the worker
        # kills its horse and waits for it.
        for proc in busy:
            _signal_pid(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for proc in self.children.values():
            horses = _child_pids(proc.pid)
            try:
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                horses = _child_pids(proc.pid) or horses
                _signal_group(proc, signal.SIGKILL)
                proc.wait()
            _signal_group(proc, signal.SIGKILL)  # stragglers left in the group
            for pid in horses:  # a horse that outlived its worker (own process group)
                _signal_pid(pid, signal.SIGKILL)


def _wait_all(procs, *, timeout: float) -> list[subprocess.Popen]:
    """Wait up to ``timeout`` for every process; return those still running."""
    deadline = time.monotonic() + timeout
    alive = list(procs)
    while alive and time.monotonic() < deadline:
        alive = [p for p in alive if p.poll() is None]
        if alive:
            time.sleep(0.1)
    return alive


def _child_pids(parent: int) -> list[int]:
    """Pids of the live direct children of ``parent`` (a worker's work horse)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(") ", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == parent and fields[0] != "Z":
            found.append(int(entry.name))
    return found


def _signal_pid(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--bundles", type=int, default=240, help="demo bundles to create once")
    args = parser.parse_args(argv)

    VAR_DIR.mkdir(exist_ok=True)
    try:
        left = stop_leftovers(VAR_DIR)
    except AnotherRunRunning as exc:
        print(f"!! {exc}", file=sys.stderr)
        return 1
    if left:
        print(f"==> stopped {len(left)} process(es) left by an earlier run", flush=True)
    run_id = record_run(VAR_DIR)  # every process started from here on carries it
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    # The demo runs with DEBUG off; this lets settings use a generated key kept in var/.
    os.environ.setdefault("ALLOW_INSECURE_KEY", "1")

    redis = None
    if not os.environ.get("REDIS_URL"):
        redis = start_embedded_redis(port=free_port(), workdir=str(VAR_DIR / "redis"))
        os.environ["REDIS_URL"] = redis.url
        print(f"==> embedded Redis on {redis.url}", flush=True)

    # Commands typed in a second terminal find this demo's Redis, database and key here.
    write_demo_env(redis_url=os.environ["REDIS_URL"])
    supervisor = Supervisor()

    def on_signal(signum, frame):  # noqa: ARG001
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    try:
        run_step("migrating", manage("migrate", "--noinput", "-v", "0"))
        run_step(
            f"demo data ({args.bundles} bundles, once)",
            manage("seed_demo", "--bundles", str(args.bundles)),
        )
        password = demo_password()
        run_step(
            "demo superuser",
            manage(
                "ensure_superuser",
                "--username",
                DEMO_USER,
                "--password-file",
                str(VAR_DIR / "demo-password"),
            ),
        )
        # Extra worker arguments (the shutdown test loads its slow test job kind this way).
        extra = shlex.split(os.environ.get("DEMO_WORKER_ARGS", ""))
        for name, queue in WORKERS:
            supervisor.spawn(name, manage("run_worker", queue, *extra))
        supervisor.spawn("scheduler", manage("run_scheduler"))
        supervisor.spawn(
            "web", manage("runserver", f"127.0.0.1:{args.port}", "--noreload", "--insecure")
        )
        wait_for_port(args.port, supervisor)
        wait_until_started(supervisor, workers=len(WORKERS))
        print(
            f"\n    Admin:   http://127.0.0.1:{args.port}/admin/\n"
            f"    Login:   {DEMO_USER} / {password}\n"
            f"    GraphQL: http://127.0.0.1:{args.port}/graphql/\n"
            "    Ctrl-C stops everything.\n",
            flush=True,
        )
        while True:
            fatal = supervisor.watch()
            if fatal:
                print(f"!! {fatal}", file=sys.stderr, flush=True)
                return 1
            time.sleep(0.5)
    except KeyboardInterrupt:
        print("\n==> stopping", flush=True)
        return 0
    except subprocess.CalledProcessError as exc:
        print(f"!! step failed: {' '.join(exc.cmd)}", file=sys.stderr)
        return exc.returncode or 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut cleanup short
        supervisor.stop_all()
        if redis:
            redis.stop()
        if not processes_of_run(run_id):
            forget_run(VAR_DIR)


if __name__ == "__main__":
    sys.exit(main())
