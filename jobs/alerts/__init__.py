"""Alerts of the jobs app: rules stored in the database, measured in the maintenance pass,
told by email to ``ADMINS`` and by a signed webhook.

* ``models``: ``AlertRule`` (a condition, its subject, threshold, window, cooldown, channels and
  its ok / firing state) and ``AlertEvent`` (one row per fired / resolved transition);
* ``conditions``: the registry of measurable conditions; ``builtin`` registers the jobs app's
  own (failure rate, oldest waiting, a schedule's missed or failed fire, dead workers); a
  consumer registers its own from its ``AppConfig.ready()``;
* ``evaluation``: ``evaluate_alerts(now=None)``, the state machine; ``due``: at most one
  evaluation per ``JOBS_ALERTS_INTERVAL`` across all workers;
* ``channels`` (email, and the webhook through ``webhook``'s ledger job kind);
* ``services`` / ``defaults``: edits (validated, audited) and the default rules.

Nothing is imported here: ``jobs.models`` imports ``jobs.alerts.models`` at app loading.
"""
