"""The jobs app's own alert conditions, registered when the jobs app is ready.

Each measure is a few indexed queries (see the Job indexes in ``jobs.models``):

* ``failure_rate``: failed / (completed + failed) of the jobs settled in the window, in
  percent, over a kind, a queue or all jobs (``job_settled_idx`` range); fewer than
  ``min_count`` settled jobs measure nothing;
* ``oldest_waiting``: seconds the oldest pending job of a queue (paused or not) has waited,
  one ``job_state_queue_created_idx`` probe per queue;
* ``schedule_missed``: schedules whose fire was skipped (missed beyond their grace period)
  within the window: the skipped ``ScheduleFire`` rows, with ``Schedule.last_skipped_note``.
  A scheduler that is down is ``/health/``'s to report; its missed fires are recorded as
  skipped when it comes back;
* ``schedule_failed``: enabled schedules whose last fire's job failed;
* ``dead_workers``: workers seen dead in the window (``jobs.alerts.dead_workers``).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import Count

from jobs import conf
from jobs.alerts.conditions import Measurement, register_condition
from jobs.alerts.dead_workers import dead_worker_names
from jobs.alerts.models import AlertRule, SubjectType
from jobs.models import FireOutcome, Job, JobState, Schedule, ScheduleFire
from jobs.pause import paused_queues


def measure_failure_rate(rule: AlertRule, now: datetime) -> Measurement:
    """Percent of the jobs settled in the window that failed."""
    since = now - timedelta(seconds=rule.window_seconds)
    jobs = Job.objects.filter(
        settled_at__gte=since, state__in=(JobState.COMPLETED, JobState.FAILED)
    )
    if rule.subject_type == SubjectType.KIND:
        jobs = jobs.filter(kind=rule.subject)
    elif rule.subject_type == SubjectType.QUEUE:
        jobs = jobs.filter(queue=rule.subject)
    counts = dict(jobs.order_by().values_list("state").annotate(n=Count("pk")))
    failed = counts.get(JobState.FAILED, 0)
    settled = failed + counts.get(JobState.COMPLETED, 0)
    where = f"of {rule.subject_label}" if rule.subject_type else "of all jobs"
    minutes = rule.window_seconds // 60
    if settled == 0 or settled < rule.min_count:
        return Measurement(None, f"{settled} settled {where} in {minutes} min (too few to rate)")
    rate = 100.0 * failed / settled
    return Measurement(rate, f"{failed} of {settled} jobs {where} failed in {minutes} min")


def measure_oldest_waiting(rule: AlertRule, now: datetime) -> Measurement:
    """Seconds the oldest pending job of a queue (or of any queue) has waited."""
    queues = [rule.subject] if rule.subject_type == SubjectType.QUEUE else conf.job_queues()
    oldest: tuple[datetime, str] | None = None
    for queue in queues:  # one index probe each (state, queue, created_at)
        created = (
            Job.objects.filter(state=JobState.PENDING, queue=queue)
            .order_by("created_at")
            .values_list("created_at", flat=True)
            .first()
        )
        if created is not None and (oldest is None or created < oldest[0]):
            oldest = (created, queue)
    if oldest is None:
        return Measurement(0.0, "no job is waiting")
    age = max(0.0, (now - oldest[0]).total_seconds())
    paused = " (paused)" if oldest[1] in paused_queues() else ""
    return Measurement(age, f"the oldest job in {oldest[1]}{paused} has waited {int(age)}s")


def _schedules(rule: AlertRule):
    schedules = Schedule.objects.filter(enabled=True)
    if rule.subject_type == SubjectType.SCHEDULE:
        schedules = schedules.filter(name=rule.subject)
    return schedules


def measure_schedule_missed(rule: AlertRule, now: datetime) -> Measurement:
    """Schedules with a fire skipped (missed beyond its grace period) in the window."""
    since = now - timedelta(seconds=rule.window_seconds)
    # Recorded when the scheduler gave up on the fire (a late fire's own time may be older);
    # the fire rows are few (kept FIRE_HISTORY, none for the relay).
    fires = ScheduleFire.objects.filter(
        outcome=FireOutcome.SKIPPED, created_at__gte=since, schedule__enabled=True
    )
    if rule.subject_type == SubjectType.SCHEDULE:
        fires = fires.filter(schedule__name=rule.subject)
    missed = list(
        fires.order_by("schedule__name")
        .values_list("schedule__name", "schedule__last_skipped_note")
        .distinct()
    )
    if not missed:
        return Measurement(0.0, "no fire was skipped")
    text = "; ".join(f"{name}: {note}" for name, note in missed)
    return Measurement(float(len(missed)), text)


def measure_schedule_failed(rule: AlertRule, now: datetime) -> Measurement:
    """Schedules whose last fire's job failed."""
    failed = list(
        _schedules(rule).filter(last_job__state=JobState.FAILED).values_list("name", "last_job_id")
    )
    if not failed:
        return Measurement(0.0, "no schedule's last job failed")
    text = "; ".join(f"{name}: job {job_id} failed" for name, job_id in failed)
    return Measurement(float(len(failed)), text)


def measure_dead_workers(rule: AlertRule, now: datetime) -> Measurement:
    """Workers whose heartbeat went silent (or vanished unregistered) in the window."""
    names = dead_worker_names(window_seconds=rule.window_seconds, now=now)
    if not names:
        return Measurement(0.0, "no worker died")
    return Measurement(float(len(names)), f"dead: {', '.join(names[:10])}")


def register() -> None:
    register_condition(
        "failure_rate",
        label="Failure rate",
        unit="%",
        subjects=("", SubjectType.KIND, SubjectType.QUEUE),
        measure=measure_failure_rate,
    )
    register_condition(
        "oldest_waiting",
        label="Oldest waiting job",
        unit="seconds",
        subjects=("", SubjectType.QUEUE),
        measure=measure_oldest_waiting,
    )
    register_condition(
        "schedule_missed",
        label="Schedule fire skipped",
        unit="schedules",
        subjects=("", SubjectType.SCHEDULE),
        measure=measure_schedule_missed,
    )
    register_condition(
        "schedule_failed",
        label="Schedule's last job failed",
        unit="schedules",
        subjects=("", SubjectType.SCHEDULE),
        measure=measure_schedule_failed,
    )
    register_condition(
        "dead_workers",
        label="Dead workers",
        unit="workers",
        measure=measure_dead_workers,
    )
