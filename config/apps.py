from django.contrib.admin.apps import AdminConfig


class ProjectAdminConfig(AdminConfig):
    """django.contrib.admin with the project's guarded site as ``admin.site``."""

    default_site = "config.input_guard.GuardedAdminSite"
