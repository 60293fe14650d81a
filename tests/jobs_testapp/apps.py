from django.apps import AppConfig


class JobsTestAppConfig(AppConfig):
    """An app the jobs app has never heard of: installed only by tests/settings.py."""

    name = "tests.jobs_testapp"
    label = "jobs_testapp"
    verbose_name = "Jobs test app"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registers the kind, the target type and the request (they import models).
        from tests.jobs_testapp import handlers, requests  # noqa: F401
