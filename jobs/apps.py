from django.apps import AppConfig
from django.utils.module_loading import autodiscover_modules


class JobsConfig(AppConfig):
    name = "jobs"
    verbose_name = "System"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Every installed app registers its job kinds in ``handlers`` and its target types and
        # request functions in ``requests`` (bundles/handlers.py, bundles/requests.py).
        autodiscover_modules("handlers", "requests")
