"""Hostile input answered with 400, before any view runs, for every page of the project.

* ``RejectNulMiddleware``: a NUL character in the path, a query-string key or value, or a
  form field (key, value or uploaded file name) is refused. PostgreSQL cannot store or compare
  NUL in text, so it would otherwise turn a filter, search or form into a server error.
* ``GuardedAdminSite``: every admin view (Django's and the ones apps add through
  ``admin_view``) refuses selected ids that are not ids of that model (``_selected_action``
  on a changelist action), instead of failing inside the queryset; "view on site"
  (``/admin/r/<content type>/<id>/``) answers 404 for models this site doesn't register
  (django-rq's table-less dashboard model would otherwise be queried).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.contrib.admin import AdminSite
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.options import TO_FIELD_VAR
from django.contrib.contenttypes import views as contenttype_views
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import SuspiciousOperation, ValidationError
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.http.multipartparser import MultiPartParserError

NUL = "\x00"


def bad_request(message: str) -> HttpResponse:
    # Plain text so nothing of the hostile value can become markup.
    return HttpResponseBadRequest(f"Bad request: {message}", content_type="text/plain")


def _nul_in(querydict) -> str | None:
    for key, values in querydict.lists():
        if NUL in key or any(NUL in str(v) for v in values):
            return key.replace(NUL, "\\x00")
    return None


class RejectNulMiddleware:
    """Refuse any request carrying a NUL character in its path, query string or form."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if NUL in request.path_info:
            return bad_request("the address contains a NUL character.")
        key = _nul_in(request.GET)
        if key is not None:
            return bad_request(f"the query parameter {key!r} contains a NUL character.")
        if request.method == "POST" and request.content_type in {
            "application/x-www-form-urlencoded",
            "multipart/form-data",
        }:
            try:
                key = _nul_in(request.POST)
            except (MultiPartParserError, SuspiciousOperation) as exc:
                # Django answers these with 400 too; here the reason is said, once.
                return bad_request(f"the form could not be read ({exc}).")
            if key is None:
                key = next((k for k, f in request.FILES.items() if NUL in (f.name or "")), None)
            if key is not None:
                return bad_request(f"the form field {key!r} contains a NUL character.")
        return self.get_response(request)


def _malformed_selection(model_admin, request: HttpRequest) -> str | None:
    """The first selected id that cannot be a primary key of the admin's model, if any."""
    if request.method != "POST" or model_admin is None:
        return None
    pk = model_admin.model._meta.pk
    for value in request.POST.getlist(ACTION_CHECKBOX_NAME):
        try:
            # The field's own validators hold the database's integer range.
            pk.run_validators(pk.to_python(value))
        except (ValidationError, ValueError, TypeError):
            return value
    return None


class GuardedAdminSite(AdminSite):
    """The project's admin site: Django's, with the selection check on every admin view."""

    # What templates/admin/base_site.html shows, for the pages and e-mails that read the site.
    site_header = "Bundle jobs"
    site_title = "Bundle jobs"

    def _registered_shortcut(self, request, content_type_id, object_id):
        try:
            content_type = ContentType.objects.get(pk=int(content_type_id))
        except (ValueError, OverflowError, ContentType.DoesNotExist):
            raise Http404("No such content type.") from None
        if content_type.model_class() not in self._registry:
            raise Http404("No page for objects of this type.")
        return contenttype_views.shortcut(request, content_type_id, object_id)

    def admin_view(self, view, cacheable: bool = False):
        if view is contenttype_views.shortcut:
            view = self._registered_shortcut
        inner = super().admin_view(view, cacheable)
        # ModelAdmin.get_urls passes bound methods; site-wide views have no model admin.
        model_admin = getattr(view, "__self__", None) or getattr(view, "model_admin", None)
        if not hasattr(model_admin, "model"):
            return inner

        @wraps(inner)
        def guarded(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            bad = _malformed_selection(model_admin, request)
            if bad is not None:
                name = model_admin.model._meta.verbose_name
                return bad_request(
                    f"{str(bad)[:50]!r} is not the id of a {name}; "
                    "select rows in the list and try again."
                )
            if _empty_to_field(request):
                # Django's change/delete views take an empty ``_to_field`` for a field name and
                # fail looking it up (a 500): it names no field, so it is refused here.
                return bad_request("'_to_field' is empty; leave it out or name a field.")
            return inner(request, *args, **kwargs)

        return guarded


def _empty_to_field(request: HttpRequest) -> bool:
    values = request.GET.getlist(TO_FIELD_VAR)
    if request.method == "POST":
        values += request.POST.getlist(TO_FIELD_VAR)
    return any(not value.strip() for value in values)
