"""django-axes' access-attempt admin, with its "Clean up expired attempts" action fixed.

axes 8.3.1's action calls its database handler directly, which reads
``request.axes_attempt_time`` — set only when a request went through axes' proxy handler (a
login). From the admin list the action therefore raised AttributeError (a server error; the
hostile-input test found it). Here the request gets axes' attributes first.
"""

from __future__ import annotations

from axes.admin import AccessAttemptAdmin
from axes.handlers.proxy import AxesProxyHandler
from axes.models import AccessAttempt
from django.contrib import admin


class ProjectAccessAttemptAdmin(AccessAttemptAdmin):
    @admin.action(description="Clean up expired attempts")
    def cleanup_expired_attempts(self, request, queryset):
        AxesProxyHandler.update_request(request)
        return super().cleanup_expired_attempts(request, queryset)


def register_axes_admin() -> None:
    if admin.site.is_registered(AccessAttempt):
        admin.site.unregister(AccessAttempt)
        admin.site.register(AccessAttempt, ProjectAccessAttemptAdmin)
