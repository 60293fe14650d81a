"""What a handler gets: its ledger row, throttled progress reporting and cancellation checks.

Its own module so the kind registry (which names ``JobContext`` in handler signatures) and the
runner (which builds one per attempt) import it without importing each other.
"""

from __future__ import annotations

import logging
import threading
import time

from django.db.models import QuerySet
from django.utils import timezone

from jobs import conf
from jobs.models import Job, JobState

logger = logging.getLogger(__name__)


class JobCancelled(Exception):
    """Raised inside a handler (by ``set_progress`` / ``check_cancelled``) when cancel was asked."""


class AttemptSuperseded(Exception):
    """Raised inside a handler (by ``set_progress`` / ``check_cancelled``) once its attempt is no
    longer the row's current one: reconcile settled it (a worker judged dead) and perhaps a new
    attempt runs elsewhere, or someone else settled the row. Whatever this copy does next would
    run the job twice, so it stops; the runner records nothing for it."""


class JobContext:
    """What a handler gets: its ledger row, progress reporting and cancellation checks.

    ``set_progress`` raises :class:`JobCancelled` once a cancel was requested, so a handler that
    reports progress stops at its next step without doing anything itself. A handler that sees
    ``cancel_requested()`` return True may return early: the job then ends ``cancelled``.
    """

    def __init__(self, job: Job, rq_job=None) -> None:
        self.job = job
        self.rq_job = rq_job
        self._last_write = 0.0
        self._last_cancel_check = 0.0
        self._cancel = False
        self._superseded = False
        self.cancel_seen = False
        self._lock = threading.Lock()

    # -- progress ------------------------------------------------------------------------
    def set_progress(self, pct: int, message: str = "") -> None:
        pct = max(0, min(100, int(pct)))
        message = (message or "")[:255]
        self.job.progress, self.job.progress_message = pct, message
        now = time.monotonic()
        if pct == 100 or now - self._last_write >= conf.progress_min_interval():
            self._last_write = now
            self._write_progress(pct, message)
        self.check_cancelled()

    def current_attempt(self) -> QuerySet[Job]:
        """This attempt's row, while it is still running (the filter every write uses)."""
        return Job.objects.filter(
            pk=self.job.pk, state=JobState.RUNNING, attempts=self.job.attempts
        )

    def _write_progress(self, pct: int, message: str) -> None:
        touched = self.current_attempt().update(
            progress=pct, progress_message=message, heartbeat_at=timezone.now()
        )
        if not touched:
            self._mark_superseded()
            return
        if self.rq_job is not None:
            try:
                self.rq_job.meta["progress"] = pct
                self.rq_job.meta["progress_message"] = message
                _save_meta_if_present(self.rq_job)
            except Exception:  # Redis hiccup: the ledger has the progress, that is enough.
                logger.debug("Could not save RQ meta for %s", self.job.pk, exc_info=True)

    # -- cancellation --------------------------------------------------------------------
    def cancel_requested(self) -> bool:
        """True once someone asked to cancel this job (checked against the DB, throttled)."""
        now = time.monotonic()
        if not self._cancel and now - self._last_cancel_check >= conf.progress_min_interval():
            self._last_cancel_check = now
            self._cancel = bool(Job.objects.filter(pk=self.job.pk, cancel_requested=True).exists())
        if self._cancel:
            self.cancel_seen = True
        return self._cancel or self._superseded

    def check_cancelled(self) -> None:
        """Raise :class:`JobCancelled` if a cancel was requested, :class:`AttemptSuperseded` if
        this attempt is no longer the row's current one."""
        if self._superseded:
            raise AttemptSuperseded(
                f"Attempt {self.job.attempts} of job {self.job.pk} is no longer current"
            )
        if self.cancel_requested():
            raise JobCancelled("Cancel requested")

    def _mark_cancel(self) -> None:  # from the heartbeat thread
        self._cancel = True

    def _mark_superseded(self) -> None:  # from a progress write or the heartbeat thread
        if not self._superseded:
            logger.warning(
                "Job %s: attempt %s is no longer current; this copy stops",
                self.job.pk,
                self.job.attempts,
            )
        self._superseded = True


# RQ's ``save_meta`` is a plain HSET: on a job Redis lost (restarted empty) it would leave a hash
# holding only ``meta``, which RQ cannot read back ("Unexpected job format").
_SAVE_META_IF_PRESENT = """
if redis.call('exists', KEYS[1]) == 1 then
    return redis.call('hset', KEYS[1], 'meta', ARGV[1])
end
return -1
"""


def _save_meta_if_present(rq_job) -> None:
    rq_job.connection.eval(
        _SAVE_META_IF_PRESENT, 1, rq_job.key, rq_job.serializer.dumps(rq_job.meta)
    )
