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
