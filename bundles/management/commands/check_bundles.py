"""Consistency check of bundles, optionally fixing them and mailing the site admins."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from bundles import requests
from bundles.selectors import SCOPES
from jobs import cli as jobcli


class Command(BaseCommand):
    help = (
        "Check bundles' integrity (scope all, active or broken, or --ids); --fix repairs what "
        "can be repaired and marks the rest broken; --notify mails the admins about problems."
    )

    def add_arguments(self, parser) -> None:
        # Not argparse choices: a bad scope gets our own message (and CommandError).
        parser.add_argument(
            "--scope", default=None, help=f"One of {', '.join(SCOPES)} (default all)."
        )
        parser.add_argument("--ids", nargs="+", metavar="BUNDLE_ID", help="Check these bundles.")
        parser.add_argument("--fix", action="store_true", help="Repair what can be repaired.")
        parser.add_argument(
            "--notify", action="store_true", help="Mail the site admins if problems are found."
        )
        parser.add_argument("--reason", default="", help="Why; shown on the job.")
        jobcli.add_job_arguments(parser)

    def handle(self, *args, **options) -> None:
        scope = options["scope"]
        if options["ids"] is not None:
            if scope is not None:
                raise CommandError("Give --scope or --ids, not both.")
            scope = jobcli.parse_ids(options["ids"], "bundle id")
            if not scope:
                raise CommandError("Nothing selected: --ids needs at least one bundle id.")
        elif scope is None:
            scope = "all"
        job = jobcli.create_job(
            lambda: requests.bundles_check_enqueue(
                scope=scope,
                fix=options["fix"],
                notify_admins=options["notify"],
                trigger=jobcli.TRIGGER,
                reason=options["reason"] or "Requested from the command line",
                dispatch_on_commit=not options["sync"],  # --sync runs it here, not in RQ
            )
        )
        jobcli.report_job(
            self, job, wait=options["wait"], sync=options["sync"], timeout=options["timeout"]
        )
