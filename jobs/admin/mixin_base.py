"""What ``JobAdmin``'s mixins (columns, views, actions) may call on ``self``, for the type
checker only: at run time each mixes into ``JobAdmin`` (a ``ModelAdmin``) and the base is
``object``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from django.contrib.admin import ModelAdmin
    from django.http import HttpRequest

    from jobs.models import Job

    class JobAdminBase(ModelAdmin[Job]):
        SHOWN_TARGETS: int

        def _require(self, request: HttpRequest, perm: str) -> None: ...
        def _context(self, request: HttpRequest, **extra: Any) -> dict[str, Any]: ...
        def _overview_context(self, request: HttpRequest, chart_range: str) -> dict: ...
        def has_pause_queue_permission(self, request: HttpRequest) -> bool: ...
        def has_retry_permission(self, request: HttpRequest) -> bool: ...
        def has_cancel_permission(self, request: HttpRequest) -> bool: ...

else:
    JobAdminBase = object
