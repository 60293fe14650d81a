"""Register the cron schedules (idempotently) and run rq-scheduler."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from rq_scheduler.utils import setup_loghandlers

from jobs.schedules import (
    SCHEDULER_INTERVAL,
    ScheduleError,
    get_scheduler,
    list_schedules,
    register_schedules,
)


class Command(BaseCommand):
    help = (
        "Register JOBS_SCHEDULES with rq-scheduler (each once, under a stable id; stale ones are "
        "removed) and run the scheduler loop. Times are UTC."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--register-only", action="store_true", help="register the schedules and exit"
        )
        parser.add_argument(
            "--burst", action="store_true", help="enqueue what is due once, then exit"
        )
        parser.add_argument(
            "--interval", type=int, default=None, help="seconds between checks (default 10)"
        )

    def handle(self, *args, register_only, burst, interval, **options):
        if interval is not None and interval < 1:
            raise CommandError("--interval must be at least 1 second")
        scheduler = get_scheduler(interval=interval or SCHEDULER_INTERVAL)
        try:
            register_schedules(scheduler)
        except ScheduleError as exc:
            raise CommandError(exc.message) from exc
        for item in list_schedules():
            self.stdout.write(
                f"{item['id']:<28} {item['cron']:<12} next {item['next_run']:%Y-%m-%d %H:%M} UTC"
                f"  {item['description']}"
            )
        if register_only:
            return
        setup_loghandlers("INFO")
        scheduler.run(burst=burst)
