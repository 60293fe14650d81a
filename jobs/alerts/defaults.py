"""The default alert rules from settings (``JOBS_ALERT_RULES``) as ``AlertRule`` fields.

Pure data, no models: the data migration that creates the first rows and ``load_defaults``
(tests, whose flushes empty the table) both read it. Settings decide a rule only on its first
creation; after that the row is the truth (edited in the admin or GraphQL).
"""

from __future__ import annotations

from jobs import conf
from jobs.alerts.services import CREATABLE

# What a JOBS_ALERT_RULES item may set besides its name: what a new rule may have.
FIELDS = tuple(name for name in CREATABLE if name != "name")


def default_fields(item: dict) -> dict:
    unknown = set(item) - {"name", *FIELDS}
    if unknown:
        raise ValueError(f"JOBS_ALERT_RULES {item.get('name')!r}: unknown fields {sorted(unknown)}")
    return {"name": item["name"], **{k: item[k] for k in FIELDS if k in item}}


def defaults() -> list[dict]:
    return [default_fields(item) for item in conf.alert_rules()]


def create_defaults(rule_model) -> int:
    """Create the rules the table lacks (by name); ``rule_model`` may be a migration's model."""
    existing = set(rule_model.objects.values_list("name", flat=True))
    new = [rule_model(**fields) for fields in defaults() if fields["name"] not in existing]
    rule_model.objects.bulk_create(new)
    return len(new)


def load_defaults() -> int:
    from jobs.alerts.models import AlertRule  # the migration passes its own model

    return create_defaults(AlertRule)
