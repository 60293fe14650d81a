"""Soak: mixed load for a while on 127.0.0.1, with workers SIGKILLed and Redis restarted, then
wait for the ledger to go quiet and report what was lost. Run by hand, never in CI:

    DEBUG=1 .venv/bin/python bench/soak.py --minutes 10

Starts a private Redis, a scratch SQLite database seeded with demo bundles, WORKERS workers (all
queues), the web server; then, until the time is up: variant price/stock changes (the signal
door), admin list polling, GraphQL queries with an API token, one worker SIGKILLed (its whole
process group, work horse included) and replaced every minute, and Redis stopped and restarted
empty once half-way. Afterwards it waits (up to --settle minutes) for no job to be pending,
running or retrying, and prints: jobs lost (a variant change whose bundle never got its price),
stuck (unsettled rows), failed for good, server errors, and the web process's RSS.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from http.cookiejar import CookieJar
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--settle", type=float, default=5, help="minutes to wait for quiet")
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--bundles", type=int, default=200)
    args = parser.parse_args()

    from config.embedded_redis import free_port, start_embedded_redis

    scratch = Path(tempfile.mkdtemp(prefix="soak-"))
    redis_port = free_port()
    redis = start_embedded_redis(port=redis_port, workdir=str(scratch / "redis"))
    env = {
        **os.environ,
        "VAR_DIR": str(scratch),
        "DATABASE_URL": f"sqlite:///{scratch}/soak.sqlite3",
        "REDIS_URL": redis.url,
        "ALLOW_INSECURE_KEY": "1",
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "AXES_ENABLED": "0",
    }
    os.environ.update(env)
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "-v", "0"], env=env, check=True, cwd=ROOT)
    subprocess.run(
        [*manage, "seed_demo", "--bundles", str(args.bundles)], env=env, check=True, cwd=ROOT
    )

    import django

    django.setup()
    from django.contrib.auth import get_user_model

    from api.services import api_token_create
    from bundles.models import Bundle, ProductVariant
    from jobs.models import Job, JobState

    user = get_user_model().objects.create_superuser("soak", "soak@example.com", "soak-password")
    _, token = api_token_create(username=user.username, name="soak")

    def spawn(argv):
        return subprocess.Popen(
            argv,
            env=env,
            cwd=ROOT,
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    workers = [spawn([*manage, "run_worker"]) for _ in range(args.workers)]
    web_port = free_port()
    web = spawn([*manage, "runserver", f"127.0.0.1:{web_port}", "--noreload", "--insecure"])
    base = f"http://127.0.0.1:{web_port}"
    _wait_http(base + "/admin/login/")
    rss_start = rss_kb(web.pid)

    stop = threading.Event()
    counts = {
        "save_errors": 0,
        "changes": 0,
        "polls": 0,
        "graphql": 0,
        "server_errors": 0,
        "kills": 0,
    }
    changed_variants: set[int] = set()
    lock = threading.Lock()

    def changes():
        ids = list(
            ProductVariant.objects.filter(product__is_bundle_shell=False).values_list(
                "pk", flat=True
            )
        )
        while not stop.is_set():
            variant = ProductVariant.objects.get(pk=random.choice(ids))
            variant.stock_on_hand = random.randint(0, 500)
            try:
                variant.save()  # the signal door: recompute jobs on commit
            except Exception:  # must not happen, Redis down or not: reported
                with lock:
                    counts["save_errors"] += 1
            with lock:
                counts["changes"] += 1
                changed_variants.add(variant.pk)
            time.sleep(0.2)

    def http(url, data=None, headers=None, opener=None):
        request = urllib.request.Request(url, data=data, headers=headers or {})
        try:
            (opener or urllib.request.build_opener()).open(request, timeout=30).read()
        except urllib.error.HTTPError as exc:
            if exc.code >= 500:
                with lock:
                    counts["server_errors"] += 1
        except OSError:
            pass

    def polls():
        jar = CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        opener.open(base + "/admin/login/").read()
        csrf = next(c.value for c in jar if c.name == "csrftoken")
        form = f"username=soak&password=soak-password&csrfmiddlewaretoken={csrf}&next=/admin/"
        http(base + "/admin/login/", form.encode(), {"Referer": base + "/admin/login/"}, opener)
        while not stop.is_set():
            for path in (
                "/admin/jobs/job/",
                "/admin/jobs/job/?state=running",
                "/admin/bundles/bundle/",
            ):
                http(base + path, opener=opener)
                with lock:
                    counts["polls"] += 1
            time.sleep(1)

    def graphql():
        query = json.dumps(
            {
                "query": "{ jobs(first: 50) { totalCount edges { node { id state "
                "progress errors { message } } } } jobQueues { name waiting } }"
            }
        )
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        while not stop.is_set():
            http(base + "/graphql/", query.encode(), headers)
            with lock:
                counts["graphql"] += 1
            time.sleep(0.5)

    threads = [threading.Thread(target=f, daemon=True) for f in (changes, polls, graphql)]
    for t in threads:
        t.start()
    started = time.monotonic()
    deadline = started + args.minutes * 60
    next_kill = started + 60
    redis_restarted = False
    while time.monotonic() < deadline:
        time.sleep(1)
        now = time.monotonic()
        if now >= next_kill:
            victim = workers.pop(random.randrange(len(workers)))
            horses = _children(victim.pid)  # in their own process groups (os.setpgrp)
            os.killpg(victim.pid, signal.SIGKILL)
            for pid in horses:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            victim.wait()
            workers.append(spawn([*manage, "run_worker"]))
            counts["kills"] += 1
            next_kill = now + 60
        if not redis_restarted and now - started > args.minutes * 30:
            redis.stop()
            time.sleep(3)
            redis = start_embedded_redis(port=redis_port, workdir=str(scratch / "redis2"))
            redis_restarted = True
    stop.set()
    for t in threads:
        t.join(timeout=60)

    active = [JobState.PENDING, JobState.RUNNING, JobState.RETRYING]
    quiet_by = time.monotonic() + args.settle * 60
    while time.monotonic() < quiet_by and Job.objects.filter(state__in=active).exists():
        time.sleep(2)
    stuck = Job.objects.filter(state__in=active).count()
    failed = Job.objects.filter(state=JobState.FAILED).count()
    # A change is lost if a bundle using the variant still shows a stale availability.
    from bundles.integrity import validate_bundle_integrity

    drifted = 0
    for bundle in Bundle.objects.filter(components__variant__in=changed_variants).distinct():
        issues = validate_bundle_integrity(bundle)
        drifted += any("drift" in getattr(i, "code", "") for i in issues)
    rss_end = rss_kb(web.pid)
    for proc in (*workers, web):
        os.killpg(proc.pid, signal.SIGKILL)
    redis.stop()
    print(
        f"minutes {args.minutes:g}, workers {args.workers}, bundles {args.bundles}, "
        f"database SQLite ({scratch})"
    )
    print(
        f"variant changes {counts['changes']}, admin polls {counts['polls']}, "
        f"GraphQL queries {counts['graphql']}, workers SIGKILLed {counts['kills']}, "
        f"Redis restarted {int(redis_restarted)}"
    )
    print(
        f"jobs total {Job.objects.count()}, lost (bundles drifted) {drifted}, stuck {stuck}, "
        f"failed for good {failed}, server errors {counts['server_errors']}, "
        f"failed saves {counts['save_errors']}"
    )
    print(
        f"web RSS start {rss_start / 1024:.1f} MB, end {rss_end / 1024:.1f} MB "
        f"(x{rss_end / max(rss_start, 1):.2f})"
    )


def _children(parent: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(") ", 1)[1].split()[1]) == parent:
                    found.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
    return found


def _wait_http(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer within {timeout}s")


if __name__ == "__main__":
    main()
