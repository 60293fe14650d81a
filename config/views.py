"""The project's own small views (the apps' views live in the apps)."""

from django.conf import settings
from django.http import FileResponse, HttpRequest
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_safe

_FAVICON = settings.BASE_DIR / "static" / "favicon.ico"


@require_safe
@cache_control(max_age=86400, public=True)
def favicon(request: HttpRequest) -> FileResponse:
    """``/favicon.ico``: browsers ask for it on every site whatever the pages link, and a
    404 per page fills the logs. Served from the checkout, so it works without collectstatic."""
    return FileResponse(_FAVICON.open("rb"), content_type="image/x-icon")
