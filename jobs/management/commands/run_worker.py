"""Run an RQ worker for the job queues, with RQ's scheduler (needed for retry backoff)."""

from __future__ import annotations

import ctypes
import importlib
import os
import signal
import sys
import threading
from typing import Any

import django_rq
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from jobs.worker import JobsSimpleWorker, JobsWorker, work_through_redis_outages

_PR_SET_PDEATHSIG = 1
_fork_hook_installed = False


def forks_die_with_this_process() -> None:
    """Every process this one forks from its main thread (RQ's work horse, RQ's scheduler
    process) gets SIGKILL from Linux when this process dies, SIGKILL included.

    RQ's horse calls ``os.setpgrp()``, so no signal to the worker's group reaches it, and a
    worker that dies without killing it (SIGKILL, OOM, its supervisor's parent-death signal)
    would leave it running its job, reparented to PID 1, while the job is retried elsewhere.
    Forks from other threads are left alone: the signal follows the forking thread's death.
    """
    global _fork_hook_installed
    if _fork_hook_installed or not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    forker: dict[str, int] = {}

    def before() -> None:
        forker["pid"] = os.getpid() if threading.current_thread() is threading.main_thread() else 0

    def after_in_child() -> None:
        if not forker.get("pid"):
            return
        libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL))
        if os.getppid() != forker["pid"]:  # the worker died before the prctl: go now
            os.kill(os.getpid(), signal.SIGKILL)

    os.register_at_fork(before=before, after_in_child=after_in_child)
    _fork_hook_installed = True


class Command(BaseCommand):
    help = (
        "Run a worker for the given queues (default: the four job queues and 'default', where "
        "scheduled maintenance runs). RQ's scheduler runs too, so delayed retries happen."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("queues", nargs="*", help="queue names (default: all job queues)")
        parser.add_argument("--burst", action="store_true", help="quit when the queues are empty")
        parser.add_argument(
            "--no-scheduler",
            action="store_true",
            help="do not run RQ's scheduler here (another worker must, or retries never fire)",
        )
        parser.add_argument("--name", default=None, help="worker name (default: RQ's)")
        parser.add_argument(
            "--simple", action="store_true", help="run jobs in this process (no fork)"
        )
        parser.add_argument("--max-jobs", type=int, default=None)
        parser.add_argument(
            "--import",
            dest="imports",
            action="append",
            default=[],
            metavar="MODULE",
            help="import MODULE first (extra job kinds outside installed apps' jobs.py)",
        )
        parser.add_argument("--logging-level", default="INFO")

    def handle(
        self,
        *args: Any,
        queues: list[str],
        burst: bool,
        no_scheduler: bool,
        name: str | None,
        simple: bool,
        max_jobs: int | None,
        logging_level: str,
        imports: list[str],
        **options: Any,
    ) -> None:
        for module in imports:
            try:
                importlib.import_module(module)
            except ImportError as exc:
                raise CommandError(f"Cannot import {module!r}: {exc}") from exc
        names = queues or [*settings.JOB_QUEUES, "default"]
        unknown = [q for q in names if q not in settings.RQ_QUEUES]
        if unknown:
            raise CommandError(
                f"Unknown queue(s): {', '.join(unknown)}. Known: {', '.join(settings.RQ_QUEUES)}"
            )
        rq_queues = [django_rq.get_queue(q) for q in names]
        forks_die_with_this_process()
        worker_class = JobsSimpleWorker if simple else JobsWorker
        work_through_redis_outages(
            lambda: worker_class(rq_queues, connection=rq_queues[0].connection, name=name),
            burst=burst,
            with_scheduler=not no_scheduler,
            max_jobs=max_jobs,
            logging_level=logging_level,
        )
