"""Look after ledger jobs from the shell: list, show, retry, cancel, purge, relay."""

from __future__ import annotations

import getpass
import json

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from jobs import conf
from jobs.errors import JobError
from jobs.maintenance.ledger_pass import relay_and_reconcile
from jobs.maintenance.prune import jobs_purge
from jobs.models import Job, JobState
from jobs.selectors import job_get, resolve_job_id, wait_for_job
from jobs.services import job_cancel, job_retry
from jobs.wording import plural

USER_HELP = (
    "username to act as: its permission is checked and the audit entry names it "
    "(default: the OS user, recorded on the job)"
)


class Command(BaseCommand):
    help = "Ledger jobs: list, show, retry, cancel, purge settled ones, relay/reconcile."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

        p = sub.add_parser("list", help="newest jobs first")
        p.add_argument("--state", choices=JobState.values)
        p.add_argument("--kind")
        p.add_argument("--queue")
        p.add_argument("--target", help="TYPE:ID, e.g. bundle:12")
        p.add_argument("--limit", type=int, default=20)

        p = sub.add_parser("show", help="one job with its payload, result and errors")
        p.add_argument("job_id", help="the id, or its first 8+ characters as the admin shows")

        p = sub.add_parser("retry", help="run a failed or cancelled job again")
        p.add_argument("job_id", help="the id, or its first 8+ characters as the admin shows")
        p.add_argument("--user", help=USER_HELP)
        p.add_argument("--wait", action="store_true", help="wait until it settles")
        p.add_argument("--timeout", type=float, default=None)

        p = sub.add_parser("cancel", help="cancel a pending, retrying or running job")
        p.add_argument("job_id", help="the id, or its first 8+ characters as the admin shows")
        p.add_argument("--user", help=USER_HELP)

        p = sub.add_parser("purge", help="delete settled jobs older than N days")
        p.add_argument(
            "--older-than-days",
            type=int,
            default=None,
            help=f"default JOBS_RETENTION_DAYS ({conf.retention_days()})",
        )

        p = sub.add_parser("relay", help="re-send undispatched jobs and reconcile dead ones now")
        p.add_argument(
            "--lock-timeout",
            type=float,
            default=30.0,
            help="seconds to wait for a pass running elsewhere (default 30)",
        )

    def handle(self, *args, action, **options):
        try:
            getattr(self, f"do_{action}")(**options)
        except JobError as exc:
            raise CommandError(exc.message) from exc

    # -- actions -------------------------------------------------------------------------
    def do_list(self, *, state, kind, queue, target, limit, **_):
        if not 1 <= limit <= 1000:
            raise CommandError("--limit must be between 1 and 1000")
        qs = Job.objects.all()
        if state:
            qs = qs.filter(state=state)
        if kind:
            qs = qs.filter(kind=kind)
        if queue:
            qs = qs.filter(queue=queue)
        if target:
            ttype, sep, tid = target.partition(":")
            if not sep or not ttype or not tid:
                raise CommandError("--target must look like TYPE:ID, e.g. bundle:12")
            qs = qs.filter(target_links__target_type=ttype, target_links__target_id=tid)
        rows = list(qs[:limit])
        if not rows:
            self.stdout.write("No jobs.")
            return
        line = "{:<36}  {:<19}  {:<9}  {:>8}  {:>8}  {:<18}  {}"
        self.stdout.write(
            line.format("ID", "CREATED (UTC)", "STATE", "PROGRESS", "ATTEMPTS", "KIND", "TARGET")
        )
        for job in rows:
            target_text = job.target_label or (
                f"{job.target_type}:{job.target_id}" if job.target_id else ""
            )
            self.stdout.write(
                line.format(
                    str(job.pk),
                    f"{job.created_at:%Y-%m-%d %H:%M:%S}",
                    job.state,
                    f"{job.progress}%",
                    f"{job.attempts}/{job.max_attempts}",
                    job.kind,
                    target_text,
                )
            )

    def do_show(self, *, job_id, **_):
        job = job_get(job_id=resolve_job_id(job_id))
        w = self.stdout.write
        w(f"Job {job.pk}")
        w(f"  kind        {job.kind} (queue {job.queue})")
        w(f"  state       {job.state}  progress {job.progress}% {job.progress_message}")
        w(f"  attempts    {job.attempts}/{job.max_attempts}")
        w(f"  trigger     {job.trigger}  reason: {job.reason or '-'}")
        if job.requested_by_id:
            w(f"  requested   by {job.requested_by}")
        if job.target_id:
            w(f"  target      {job.target_type}:{job.target_id} {job.target_label}")
        if job.parent_id:
            w(f"  parent      {job.parent_id}")
        children = job.children.count()
        if children:
            w(f"  children    {children}")
        if job.dedup_key:
            w(f"  dedup       {job.dedup_key} (merged {job.merged_count})")
        if job.last_action:
            who = job.last_action_by or "-"
            w(f"  last action {job.last_action} by {who} at {job.last_action_at}")
        for label in ("created_at", "dispatched_at", "started_at", "heartbeat_at", "settled_at"):
            value = getattr(job, label)
            if value:
                w(f"  {label:<11} {value.isoformat()}")
        if job.next_attempt_at:
            w(f"  next try    {job.next_attempt_at.isoformat()}")
        w(f"  payload     {json.dumps(job.payload, sort_keys=True)}")
        if job.result is not None:
            w(f"  result      {json.dumps(job.result, sort_keys=True)}")
        for err in job.errors or []:
            w(f"  error (attempt {err.get('attempt')}, {err.get('at')}): {err.get('message')}")
            if err.get("traceback"):
                for line in err["traceback"].rstrip().splitlines():
                    w(f"      {line}")

    @staticmethod
    def _user(username: str | None):
        if not username:
            return None
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user {username!r}.")
        return user

    def do_retry(self, *, job_id, wait, timeout, user, **_):
        job = job_retry(
            job_id=resolve_job_id(job_id),
            user=self._user(user),
            actor=f"{getpass.getuser()} (shell)",
        )
        self.stdout.write(f"Job {job.pk} queued again as attempt {job.attempts + 1}.")
        if wait:
            job = wait_for_job(job.pk, timeout, on_progress=self._print_progress)
            self.stdout.write(f"Job {job.pk} {job.state}.")
            if job.state != JobState.COMPLETED:
                raise CommandError(f"Job {job.pk} ended {job.state}")

    def do_cancel(self, *, job_id, user, **_):
        job = job_cancel(job_id=resolve_job_id(job_id), user=self._user(user))
        if job.state == JobState.CANCELLED:
            self.stdout.write(f"Job {job.pk} cancelled; it will not run.")
        else:
            self.stdout.write(f"Job {job.pk} is running; asked it to stop.")

    def do_purge(self, *, older_than_days, **_):
        days = conf.retention_days() if older_than_days is None else older_than_days
        if days < 0:
            raise CommandError("--older-than-days must be 0 or more")
        count = jobs_purge(older_than_days=days)
        self.stdout.write(
            f"Purged {plural(count, 'settled job')} older than {plural(days, 'day')}."
        )

    def do_relay(self, *, lock_timeout, **_):
        if lock_timeout < 0:
            raise CommandError("--lock-timeout must be 0 or more")
        # The same locked pass as the workers' and the cron entry's, never alongside them.
        outcome = relay_and_reconcile(lock_timeout=lock_timeout)
        if outcome.get("skipped"):
            raise CommandError(f"Not run: {outcome['skipped']}")
        self.stdout.write(
            f"Relayed {plural(outcome['relayed'], 'undispatched job')}; "
            f"reconciled {plural(outcome['reconciled'], 'dead job')}."
        )

    def _print_progress(self, job: Job) -> None:
        self.stdout.write(f"  {job.state:<9} {job.progress:>3}% {job.progress_message}")
