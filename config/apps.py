from django.contrib.admin.apps import AdminConfig


class ProjectAdminConfig(AdminConfig):
    """django.contrib.admin with the project's guarded site as ``admin.site``."""

    default_site = "config.input_guard.GuardedAdminSite"

    def ready(self) -> None:
        super().ready()  # autodiscover: every app's admin.py, django-axes' included
        from config.axes_admin import register_axes_admin

        register_axes_admin()
