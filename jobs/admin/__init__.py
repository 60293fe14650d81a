"""System → Jobs and System → Schedules: the ledger and the cron schedules in Django admin.

Thin on purpose: reads go through ``jobs.selectors``, writes through ``jobs.services`` and
``jobs.scheduling``; the admin checks permissions, calls them and reports. Extra pages are
``get_urls`` patterns wrapped in ``admin_site.admin_view``.

- ``job_admin``: the job ``ModelAdmin`` (list, filters, permissions, the job page), built from
  ``job_columns`` (columns and detail fields), ``job_views`` (its extra pages) and
  ``job_actions`` (retry, cancel, delete settled); ``paginator`` pages without ``COUNT(*)``
- ``schedule_admin``: the schedule ``ModelAdmin``, with its form in ``schedule_form``
- ``display``, ``filters``, ``links``: chart and timeline HTML, list filters, links and messages

Permissions: seeing anything needs ``jobs.view_job``; Retry ``jobs.retry_job`` and Cancel
``jobs.cancel_job`` (each with ``jobs.view_job``); Run now and enable/disable
``jobs.run_schedule``; the quick buttons ``jobs.run_schedule`` plus what the operation needs
elsewhere (``bundles.change_bundle`` for the bundle ones); deleting settled jobs
``jobs.delete_job``. Staff without the permission get 403.
"""

# Each admin registers itself on import: System → Jobs, System → Schedules, System → Alerts.
from jobs.admin import alerts, job_admin, schedule_admin  # noqa: F401
