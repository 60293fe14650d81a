from django.conf import settings
from django.db import migrations, models
import django.db.models.deletion


def create_from_settings(apps, schema_editor):
    """The settings' schedules become rows (enabled state kept from ScheduleState)."""
    from jobs.scheduling.defaults import defaults  # pure data, no models

    Schedule = apps.get_model("jobs", "Schedule")
    ScheduleState = apps.get_model("jobs", "ScheduleState")
    enabled = dict(ScheduleState.objects.values_list("schedule_id", "enabled"))
    for fields in defaults():
        if not fields["name"] or Schedule.objects.filter(name=fields["name"]).exists():
            continue
        fields["enabled"] = enabled.get(fields["name"], fields["enabled"])
        Schedule.objects.create(**fields)


class Migration(migrations.Migration):
    dependencies = [
        ("jobs", "0006_job_trigger_task"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="Schedule",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "name",
                    models.CharField(
                        help_text="Stable id: 1-60 letters, digits, '_' or '-' (jobs store it as schedule id)",
                        max_length=60,
                        unique=True,
                    ),
                ),
                ("description", models.CharField(blank=True, default="", max_length=255)),
                (
                    "cron",
                    models.CharField(
                        help_text="5 fields: minute hour day month weekday", max_length=100
                    ),
                ),
                ("timezone", models.CharField(default="UTC", max_length=64)),
                (
                    "request",
                    models.CharField(help_text="A registered request function", max_length=100),
                ),
                ("arguments", models.JSONField(blank=True, default=dict)),
                ("enabled", models.BooleanField(default=True)),
                (
                    "grace_seconds",
                    models.PositiveIntegerField(
                        default=3600,
                        help_text="A fire missed by at most this long still runs once on recovery",
                    ),
                ),
                ("next_run_at", models.DateTimeField(blank=True, null=True)),
                ("last_run_at", models.DateTimeField(blank=True, null=True)),
                ("last_skipped_at", models.DateTimeField(blank=True, null=True)),
                ("last_skipped_note", models.CharField(blank=True, default="", max_length=255)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("changed_at", models.DateTimeField(auto_now_add=True)),
                (
                    "changed_by",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "last_job",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to="jobs.job",
                    ),
                ),
            ],
            options={"ordering": ["id"]},
        ),
        migrations.CreateModel(
            name="ScheduleFire",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("fire_at", models.DateTimeField()),
                (
                    "outcome",
                    models.CharField(
                        choices=[
                            ("ran", "Ran"),
                            ("skipped", "Skipped (missed beyond the grace period)"),
                        ],
                        max_length=16,
                    ),
                ),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                (
                    "job",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to="jobs.job",
                    ),
                ),
                (
                    "schedule",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="fires",
                        to="jobs.schedule",
                    ),
                ),
            ],
            options={
                "ordering": ["-fire_at"],
                "constraints": [
                    models.UniqueConstraint(
                        fields=("schedule", "fire_at"), name="schedulefire_once"
                    )
                ],
            },
        ),
        migrations.RunPython(create_from_settings, migrations.RunPython.noop),
        migrations.DeleteModel(name="ScheduleState"),
    ]
