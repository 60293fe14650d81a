"""Schedules that named the removed generic ``jobs.enqueue`` request (any kind, any payload,
whoever edited it) are disabled, and say so: an operator re-creates each with a request
function, whose permission and validation then apply. Nothing else changes."""

from django.db import migrations

REMOVED = "jobs.enqueue"
NOTE = "[disabled: jobs.enqueue was removed, pick a request] "


def disable_generic_enqueue_schedules(apps, schema_editor):
    Schedule = apps.get_model("jobs", "Schedule")
    for schedule in Schedule.objects.filter(request=REMOVED):
        schedule.enabled = False
        if not schedule.description.startswith(NOTE):
            schedule.description = (NOTE + schedule.description)[:255]
        schedule.save(update_fields=["enabled", "description"])


class Migration(migrations.Migration):
    dependencies = [("jobs", "0013_queue_pause")]

    operations = [
        migrations.RunPython(disable_generic_enqueue_schedules, migrations.RunPython.noop),
    ]
