"""Rebuild bundles' search entries."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from bundles import requests
from jobs import cli as jobcli


class Command(BaseCommand):
    help = "Rebuild the search entries of some bundles (ids) or of all of them (--all)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("ids", nargs="*", help="Bundle ids (space or comma separated).")
        parser.add_argument("--all", action="store_true", help="Reindex every bundle.")
        parser.add_argument("--reason", default="", help="Why; shown on the job.")
        jobcli.add_job_arguments(parser)

    def handle(self, *args, **options) -> None:
        ids = jobcli.parse_ids(options["ids"], "bundle id")
        if not ids and not options["all"]:
            raise CommandError("Nothing selected: give bundle ids or --all.")
        if ids and options["all"]:
            raise CommandError("Give bundle ids or --all, not both.")
        job = jobcli.create_job(
            lambda: requests.bundles_reindex_enqueue(
                bundle_ids=None if options["all"] else ids,
                trigger=jobcli.TRIGGER,
                reason=options["reason"] or "Requested from the command line",
                dispatch_on_commit=not options["sync"],  # --sync runs it here, not in RQ
            )
        )
        jobcli.report_job(
            self, job, wait=options["wait"], sync=options["sync"], timeout=options["timeout"]
        )
