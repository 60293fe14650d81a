"""Web hardening: admin login throttling (django-axes), the Content-Security-Policy header, and
``check --deploy`` clean with ``HTTPS=1`` and production settings."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.contrib.auth import get_user_model

from tests.support import ROOT

PASSWORD = "right-password-for-the-test"


@pytest.fixture
def staff(db):
    return get_user_model().objects.create_user(
        "ops", password=PASSWORD, is_staff=True, is_superuser=True
    )


def login(client, password: str):
    return client.post("/admin/login/?next=/admin/", {"username": "ops", "password": password})


def test_wrong_passwords_lock_the_login_out_even_for_the_right_one(client, staff, settings):
    settings.AXES_FAILURE_LIMIT = 3
    for _ in range(2):
        assert login(client, "wrong").status_code == 200  # the form again, with its error
    locked = login(client, "wrong")
    assert locked.status_code == 429
    # Locked: the right password is refused too, and no session is made.
    assert login(client, PASSWORD).status_code == 429
    assert "_auth_user_id" not in client.session


def test_a_right_password_before_the_limit_logs_in_and_resets_the_count(client, staff, settings):
    settings.AXES_FAILURE_LIMIT = 3
    login(client, "wrong")
    login(client, "wrong")
    assert login(client, PASSWORD).status_code == 302
    client.logout()
    login(client, "wrong")
    login(client, "wrong")
    assert login(client, PASSWORD).status_code == 302  # the success reset the failures


def test_pages_carry_a_content_security_policy_without_unsafe_scripts(client, staff):
    client.force_login(staff)
    response = client.get("/admin/jobs/job/")
    assert response.status_code == 200
    policy = response["Content-Security-Policy"]
    assert "default-src 'self'" in policy
    script_src = next(p for p in policy.split(";") if p.strip().startswith("script-src "))
    assert "unsafe" not in script_src
    assert "frame-ancestors 'none'" in policy


def test_graphiql_inline_blocks_carry_the_nonce_of_the_header(client, staff):
    client.force_login(staff)
    response = client.get("/graphql/", HTTP_ACCEPT="text/html")
    assert response.status_code == 200
    policy = response["Content-Security-Policy"]
    nonce = policy.split("'nonce-", 1)[1].split("'", 1)[0]
    html = response.content.decode()
    assert html.count(f'nonce="{nonce}"') == 2
    assert "cdn.jsdelivr.net" not in html and "https://" not in html.split("</head>")[0]


def _check_deploy(**env) -> subprocess.CompletedProcess:
    # A production-like environment: none of the development or test switches (the browser
    # tests set DJANGO_ALLOW_ASYNC_UNSAFE in this process, which check --deploy rightly flags).
    dev_only = {"DEBUG", "ALLOW_INSECURE_KEY", "DJANGO_ALLOW_ASYNC_UNSAFE"}
    clean = {k: v for k, v in os.environ.items() if k not in dev_only}
    clean.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=120,
    )


PRODUCTION = {
    "SECRET_KEY": "k" * 10 + "-production-like-secret-key-with-enough-variety-9876543210",
    "ALLOWED_HOSTS": "shop.example.com",
    "DATABASE_URL": "postgres://postgres@127.0.0.1:55432/unused",  # never connected to
}


def test_check_deploy_is_clean_with_https_and_production_settings():
    result = _check_deploy(HTTPS="1", **PRODUCTION)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout + result.stderr


def test_check_deploy_without_https_names_what_is_missing():
    # The honest other side: without HTTPS=1 the same deployment is warned about.
    result = _check_deploy(**PRODUCTION)
    assert result.returncode != 0
    for warning in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert warning in result.stdout + result.stderr


def test_axes_cleanup_action_in_the_admin_works(client, staff):
    # django-axes 8.3.1's own action raised AttributeError from the admin (config/axes_admin.py)
    client.force_login(staff)
    login(client, "wrong")
    client.force_login(staff)
    response = client.post(
        "/admin/axes/accessattempt/",
        {"action": "cleanup_expired_attempts", "index": "0", "_selected_action": ["1"]},
        follow=True,
    )
    assert response.status_code == 200
    assert "Cleaned up 0 expired access attempts" in response.content.decode()
