from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "jobs"
    verbose_name = "System"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Every installed app's ``jobs`` module registers its job kinds (bundles/jobs.py ...).
        from django.utils.module_loading import autodiscover_modules

        autodiscover_modules("jobs")
