"""Error groups: ``Job.error_fingerprint`` (the last failed attempt's group) and the partial
index the Errors page reads, with a backfill from the tracebacks already stored.

The backfill is bounded and streamed: it reads only rows that can hold an error (failed,
retrying, cancelled), in primary-key order, ``CHUNK`` rows at a time (keyset, no OFFSET), and
writes each chunk with one UPDATE per distinct fingerprint in it, so memory stays flat at any
ledger size. The index is built after the backfill (one build instead of index writes per row).
"""

from collections import defaultdict

from django.db import migrations, models

from jobs.error_fingerprint import fingerprint

CHUNK = 1000
MAY_HAVE_ERRORS = ("failed", "retrying", "cancelled")


def backfill_fingerprints(apps, schema_editor):
    Job = apps.get_model("jobs", "Job")
    jobs = Job.objects.using(schema_editor.connection.alias)
    rows = jobs.filter(state__in=MAY_HAVE_ERRORS)
    last_pk = None
    while True:
        chunk = rows.order_by("pk")
        if last_pk is not None:
            chunk = chunk.filter(pk__gt=last_pk)
        page = list(chunk.values_list("pk", "errors")[:CHUNK])
        if not page:
            return
        last_pk = page[-1][0]
        # One UPDATE per distinct key in the chunk (failures repeat: a handful per chunk).
        by_key = defaultdict(list)
        for pk, errors in page:
            if errors:
                last = errors[-1] or {}
                by_key[fingerprint(last.get("traceback") or last.get("message") or "")].append(pk)
        for key, pks in by_key.items():
            jobs.filter(pk__in=pks).update(error_fingerprint=key)


class Migration(migrations.Migration):
    dependencies = [("jobs", "0014_schedule_request_permissions")]

    operations = [
        migrations.AddField(
            model_name="job",
            name="error_fingerprint",
            field=models.CharField(blank=True, default="", max_length=32),
        ),
        migrations.RunPython(backfill_fingerprints, migrations.RunPython.noop, elidable=True),
        migrations.AddIndex(
            model_name="job",
            index=models.Index(
                condition=models.Q(("state", "failed")),
                fields=["error_fingerprint", "kind", "settled_at"],
                name="job_failed_fingerprint_idx",
            ),
        ),
    ]
