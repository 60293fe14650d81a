from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "jobs"
    verbose_name = "System"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Every installed app's ``jobs`` module registers its job kinds (bundles/jobs.py ...).
        from django.utils.module_loading import autodiscover_modules

        autodiscover_modules("jobs")
        # Django Tasks (``@task`` paths) are kinds too, resolved when first asked for.
        from jobs.registry import register_kind_resolver
        from jobs.tasks import resolve_task_kind

        register_kind_resolver(resolve_task_kind)
