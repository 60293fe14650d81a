"""Trigram indexes for the jobs list's search box on PostgreSQL; nothing on SQLite.

Django's ``icontains`` is ``UPPER(col::text) LIKE UPPER('%term%')`` on PostgreSQL: a GIN
trigram index on exactly that expression answers it without reading the table. SQLite has no
such index; its search stays a scan (fine for the demo and tests).
"""

from django.db import migrations

# (index name, indexed expression) — the expressions Django writes for icontains.
INDEXES = [
    ("job_label_trgm", 'UPPER("target_label"::text)'),
    ("job_message_trgm", 'UPPER("progress_message"::text)'),
    ("job_dedup_trgm", 'UPPER("dedup_key"::text)'),
    ("job_errors_trgm", 'UPPER(("errors")::text)'),
]


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for name, expression in INDEXES:
        schema_editor.execute(
            f'CREATE INDEX IF NOT EXISTS {name} ON "jobs_job" USING gin ({expression} gin_trgm_ops)'
        )


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, _expression in INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [("jobs", "0007_pause_queue_permission")]

    operations = [migrations.RunPython(forwards, backwards)]
