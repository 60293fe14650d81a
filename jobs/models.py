"""The job ledger: what people see of a background job, long after Redis forgot it."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class JobState(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    RETRYING = "retrying", "Retrying"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


class LastAction(models.TextChoices):
    """What someone last asked of a job (``Job.last_action``)."""

    RETRY = "retry", "Retry"
    CANCEL = "cancel", "Cancel"


class JobTrigger(models.TextChoices):
    SIGNAL = "signal", "Signal"
    SCHEDULE = "schedule", "Schedule"
    ADMIN = "admin", "Admin"
    GRAPHQL = "graphql", "GraphQL"
    COMMAND = "command", "Command"
    TASK = "task", "Django task"


# States a job can still move out of on its own.
ACTIVE_STATES = (JobState.PENDING, JobState.RUNNING, JobState.RETRYING)
SETTLED_STATES = (JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED)


# A job's id as the doors hand it over: the UUID, or its text (a URL, a command line, GraphQL).
JobId = uuid.UUID | str


class Job(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    queue = models.CharField(max_length=64)
    kind = models.CharField(max_length=64)
    payload = models.JSONField(default=dict, blank=True)

    # What the job works on, for links and filters (e.g. "bundle", "12", "Starter kit").
    target_type = models.CharField(max_length=32, blank=True, default="")
    target_id = models.CharField(max_length=64, blank=True, default="")
    target_label = models.CharField(max_length=255, blank=True, default="")

    state = models.CharField(max_length=16, choices=JobState.choices, default=JobState.PENDING)
    progress = models.PositiveSmallIntegerField(default=0)
    progress_message = models.CharField(max_length=255, blank=True, default="")
    attempts = models.PositiveSmallIntegerField(default=0)
    max_attempts = models.PositiveSmallIntegerField(default=1)
    result = models.JSONField(null=True, blank=True)
    # One entry per failed attempt: {"attempt", "at", "message", "traceback"}.
    errors = models.JSONField(default=list, blank=True)
    # The last failed attempt's error group (``jobs.error_groups.fingerprint``); "" if none.
    error_fingerprint = models.CharField(max_length=32, blank=True, default="")

    trigger = models.CharField(max_length=16, choices=JobTrigger.choices)
    reason = models.CharField(max_length=255, blank=True, default="")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    # Who last asked for a retry or cancel (the ledger's own audit; admin writes LogEntry too).
    last_action = models.CharField(max_length=16, blank=True, default="")
    last_action_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    last_action_at = models.DateTimeField(null=True, blank=True)

    # The JOBS_SCHEDULES entry that fired this job, if any (for "last run" in the admin).
    schedule_id = models.CharField(max_length=64, blank=True, default="")

    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="children"
    )
    # A parked parent's counts of its children (``jobs.parents``): a child's settle moves them,
    # so nobody re-reads the siblings. ``counted_by_parent`` on a child: it is in them.
    children_total = models.PositiveIntegerField(default=0)
    children_settled = models.PositiveIntegerField(default=0)
    children_failed = models.PositiveIntegerField(default=0)
    children_cancelled = models.PositiveIntegerField(default=0)
    counted_by_parent = models.BooleanField(default=False)
    dedup_key = models.CharField(max_length=200, null=True, blank=True)
    merged_count = models.PositiveIntegerField(default=0)
    cancel_requested = models.BooleanField(default=False)

    worker_name = models.CharField(max_length=255, blank=True, default="")
    rq_job_id = models.CharField(max_length=64, blank=True, default="")
    next_attempt_at = models.DateTimeField(null=True, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    dispatched_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    settled_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["state"], name="job_state_idx"),
            models.Index(fields=["queue"], name="job_queue_idx"),
            models.Index(fields=["kind"], name="job_kind_idx"),
            # /metrics' jobs by state and kind: an index-only scan of the live states.
            models.Index(fields=["state", "kind"], name="job_state_kind_idx"),
            models.Index(fields=["-created_at"], name="job_created_idx"),
            models.Index(fields=["target_type", "target_id"], name="job_target_idx"),
            models.Index(fields=["dedup_key"], name="job_dedup_idx"),
            models.Index(fields=["state", "dispatched_at"], name="job_relay_idx"),
            # Admin overview and chart: "settled in the last 24 h" without scanning the ledger.
            models.Index(fields=["settled_at"], name="job_settled_idx"),
            # Admin overview: waiting / running / failed per queue, and the oldest pending job
            # per queue, from the index alone (no heap reads for 10,000s of pending rows).
            models.Index(
                fields=["state", "queue", "created_at"], name="job_state_queue_created_idx"
            ),
            # System → Jobs → Errors: failed jobs grouped by fingerprint (and kind, first/last
            # seen) from this small partial index alone; a group's jobs by one index range.
            models.Index(
                fields=["error_fingerprint", "kind", "settled_at"],
                condition=Q(state="failed"),
                name="job_failed_fingerprint_idx",
            ),
            # Reconcile's repair: settled children whose on-settle hook was lost (a handful).
            models.Index(
                fields=["parent"],
                condition=Q(
                    parent__isnull=False,
                    counted_by_parent=False,
                    state__in=["completed", "failed", "cancelled"],
                ),
                name="job_uncounted_child_idx",
            ),
        ]
        constraints = [
            # Two racing enqueues of the same key make one row: the database decides.
            models.UniqueConstraint(
                fields=["dedup_key"],
                condition=Q(dedup_key__isnull=False, state="pending"),
                name="job_dedup_not_started_uniq",
            ),
            models.CheckConstraint(condition=Q(progress__lte=100), name="job_progress_lte_100"),
        ]
        permissions = [
            ("retry_job", "Can retry a job"),
            ("cancel_job", "Can cancel a job"),
            ("run_schedule", "Can run a schedule now"),
            ("pause_queue", "Can pause and resume a queue"),
        ]

    def __str__(self) -> str:
        target = f" {self.target_label or self.target_id}" if self.target_id else ""
        return f"{self.kind}{target} ({self.state})"

    @property
    def is_settled(self) -> bool:
        return self.state in SETTLED_STATES


class JobHourStats(models.Model):
    """How many jobs settled in one closed UTC hour, per queue, kind and state.

    A read-through rollup (``jobs.rollup``): the chart and the strip's 24-hour counts read these
    rows for whole hours that ended more than ``rollup.CLOSE_AFTER`` ago, and count the open
    hours live from the ledger. Written once per hour, the first time a page needs it.
    """

    hour = models.DateTimeField(unique=True)
    # [[queue, kind, state, count], ...] for the jobs whose settled_at falls in the hour.
    counts = models.JSONField(default=list, blank=True)
    computed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["hour"]
        verbose_name_plural = "job hour stats"

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H}:00 UTC"


class JobTarget(models.Model):
    """One object a job works on (a job links to every one: one bundle, or hundreds for a
    batch). The jobs list filters through this table; its type is a registered target type."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="target_links")
    target_type = models.CharField(max_length=32)
    target_id = models.CharField(max_length=64)
    label = models.CharField(max_length=255, blank=True, default="")

    class Meta:
        indexes = [
            # "Jobs of this bundle": an index range, then the jobs by primary key.
            models.Index(fields=["target_type", "target_id", "job"], name="jobtarget_target_idx"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["job", "target_type", "target_id"], name="jobtarget_once_per_job"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.target_type}:{self.target_id}"


class Schedule(models.Model):
    """A cron schedule the database owns: when (cron + timezone), what (a registered request
    function and its JSON arguments), whether it runs, and what it last did.

    The scheduler process copies the enabled rows into rq-scheduler every cycle (``name`` is
    the stable RQ id ``schedule-<name>``), so an edit takes effect without a restart and an
    emptied Redis gets every entry back. Created from ``JOBS_SCHEDULES`` by a data migration.
    """

    name = models.CharField(
        max_length=60,
        unique=True,
        help_text="Stable id: 1-60 letters, digits, '_' or '-' (jobs store it as schedule id)",
    )
    description = models.CharField(max_length=255, blank=True, default="")
    cron = models.CharField(max_length=100, help_text="5 fields: minute hour day month weekday")
    timezone = models.CharField(max_length=64, default="UTC")
    request = models.CharField(max_length=100, help_text="A registered request function")
    arguments = models.JSONField(default=dict, blank=True)
    enabled = models.BooleanField(default=True)
    grace_seconds = models.PositiveIntegerField(
        default=3600,
        help_text="A fire missed by at most this long still runs once on recovery",
    )
    next_run_at = models.DateTimeField(null=True, blank=True)
    last_run_at = models.DateTimeField(null=True, blank=True)
    last_job = models.ForeignKey(
        Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The last fire missed by more than the grace period (shown on the schedule's page).
    last_skipped_at = models.DateTimeField(null=True, blank=True)
    last_skipped_note = models.CharField(max_length=255, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    # When an operator last changed when or whether it runs (fires before it are not caught up).
    changed_at = models.DateTimeField(auto_now_add=True)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.name


class FireOutcome(models.TextChoices):
    RAN = "ran", "Ran"
    SKIPPED = "skipped", "Skipped (missed beyond the grace period)"


class ScheduleFire(models.Model):
    """One fire of a schedule at one cron time: the database's answer to "did it run?".

    The unique (schedule, fire time) pair makes a fire run once, whichever of two racing
    schedulers, a restart at the fire time or a catch-up after an outage asks first.
    """

    schedule = models.ForeignKey(Schedule, on_delete=models.CASCADE, related_name="fires")
    fire_at = models.DateTimeField()
    outcome = models.CharField(max_length=16, choices=FireOutcome.choices)
    job = models.ForeignKey(Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-fire_at"]
        constraints = [
            models.UniqueConstraint(fields=["schedule", "fire_at"], name="schedulefire_once"),
        ]

    def __str__(self) -> str:
        return f"{self.schedule_id} @ {self.fire_at:%Y-%m-%d %H:%M} ({self.outcome})"


class QueuePause(models.Model):
    """A paused queue: an operator's decision, kept here (who, when) rather than only in Redis.

    A row means the queue is paused. ``jobs.pause`` mirrors the rows into each queue's Redis
    (the set the dispatcher and the workers read), and writes them back whenever that Redis
    comes back empty, so a pause survives any Redis or demo restart.
    """

    queue = models.CharField(max_length=64, unique=True)
    paused_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    paused_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["queue"]

    def __str__(self) -> str:
        return f"{self.queue} (paused)"


# issue 24 (integration point): the alert models live in their own package; imported here so
# Django registers them with the jobs app.
from jobs.alerts.models import AlertEvent, AlertRule  # noqa: E402, F401
