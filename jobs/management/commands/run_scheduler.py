"""Run the cron scheduler: one active instance, re-synced from the Schedule table each cycle."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from rq_scheduler.utils import setup_loghandlers

from jobs import conf
from jobs.scheduling.listing import list_schedules
from jobs.scheduling.loop import SchedulerLoop
from jobs.scheduling.scheduler import get_scheduler
from jobs.scheduling.sync import register_schedules


class Command(BaseCommand):
    help = (
        "Run the scheduler loop: every cycle it re-syncs rq-scheduler from the Schedule table "
        "and enqueues what is due. One instance is active across machines (a Redis lock); "
        "others wait and take over. Redis outages are waited out, never fatal."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--register-only", action="store_true", help="register the schedules and exit"
        )
        parser.add_argument(
            "--burst", action="store_true", help="enqueue what is due once, then exit"
        )
        parser.add_argument(
            "--interval",
            type=int,
            default=None,
            help="seconds between cycles (default JOBS_SCHEDULER_INTERVAL, 10)",
        )
        parser.add_argument(
            "--lock-ttl",
            type=int,
            default=None,
            help="seconds the active instance's lock lives unless renewed "
            "(default JOBS_SCHEDULER_LOCK_TTL, 30)",
        )

    def handle(self, *args, register_only, burst, interval, lock_ttl, **options):
        interval = interval if interval is not None else conf.scheduler_interval()
        lock_ttl = lock_ttl if lock_ttl is not None else conf.scheduler_lock_ttl()
        if interval < 1:
            raise CommandError("--interval must be at least 1 second")
        if lock_ttl <= interval:
            raise CommandError("--lock-ttl must be longer than the interval")
        scheduler = get_scheduler(interval=interval)
        if register_only:
            register_schedules(scheduler)
        for item in list_schedules():
            when = f"{item['next_run']:%Y-%m-%d %H:%M} UTC" if item["next_run"] else "disabled"
            self.stdout.write(
                f"{item['id']:<28} {item['cron']:<12} next {when}  {item['description']}"
            )
        if register_only:
            return
        setup_loghandlers("INFO")
        SchedulerLoop(scheduler, interval=interval, lock_ttl=lock_ttl).run(burst=burst)
