"""Tell the bundles that variants changed behind the signals' back (an import's update())."""

from __future__ import annotations

import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from bundles import feeds
from jobs import cli as jobcli


class Command(BaseCommand):
    help = (
        "Recompute the bundles using these variants, for imports that changed them with "
        "QuerySet.update() or bulk_update() (no signals). Makes one fan-out job that fills "
        "coalesced recompute batches."
    )

    def add_arguments(self, parser) -> None:
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument(
            "--ids", nargs="+", metavar="VARIANT_ID", help="Variant ids (space or comma separated)."
        )
        source.add_argument(
            "--file",
            metavar="PATH",
            help="A file of variant ids: one per line, or separated by commas or spaces; "
            "'#' starts a comment; '-' reads standard input.",
        )
        parser.add_argument("--reason", default="", help="Why; shown on the job.")
        jobcli.add_job_arguments(parser)

    def handle(self, *args, **options) -> None:
        values = options["ids"] if options["ids"] else self._read(options["file"])
        ids = jobcli.parse_ids(values, "variant id")
        if not ids:
            raise CommandError("No variant ids given.")
        jobs = jobcli.create_job(
            lambda: feeds.variants_changed_feed(
                variant_ids=ids,
                reason=options["reason"],
                trigger=jobcli.TRIGGER,
                dispatch_on_commit=not options["sync"],
            )
        )
        jobcli.report_jobs(
            self, jobs, wait=options["wait"], sync=options["sync"], timeout=options["timeout"]
        )

    def _read(self, path: str) -> list[str]:
        try:
            text = sys.stdin.read() if path == "-" else Path(path).read_text()
        except OSError as exc:
            raise CommandError(f"Cannot read {path}: {exc.strerror or exc}") from exc
        values: list[str] = []
        for line in text.splitlines():
            values += line.split("#", 1)[0].replace(",", " ").split()
        return values
