"""Alert rules and their history. Imported by ``jobs.models`` (app label ``jobs``)."""

from __future__ import annotations

from django.db import models


class SubjectType(models.TextChoices):
    """What a rule watches: everything of its condition, or one kind / queue / schedule."""

    NONE = "", "Everything"
    KIND = "kind", "Job kind"
    QUEUE = "queue", "Queue"
    SCHEDULE = "schedule", "Schedule"


class AlertState(models.TextChoices):
    OK = "ok", "OK"
    FIRING = "firing", "Firing"


class AlertEventKind(models.TextChoices):
    FIRED = "fired", "Fired"
    RESOLVED = "resolved", "Resolved"


class AlertRule(models.Model):
    """A condition measured every evaluation; over ``threshold`` it fires, once, and tells
    its channels; back under it resolves, once. No new firing within ``cooldown_seconds`` of
    a resolve, so a flapping measure does not flood the inbox."""

    name = models.SlugField(max_length=60, unique=True)
    description = models.CharField(max_length=255, blank=True, default="")
    condition = models.CharField(max_length=64, help_text="A registered alert condition")
    subject_type = models.CharField(
        max_length=16, choices=SubjectType.choices, blank=True, default=SubjectType.NONE
    )
    subject = models.CharField(
        max_length=200, blank=True, default="", help_text="The kind, queue or schedule name"
    )
    threshold = models.FloatField(help_text="Fires when the measured value is above this")
    min_count = models.PositiveIntegerField(
        default=0, help_text="Rates: fewer settled jobs than this in the window measure nothing"
    )
    window_seconds = models.PositiveIntegerField(default=900)
    cooldown_seconds = models.PositiveIntegerField(default=1800)
    enabled = models.BooleanField(default=True)
    email = models.BooleanField(default=True, help_text="Mail ADMINS on fire and resolve")
    webhook = models.BooleanField(default=True, help_text="POST to JOBS_ALERT_WEBHOOK_URL")

    state = models.CharField(max_length=16, choices=AlertState.choices, default=AlertState.OK)
    state_since = models.DateTimeField(null=True, blank=True)
    last_value = models.FloatField(null=True, blank=True)
    last_message = models.CharField(max_length=500, blank=True, default="")
    last_evaluated_at = models.DateTimeField(null=True, blank=True)
    last_fired_at = models.DateTimeField(null=True, blank=True)
    last_resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        app_label = "jobs"
        ordering = ["name"]
        verbose_name = "alert"

    def __str__(self) -> str:
        return self.name

    @property
    def subject_label(self) -> str:
        if not self.subject_type:
            return "everything"
        return f"{self.get_subject_type_display().lower()} {self.subject}"


class AlertEvent(models.Model):
    """One transition of a rule (fired or resolved) and where it was told."""

    rule = models.ForeignKey(AlertRule, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=16, choices=AlertEventKind.choices)
    value = models.FloatField(null=True, blank=True)
    message = models.CharField(max_length=500, blank=True, default="")
    at = models.DateTimeField()
    # {"email": "sent" | "no ADMINS set" | "off" | "failed: ...",
    #  "webhook": "job <uuid>" | "no JOBS_ALERT_WEBHOOK_URL set" | "off"}
    channels = models.JSONField(default=dict, blank=True)

    class Meta:
        app_label = "jobs"
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["rule", "-at"], name="alertevent_rule_at_idx")]

    def __str__(self) -> str:
        return f"{self.rule_id} {self.kind} @ {self.at:%Y-%m-%d %H:%M:%S}"
