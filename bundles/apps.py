from django.apps import AppConfig


class BundlesConfig(AppConfig):
    name = "bundles"
    verbose_name = "Catalog"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Function-level imports: these modules import models, which app loading forbids at
        # the top of apps.py. Importing handlers and registration registers the bundle job
        # kinds, target types and schedulable request functions with the jobs app.
        from . import handlers, probes, registration, signals  # noqa: F401

        # Staleness and consistency figures on /metrics, /health/ and the jobs strip.
        probes.register()

        # Signal receivers are connected here, explicitly, never at import time.
        signals.connect()

        # issue 24 (integration point): the bundles' alert conditions (check_broken, staleness).
        from . import alert_conditions

        alert_conditions.register()
