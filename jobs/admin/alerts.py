"""System → Alerts: the alert rules with their state, last firing, channels and what keeps a
rule from being heard; the edit form validated by the service (``jobs.alerts.services``),
which also writes the audit entry. Seeing needs ``jobs.view_alertrule``, editing
``jobs.change_alertrule`` (Django's own model permissions)."""

from __future__ import annotations

from typing import cast

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from jobs.alerts.channels import channel_problems
from jobs.alerts.conditions import all_conditions
from jobs.alerts.models import AlertRule
from jobs.alerts.services import (
    CREATABLE,
    EDITABLE,
    alert_rule_create,
    alert_rule_errors,
    alert_rule_update,
)
from jobs.errors import JobPermissionDenied

STATE_FIELDS = (
    "state",
    "state_since",
    "last_value",
    "last_message",
    "last_evaluated_at",
    "last_fired_at",
    "last_resolved_at",
    "channel_warnings",
    "recent_events",
)
RECENT_EVENTS = 10


def told(channels: dict):
    """Each channel's outcome; a webhook delivery links to its ledger job (its attempts)."""
    parts = []
    for name, outcome in sorted(channels.items()):
        job_id = outcome.removeprefix("job ") if outcome.startswith("job ") else ""
        if job_id:
            url = reverse("admin:jobs_job_change", args=[job_id])
            parts.append(format_html("{}: <a href='{}'>delivery job</a>", name, url))
        else:
            parts.append(format_html("{}: {}", name, outcome))
    return format_html_join(", ", "{}", ((p,) for p in parts))


class AlertRuleForm(forms.ModelForm):
    condition = forms.ChoiceField(choices=())

    class Meta:
        model = AlertRule
        fields = CREATABLE

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "condition" in self.fields:  # read-only once the rule exists
            cast(forms.ChoiceField, self.fields["condition"]).choices = [
                (c.name, f"{c.label} ({c.unit})" if c.unit else c.label) for c in all_conditions()
            ]

    def clean(self):
        super().clean()
        data = self.cleaned_data
        errors = alert_rule_errors(
            condition=data.get("condition", self.instance.condition),
            subject_type=data.get("subject_type", ""),
            subject=data.get("subject", ""),
            threshold=cast(float, data.get("threshold")),  # None: the field says so first
            window_seconds=cast(int, data.get("window_seconds")),
        )
        for field, message in errors.items():
            self.add_error(field if field in self.fields else None, message)
        return data


@admin.register(AlertRule)
class AlertRuleAdmin(admin.ModelAdmin):
    form = AlertRuleForm
    # Chosen to fit 1366 px beside the admin's sidebar and the filters: what is watched under
    # the condition, "off" in the state, the channels' warnings under the channels.
    list_display = (
        "name_and_description",
        "condition_and_subject",
        "threshold_and_window",
        "state_pill",
        "last_fired_at",
        "channels",
    )
    list_display_links = ("name_and_description",)
    list_filter = ("state", "enabled", "condition")
    search_fields = ("name", "description", "subject", "condition")
    readonly_fields = STATE_FIELDS

    def get_readonly_fields(self, request, obj=None):
        # The name and condition say what a rule is; a different one is a new rule.
        return (*STATE_FIELDS, "name", "condition") if obj else STATE_FIELDS

    def get_fields(self, request, obj=None):
        return [*CREATABLE, *(STATE_FIELDS if obj else ())]

    # -- saving through the service (it validates again and writes the audit entry) ----------
    def save_model(self, request, obj, form, change):
        try:
            if change:
                data = {f: form.cleaned_data.get(f) for f in EDITABLE}
                saved = alert_rule_update(rule_id=obj.pk, user=request.user, **data)
            else:
                data = {f: form.cleaned_data.get(f) for f in CREATABLE}
                saved = alert_rule_create(user=request.user, **data)
        except JobPermissionDenied as exc:
            raise PermissionDenied(exc.message) from None
        obj.pk = saved.pk
        obj.refresh_from_db()

    def log_addition(self, request, obj, message):
        return None  # the service wrote it

    def log_change(self, request, obj, message):
        return None  # the service wrote it, naming what changed

    # -- list ------------------------------------------------------------------------------
    @admin.display(description="alert", ordering="name")
    def name_and_description(self, obj: AlertRule):
        return format_html(
            "<strong>{}</strong><br><span class='quiet'>{}</span>", obj.name, obj.description
        )

    @admin.display(description="condition", ordering="condition")
    def condition_and_subject(self, obj: AlertRule):
        return format_html("{}<br><span class='quiet'>{}</span>", obj.condition, obj.subject_label)

    @admin.display(description="over", ordering="threshold")
    def threshold_and_window(self, obj: AlertRule):
        return format_html(
            "{}<br><span class='quiet'>in {}</span>",
            f"{obj.threshold:g}",
            _duration(obj.window_seconds),
        )

    @admin.display(description="state", ordering="state")
    def state_pill(self, obj: AlertRule):
        if not obj.enabled:
            return format_html("<span class='job-pill'>{}</span>", "off")
        css = "job-pill bad" if obj.state == "firing" else "job-pill ok"
        return format_html(
            "<span class='{}' title='{}'>{}</span>", css, obj.last_message, obj.get_state_display()
        )

    @admin.display(description="channels")
    def channels(self, obj: AlertRule):
        on = [name for name, used in (("email", obj.email), ("webhook", obj.webhook)) if used]
        problems = channel_problems(obj)
        if not problems:
            return ", ".join(on) or "none"
        # One line in the list (the whole story in its tooltip and on the rule's page).
        return format_html(
            "{}<br><span class='quiet' title='{}'>⚠ {}</span>",
            ", ".join(on) or "none",
            "; ".join(problems),
            problems[-1] if len(problems) == 1 else f"{len(problems)} channel problems",
        )

    @admin.display(description="warnings")
    def warnings(self, obj: AlertRule):
        problems = channel_problems(obj)
        if not problems:
            return ""
        return format_html_join(
            "", "<div class='job-pill warn'>⚠ {}</div>", ((p,) for p in problems)
        )

    # -- change form -------------------------------------------------------------------------
    @admin.display(description="channel warnings")
    def channel_warnings(self, obj: AlertRule):
        return self.warnings(obj) or "none: every channel this rule uses can deliver"

    @admin.display(description="recent events")
    def recent_events(self, obj: AlertRule):
        events = list(obj.events.all()[:RECENT_EVENTS])  # the (rule, -at) index
        if not events:
            return "none yet"
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    f"{e.at:%Y-%m-%d %H:%M:%S}",
                    e.kind,
                    "" if e.value is None else f"{e.value:g}",
                    e.message,
                    told(e.channels),
                )
                for e in events
            ),
        )
        return format_html(
            "<table><thead><tr><th>at (UTC)</th><th>event</th><th>value</th><th>message</th>"
            "<th>told</th></tr></thead><tbody>{}</tbody></table>",
            rows,
        )


def _duration(seconds: int) -> str:
    """ "15 min", "24 h", "2 d": a rule's window as people say it."""
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"
