from django.apps import AppConfig


class JobsConfig(AppConfig):
    """The job ledger, shown in the admin as "System".

    Consumers register their job kinds (``jobs.registry.job_kind``), target types
    (``jobs.targets.register_target``) and request functions
    (``jobs.request_registry.register_request``) from their own ``AppConfig.ready()``.
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

        # issue 24 (integration point): the alert conditions of the jobs app and the webhook
        # delivery kind (its queue and retry policy come from settings).
        from jobs.alerts import builtin, webhook

        builtin.register()
        webhook.register()
