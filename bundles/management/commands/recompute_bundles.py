"""Recompute bundles: some ids, all of them, or those using changed variants."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from bundles import bulk, feeds, requests
from bundles.errors import InvalidJobOptions
from bundles.models import Bundle
from jobs import cli as jobcli


class Command(BaseCommand):
    help = (
        "Recompute bundle prices and availability in the background. One id makes a "
        "recompute job; several ids or --all make a bulk job with a child job per batch; "
        "--variants makes a fan-out job (for imports that bypassed signals)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("ids", nargs="*", help="Bundle ids (space or comma separated).")
        parser.add_argument("--all", action="store_true", help="Recompute every bundle.")
        parser.add_argument(
            "--variants",
            nargs="+",
            metavar="VARIANT_ID",
            help="Recompute the bundles that use these variants (changed by an import).",
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=None,
            help=(
                "Bundles per child job for several ids or --all "
                "(1–1000; default BUNDLES_BULK_BATCH_SIZE, 500)."
            ),
        )
        parser.add_argument("--reason", default="", help="Why; shown on the job.")
        parser.add_argument(
            "--force", action="store_true", help="Rewrite shell and search entry even if equal."
        )
        jobcli.add_job_arguments(parser)

    def handle(self, *args, **options) -> None:
        ids = jobcli.parse_ids(options["ids"], "bundle id")
        variant_ids = jobcli.parse_ids(options["variants"], "variant id")
        chosen = sum(bool(x) for x in (ids, options["all"], variant_ids))
        if chosen == 0:
            raise CommandError("Nothing selected: give bundle ids, --all or --variants.")
        if chosen > 1:
            raise CommandError("Give only one of: bundle ids, --all, --variants.")
        try:
            chosen_size = options["batch_size"]
            batch_size = bulk.batch_size_checked(
                bulk.bulk_batch_size() if chosen_size is None else chosen_size
            )
        except InvalidJobOptions as exc:
            raise CommandError(f"--batch-size: {exc.message}") from exc
        reason = options["reason"] or "Requested from the command line"
        # --sync runs the job right here: RQ must not get it too.
        dispatch = not options["sync"]

        if variant_ids:
            # The feed's door: unknown ids are refused (nothing recorded), then one fan-out.
            jobs = jobcli.create_job(
                lambda: feeds.variants_changed_feed(
                    variant_ids=variant_ids,
                    reason=reason,
                    trigger=jobcli.TRIGGER,
                    dispatch_on_commit=dispatch,
                )
            )
            jobcli.report_jobs(
                self, jobs, wait=options["wait"], sync=options["sync"], timeout=options["timeout"]
            )
            return
        if len(ids) == 1:
            job = jobcli.create_job(
                lambda: requests.bundle_recompute_request(
                    bundle_id=ids[0],
                    trigger=jobcli.TRIGGER,
                    reason=reason,
                    force=options["force"],
                    dispatch_on_commit=dispatch,
                )
            )
        else:
            if options["all"]:
                ids = list(Bundle.objects.order_by("pk").values_list("pk", flat=True))
                if not ids:
                    raise CommandError("There are no bundles to recompute.")
            job = jobcli.create_job(
                lambda: bulk.bundles_bulk_enqueue(
                    operation="recompute",
                    bundle_ids=ids,
                    batch_size=batch_size,
                    continue_on_error=True,
                    trigger=jobcli.TRIGGER,
                    reason=reason,
                    dispatch_on_commit=dispatch,
                )
            )
        jobcli.report_job(
            self, job, wait=options["wait"], sync=options["sync"], timeout=options["timeout"]
        )
