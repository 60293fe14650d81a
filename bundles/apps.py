from django.apps import AppConfig


class BundlesConfig(AppConfig):
    name = "bundles"
    verbose_name = "Catalog"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Function-level imports: these modules import models, which app loading forbids at
        # the top of apps.py. Importing handlers and requests registers the bundle job kinds,
        # target types and request functions with the jobs app.
        from . import handlers, requests, signals  # noqa: F401

        # Signal receivers are connected here, explicitly, never at import time.
        signals.connect()

        # issue 24 (integration point): the bundles' alert conditions (check_broken, staleness).
        from . import alert_conditions

        alert_conditions.register()
