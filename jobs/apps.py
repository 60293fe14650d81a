from django.apps import AppConfig


class JobsConfig(AppConfig):
    """The job ledger, shown in the admin as "System".

    Consumers register their job kinds (``jobs.registry.job_kind``), target types
    (``jobs.target_types.register_target``) and request functions
    (``jobs.request_functions.register_request``) from their own ``AppConfig.ready()``.
    """

    name = "jobs"
    verbose_name = "System"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Django Tasks (``@task`` paths) are kinds too, resolved when first asked for. Imported
        # here because jobs.tasks needs the app registry ready.
        from jobs.registry import register_kind_resolver
        from jobs.tasks import resolve_task_kind

        register_kind_resolver(resolve_task_kind)

        # Missed schedule fires on /metrics (for the shipped Prometheus rules).
        from jobs.probes import register_metrics_collector
        from jobs.schedule_metrics import COLLECTOR

        register_metrics_collector(COLLECTOR)

        # The alert conditions of the jobs app and the webhook delivery kind (its queue and
        # retry policy come from settings).
        from jobs.alerts import builtin, webhook

        builtin.register()
        webhook.register()
