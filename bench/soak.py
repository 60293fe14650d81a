"""Soak: minutes of mixed load on 127.0.0.1, workers SIGKILLed, Redis restarted; then the ledger.

    .venv/bin/python bench/soak.py [--minutes 10] [--bundles 120] [--workers 3]

Run by hand, never in CI (bounded by ``--minutes``, default 10). A scratch SQLite file (or
DATABASE_URL: it is migrated and reseeded, a scratch database only) and a private Redis on a
fixed port. It starts the web server, ``--workers`` workers (each on all four queues) and the
scheduler as ``bin/run`` does, then for the duration:

* changes a random variant's price or stock through the ORM (signals -> fan-out -> recompute);
* polls the admin jobs list (logged in) and sends GraphQL queries and recompute mutations;
* SIGKILLs one whole worker (its process, horse and scheduler) every minute and starts another;
* restarts Redis once, empty (no persistence), at the middle of the run.

Then it waits for the ledger to go quiet (no pending, running or retrying job) and prints:
jobs lost (bundles whose stored price or availability still differs from their components:
a change that never got applied; must be 0), stuck (jobs still active after the wait; 0),
failed for good, server errors (HTTP 5xx or no answer from the web server; 0), and the web
process's RSS at start and end.
"""

from __future__ import annotations

import argparse
import contextlib
import http.cookiejar
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("SECRET_KEY", "soak-not-a-secret")
os.environ.setdefault("LOG_LEVEL", "WARNING")

QUEUES = ["bundle-recompute", "bundle-reindex", "bundle-consistency-check", "bundle-bulk-operation"]
PASSWORD = "soak-password-1"  # noqa: S105 - a scratch superuser on 127.0.0.1


def manage(*args: str) -> list[str]:
    return [sys.executable, str(ROOT / "manage.py"), *args]


def spawn(argv: list[str], log) -> subprocess.Popen:
    return subprocess.Popen(  # noqa: S603 - fixed argv
        argv, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )


def children_of(pid: int) -> list[int]:
    out = subprocess.run(  # noqa: S603
        ["/usr/bin/pgrep", "-P", str(pid)], capture_output=True, text=True, check=False
    ).stdout
    return [int(p) for p in out.split()]


def kill_whole(proc: subprocess.Popen) -> None:
    """SIGKILL a worker, its horse (own process group) and its scheduler, like a lost machine."""
    pids = children_of(proc.pid)
    with contextlib.suppress(ProcessLookupError):
        os.kill(proc.pid, signal.SIGKILL)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    proc.wait(timeout=10)


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class Web:
    """A logged-in admin session and an API token, counting every answer."""

    def __init__(self, base: str, token: str) -> None:
        self.base = base
        self.token = token
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))
        self.lock = threading.Lock()
        self.requests = 0
        self.errors: list[str] = []

    def _open(self, req) -> tuple[int, bytes]:
        try:
            with self.opener.open(req, timeout=30) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def call(self, what: str, req) -> bytes:
        try:
            status, body = self._open(req)
        except OSError as exc:
            status, body = 0, str(exc).encode()
        with self.lock:
            self.requests += 1
            if status == 0 or status >= 500:
                self.errors.append(f"{what}: {status} {body[:200]!r}")
        return body

    def login(self) -> None:
        page = self._open(f"{self.base}/admin/login/")[1].decode()
        csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
        data = urllib.parse.urlencode(
            {
                "username": "soak",
                "password": PASSWORD,
                "csrfmiddlewaretoken": csrf,
                "next": "/admin/",
            }
        ).encode()
        req = urllib.request.Request(
            f"{self.base}/admin/login/", data=data, headers={"Referer": f"{self.base}/admin/login/"}
        )
        self._open(req)

    def admin_list(self) -> None:
        self.call("admin list", f"{self.base}/admin/jobs/job/?o=-1")

    def graphql(self, query: str, variables: dict | None = None) -> None:
        body = json.dumps({"query": query, "variables": variables or {}}).encode()
        req = urllib.request.Request(
            f"{self.base}/graphql/",
            data=body,
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
        )
        self.call("graphql", req)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="load duration (default 10)")
    parser.add_argument("--bundles", type=int, default=120)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--quiet-timeout", type=float, default=300.0, help="seconds to wait")
    args = parser.parse_args()

    import tempfile

    from config.embedded_redis import free_port, start_embedded_redis

    scratch = tempfile.mkdtemp(prefix="soak-")
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{scratch}/soak.sqlite3")
    (ROOT / "var").mkdir(exist_ok=True)
    redis_port = free_port()
    redis = start_embedded_redis(port=redis_port)
    os.environ["REDIS_URL"] = redis.url
    log = open(ROOT / "var" / "soak.log", "w")  # noqa: SIM115 - closed at the end
    procs: list[subprocess.Popen] = []
    try:
        run(args, redis, log, procs)
    finally:
        for proc in procs:
            if proc.poll() is None:
                kill_whole(proc)
        redis.stop()
        log.close()


def run(args, redis, log, procs) -> None:
    import django

    for argv in (
        manage("migrate", "-v0"),
        manage("seed_demo", "--bundles", str(args.bundles), "--reset"),
    ):
        subprocess.run(argv, cwd=ROOT, check=True, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603
    django.setup()
    from django.contrib.auth import get_user_model

    from api.services import api_token_create
    from bundles.models import Bundle, ProductVariant
    from bundles.selectors import validate_bundle_integrity
    from jobs.models import ACTIVE_STATES, Job, JobState

    user = get_user_model().objects.create_superuser("soak", "soak@example.com", PASSWORD)
    token = api_token_create(username=user.username, name="soak")[1]

    base = f"http://127.0.0.1:{args.port}"
    web_proc = spawn(manage("runserver", f"127.0.0.1:{args.port}", "--noreload", "--insecure"), log)
    procs.append(web_proc)
    # Every handler run is recorded (bench/soak_probe.py) to count double runs at the end.
    runs_file = ROOT / "var" / "soak-runs.jsonl"
    runs_file.unlink(missing_ok=True)
    os.environ["SOAK_RUNS_FILE"] = str(runs_file)
    worker_argv = manage("run_worker", *QUEUES, "--import", "bench.soak_probe")
    workers = [spawn(worker_argv, log) for _ in range(args.workers)]
    procs.extend(workers)
    procs.append(spawn(manage("run_scheduler"), log))
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"{base}/admin/login/", timeout=2).read()  # noqa: S310
            break
        except OSError:
            if time.monotonic() > deadline:
                raise SystemExit("web server did not start; see var/soak.log") from None
            time.sleep(0.5)
    web = Web(base, token)
    web.login()
    rss_start = rss_kb(web_proc.pid)
    variant_ids = list(
        ProductVariant.objects.filter(deleted_at__isnull=True).values_list("pk", flat=True)
    )
    bundle_ids = list(Bundle.objects.values_list("pk", flat=True))
    stop = threading.Event()
    counts = {"variant changes": 0, "workers killed": 0, "redis restarts": 0}

    def changes() -> None:
        from django.db import connections

        rnd = random.Random(1)  # noqa: S311
        while not stop.wait(0.3):
            with contextlib.suppress(Exception):
                variant = ProductVariant.objects.get(pk=rnd.choice(variant_ids))
                if rnd.random() < 0.5:
                    variant.price = variant.price + 1 if variant.price < 500 else variant.price - 7
                else:
                    variant.stock_on_hand = rnd.randint(0, 200)
                variant.save()
                counts["variant changes"] += 1
        connections.close_all()

    def polling() -> None:
        rnd = random.Random(2)  # noqa: S311
        while not stop.wait(0.5):
            web.admin_list()
            web.graphql(
                "query { jobs(first: 20) { totalCount edges { node { id state progress } } } }"
            )
            if rnd.random() < 0.2:
                web.graphql(
                    "mutation($id: ID!) { recomputeBundle(bundleId: $id) { jobId message } }",
                    {"id": str(rnd.choice(bundle_ids))},
                )

    threads = [threading.Thread(target=changes), threading.Thread(target=polling)]
    for thread in threads:
        thread.start()
    started = time.monotonic()
    end = started + args.minutes * 60
    next_kill = started + 60
    redis_at = started + args.minutes * 30
    rnd = random.Random(3)  # noqa: S311
    print(
        f"soak: {args.minutes} min, {args.bundles} bundles, {args.workers} workers, "
        f"web RSS {rss_start} kB"
    )
    while time.monotonic() < end:
        time.sleep(1)
        if time.monotonic() >= next_kill:
            victim = rnd.choice(workers)
            kill_whole(victim)
            workers.remove(victim)
            fresh = spawn(worker_argv, log)
            workers.append(fresh)
            procs.append(fresh)
            counts["workers killed"] += 1
            next_kill += 60
            print(f"  {time.monotonic() - started:5.0f}s worker killed")
        if redis_at and time.monotonic() >= redis_at:
            redis.stop()
            time.sleep(2)
            redis.start()
            counts["redis restarts"] += 1
            redis_at = 0
            print(f"  {time.monotonic() - started:5.0f}s Redis restarted (empty)")
    stop.set()
    for thread in threads:
        thread.join()
    load_seconds = time.monotonic() - started

    # The ledger goes quiet: nothing pending, running or retrying.
    quiet_start = time.monotonic()
    while Job.objects.filter(state__in=ACTIVE_STATES).exists():
        if time.monotonic() - quiet_start > args.quiet_timeout:
            break
        time.sleep(1)
    quiet_after = time.monotonic() - quiet_start
    rss_end = rss_kb(web_proc.pid)
    stuck = Job.objects.filter(state__in=ACTIVE_STATES).count()
    drifted = [
        b.pk
        for b in Bundle.objects.all()
        if any("drift" in i.code for i in validate_bundle_integrity(b) if i.fixable)
    ]
    failed = Job.objects.filter(state=JobState.FAILED)
    deaths = sum(
        1
        for errors in Job.objects.values_list("errors", flat=True)
        for e in errors or []
        if "died" in e.get("message", "") or "Delivery failed" in e.get("message", "")
    )
    print(f"load: {load_seconds:.0f}s; {counts}; web requests {web.requests}")
    print(
        f"ledger quiet after {quiet_after:.0f}s; jobs {Job.objects.count()}, "
        f"completed {Job.objects.filter(state=JobState.COMPLETED).count()}, "
        f"attempts recorded as worker deaths or failed deliveries {deaths}"
    )
    print(f"jobs lost (bundles still drifted): {len(drifted)} {drifted[:10]}")
    print(f"stuck (active after the wait): {stuck}")
    print(
        f"failed for good: {failed.count()} "
        f"{[(j.kind, (j.errors or [{}])[-1].get('message', '')[:80]) for j in failed[:5]]}"
    )
    print(f"server errors: {len(web.errors)} {web.errors[:5]}")
    runs: dict[tuple, list] = {}
    for line in runs_file.read_text().splitlines() if runs_file.exists() else []:
        job_id, attempt, pid, start, end = json.loads(line)
        runs.setdefault((job_id, attempt), []).append((start, end, pid))
    doubles = {key: spans for key, spans in runs.items() if len(spans) > 1}
    overlapping = sum(
        1
        for spans in doubles.values()
        if any(a[1] > b[0] for a, b in zip(sorted(spans), sorted(spans)[1:], strict=False))
    )
    print(
        f"handler runs recorded: {sum(map(len, runs.values()))}; attempts run more than once: "
        f"{len(doubles)} (two copies at the same time: {overlapping}) {list(doubles)[:3]}"
    )
    print(f"web RSS: start {rss_start} kB, end {rss_end} kB")


if __name__ == "__main__":
    main()
