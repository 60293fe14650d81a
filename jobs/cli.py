"""What every job-triggering command shares: ``--wait`` / ``--sync`` and reporting the outcome.

Without either flag a command records the job and returns at once (a worker runs it).
``--wait`` shows a progress bar until the job settles; ``--sync`` runs the job in this
process through the same runner the workers use (no Redis or worker needed), then the jobs it
spawned (its children, theirs, …) the same way, so the work is done when the command returns.
Both exit non-zero (CommandError) when the job ends failed or cancelled.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import TypeVar

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from tqdm import tqdm

from jobs.models import Job, JobState, JobTrigger
from jobs.runner import run_inline
from jobs.selectors import wait_for_job
from jobs.wording import plural

TRIGGER = JobTrigger.COMMAND
T = TypeVar("T")


def add_job_arguments(parser: CommandParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--wait",
        action="store_true",
        help="Show a progress bar until the job settles; exit non-zero if it failed.",
    )
    group.add_argument(
        "--sync",
        action="store_true",
        help="Run the job here and now through the job runner (no Redis or worker needed).",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="With --wait: give up waiting after this many seconds (the job keeps going).",
    )


def parse_ids(values: Iterable[object] | None, what: str = "id") -> list[int]:
    """Positive integer ids from the command line, or CommandError naming the bad one."""
    ids = []
    for value in values or []:
        for part in str(value).split(","):
            part = part.strip()
            if not part:
                continue
            try:
                number = int(part)
            except ValueError:
                raise CommandError(f"{part!r} is not a valid {what} (expected a number).") from None
            if number < 1:
                raise CommandError(f"{part!r} is not a valid {what} (expected a positive number).")
            ids.append(number)
    return list(dict.fromkeys(ids))


def create_job(request: Callable[[], T]) -> T:
    """Call a request function in one transaction; a refused request becomes CommandError.

    Refusals are the exceptions that follow the error protocol (an ``api_code`` and a
    ``message``, see ``api/errors.py``) and plain ``ValueError``s.

    The transaction means a refused request leaves nothing behind, and the job reaches RQ
    only once it is committed.
    """
    try:
        with transaction.atomic():
            return request()
    except Exception as exc:
        if getattr(exc, "api_code", None) is None and not isinstance(exc, ValueError):
            raise
        raise CommandError(getattr(exc, "message", None) or str(exc)) from exc


def _describe(job: Job) -> str:
    target = f" [{job.target_label}]" if job.target_label else ""
    return f"{job.kind} job {job.pk}{target}"


def _result_text(job: Job) -> str:
    if job.result is None:
        return ""
    return json.dumps(job.result, indent=2, sort_keys=True, default=str)


def report_job(
    command: BaseCommand, job: Job, *, wait: bool, sync: bool, timeout: float | None = None
) -> Job:
    """Run / wait for / just announce ``job`` as the flags say, print the outcome."""
    out = command.stdout
    merged = f" (merged into a pending job, {job.merged_count} merged)" if job.merged_count else ""
    if sync:
        out.write(f"Running {_describe(job)} inline{merged}…")
        job = run_inline(job)
        if not job.is_settled:  # a worker claimed it first: follow that run instead
            job = _wait_with_bar(command, job, timeout=timeout)
        _report_spawned(command, run_spawned_inline(job))
    elif wait:
        out.write(f"Enqueued {_describe(job)}{merged}; waiting for a worker…")
        job = _wait_with_bar(command, job, timeout=timeout)
    else:
        out.write(
            f"Enqueued {_describe(job)}{merged}. Follow it in the admin (System → Jobs) "
            f"or with: manage.py jobs show {job.pk}"
        )
        return job
    return finish(command, job)


def report_jobs(
    command: BaseCommand,
    jobs: list[Job],
    *,
    wait: bool,
    sync: bool,
    timeout: float | None = None,
) -> list[Job]:
    """``report_job`` for each of several jobs one request made (a feed bigger than one
    fan-out holds), in order: every one runs (``--sync``), is waited for or announced, even
    when an earlier one failed; then CommandError names the ones that did not complete."""
    if not jobs:
        raise CommandError("Nothing to do: no job was needed.")
    if len(jobs) == 1:
        return [report_job(command, jobs[0], wait=wait, sync=sync, timeout=timeout)]
    command.stdout.write(f"{plural(len(jobs), 'job')}:")
    done, failures = [], []
    for job in jobs:
        try:
            done.append(report_job(command, job, wait=wait, sync=sync, timeout=timeout))
        except CommandError as exc:
            failures.append(str(exc))
    if failures:
        raise CommandError(
            f"{len(failures)} of {plural(len(jobs), 'job')} did not complete: "
            + "; ".join(failures)
        )
    return done


# A spawned job still to run: recorded, not yet claimed (or waiting for its next attempt).
_WAITING = (JobState.PENDING, JobState.RETRYING)


def run_spawned_inline(job: Job) -> list[Job]:
    """Run here, in creation order, the waiting jobs ``job`` spawned — its children, then
    theirs — until none remain; returns them as they settled.

    A handler run inline leaves the jobs it asks for undispatched (nothing else would run them
    without a worker); this is where they run, so no handler calls the runner itself. A job
    another request opened and this one only added to is not its child: whoever opened it runs
    it. A parent's own children already ran inside ``run_inline``; they are settled by now.
    """
    ran: list[Job] = []
    seen: set = set()
    parents = [job.pk]
    while parents:
        waiting = (
            Job.objects.filter(parent_id__in=parents, state__in=_WAITING)
            .exclude(pk__in=seen)
            .order_by("created_at", "pk")
        )
        parents = []
        for child in list(waiting):
            seen.add(child.pk)  # run once, even if it is still waiting afterwards
            ran.append(run_inline(child))
            parents.append(child.pk)
    return ran


def _report_spawned(command: BaseCommand, ran: list[Job]) -> None:
    if not ran:
        return
    unfinished = [j for j in ran if j.state != JobState.COMPLETED]
    command.stdout.write(f"Ran {plural(len(ran), 'job')} it spawned here.")
    for job in unfinished:  # the requested job's outcome decides the exit status, not these
        command.stdout.write(command.style.WARNING(f"{_describe(job)} ended {job.state}."))


def _wait_with_bar(command: BaseCommand, job: Job, *, timeout) -> Job:
    bar = tqdm(
        total=100,
        desc=job.kind,
        unit="%",
        file=command.stderr._out,  # the bar goes to stderr, results to stdout
        leave=True,
        bar_format="{desc}: {percentage:3.0f}%|{bar}| {postfix}",
    )

    def on_progress(row: Job) -> None:
        bar.n = row.progress
        bar.set_postfix_str(f"{row.state} {row.progress_message}".strip(), refresh=False)
        bar.refresh()

    try:
        job = wait_for_job(job.pk, timeout, on_progress=on_progress)
    finally:
        bar.close()
    if not job.is_settled:
        raise CommandError(
            f"Gave up waiting after {timeout}s; {_describe(job)} is still {job.state}."
        )
    return job


def finish(command: BaseCommand, job: Job) -> Job:
    """Print the settled job's result; CommandError if it did not complete."""
    text = _result_text(job)
    if job.state == JobState.COMPLETED:
        command.stdout.write(command.style.SUCCESS(f"{_describe(job)} completed."))
        if text:
            command.stdout.write(text)
        return job
    last = job.errors[-1]["message"] if job.errors else job.progress_message
    raise CommandError(
        f"{_describe(job)} ended {job.state} after {job.attempts} attempt(s): {last}"
    )
