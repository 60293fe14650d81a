"""The project's own templates (templates/ at the top level): the admin's branding, the
favicon, and the error pages in the admin's look."""

from pathlib import Path

import pytest
from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.test import RequestFactory
from django.views import defaults

TEMPLATES_DIR = Path(settings.BASE_DIR) / "templates"


def _origins(response) -> set[str]:
    return {t.origin.name for t in response.templates if t.origin is not None}


@pytest.mark.django_db
def test_the_admin_says_bundle_jobs_from_the_projects_base_site(admin_client):
    response = admin_client.get("/admin/")
    assert response.status_code == 200
    html = response.content.decode()
    assert '<div id="site-name"><a href="/admin/">Bundle jobs</a></div>' in html
    assert "<title>Site administration | Bundle jobs</title>" in html
    assert "Django administration" not in html
    assert str(TEMPLATES_DIR / "admin" / "base_site.html") in _origins(response)
    assert '<link rel="icon" href="/static/favicon.ico"' in html


@pytest.mark.django_db
def test_the_login_page_is_branded_too(client):
    html = client.get("/admin/login/").content.decode()
    assert ">Bundle jobs</a>" in html
    assert "Django administration" not in html


@pytest.mark.django_db
def test_favicon_answers_200_with_an_icon(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/x-icon"
    assert "max-age=86400" in response["Cache-Control"]
    body = b"".join(response.streaming_content)
    assert body[:4] == b"\x00\x00\x01\x00"  # an ICO header: reserved 0, type 1 (icon)
    assert b"PNG" in body[:40]
    assert client.post("/favicon.ico").status_code == 405


@pytest.mark.django_db
def test_an_unknown_address_gets_the_projects_404_page(client, settings):
    settings.DEBUG = False
    response = client.get("/no/such/page/")
    assert response.status_code == 404
    html = response.content.decode()
    assert "<h1>Page not found (404)</h1>" in html
    assert ">Bundle jobs</a>" in html
    assert "/static/admin/css/base.css" in html  # the admin's look
    assert str(TEMPLATES_DIR / "404.html") in _origins(response)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("view", "args", "status", "heading"),
    [
        (defaults.bad_request, (ValueError("x"),), 400, "Bad request (400)"),
        (defaults.permission_denied, (PermissionDenied(),), 403, "Forbidden (403)"),
        (defaults.server_error, (), 500, "Server error (500)"),
    ],
)
def test_error_pages_are_the_projects_in_the_admins_look(view, args, status, heading):
    request = RequestFactory().get("/somewhere/")
    from django.contrib.auth.models import AnonymousUser

    request.user = AnonymousUser()
    response = view(request, *args)
    assert response.status_code == status
    html = response.content.decode()
    assert f"<h1>{heading}</h1>" in html
    assert ">Bundle jobs</a>" in html
    assert "/static/admin/css/base.css" in html
    assert "Traceback" not in html
