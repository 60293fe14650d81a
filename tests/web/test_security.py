"""Web hardening: admin login throttling (django-axes), the Content-Security-Policy header, and
``check --deploy`` clean with ``HTTPS=1`` and production settings."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from unittest import mock

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured
from django.test import Client, override_settings

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


def settings_from_environment(**env: str) -> dict:
    """The settings config/settings.py makes from this environment (read in a throwaway module,
    the way a server started with it would), limited to what HTTPS and the proxy change."""
    spec = importlib.util.spec_from_file_location("_settings_probe", ROOT / "config/settings.py")
    module = importlib.util.module_from_spec(spec)
    with mock.patch.dict(os.environ, {"SECRET_KEY": "probe-" + "k" * 50, **env}):
        spec.loader.exec_module(module)
    wanted = ("SECURE_", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE", "TRUSTED_PROXIES", "AXES_")
    return {k: getattr(module, k) for k in dir(module) if k.startswith(wanted)}


def login_from(client, address: str, password: str):
    """The admin login through one TLS proxy at 10.0.0.1 for a client at ``address``."""
    return client.post(
        "/admin/login/?next=/admin/",
        {"username": "ops", "password": password},
        REMOTE_ADDR="10.0.0.1",
        HTTP_X_FORWARDED_FOR=address,
        HTTP_X_FORWARDED_PROTO="https",
    )


def test_behind_a_declared_proxy_one_clients_wrong_passwords_lock_out_only_that_client(staff):
    behind_proxy = settings_from_environment(HTTPS="1", TRUSTED_PROXIES="1")
    assert behind_proxy["TRUSTED_PROXIES"] == 1 and behind_proxy["SECURE_SSL_REDIRECT"]
    with override_settings(**{**behind_proxy, "AXES_FAILURE_LIMIT": 5}):
        attacker, admin = Client(), Client()
        for _ in range(4):
            assert login_from(attacker, "203.0.113.5", "wrong").status_code == 200
        assert login_from(attacker, "203.0.113.5", "wrong").status_code == 429
        assert login_from(attacker, "203.0.113.5", PASSWORD).status_code == 429
        # The admin at another address behind the same proxy logs in.
        response = login_from(admin, "198.51.100.7", PASSWORD)
        assert response.status_code == 302 and "_auth_user_id" in admin.session
        # A client that writes the admin's address into the header itself gains nothing: the
        # proxy appends the address it saw, and that last entry is the one counted.
        assert login_from(attacker, "198.51.100.7, 203.0.113.5", PASSWORD).status_code == 429


def test_without_a_declared_proxy_everyone_behind_it_shares_the_lockout(staff):
    direct = settings_from_environment(HTTPS="1")
    assert direct["TRUSTED_PROXIES"] == 0
    with override_settings(**{**direct, "AXES_FAILURE_LIMIT": 5}):
        for _ in range(5):
            login_from(Client(), "203.0.113.5", "wrong")
        # X-Forwarded-For is not trusted: both clients are the proxy's REMOTE_ADDR.
        assert login_from(Client(), "198.51.100.7", PASSWORD).status_code == 429


def test_a_trusted_proxies_value_that_is_not_a_count_stops_the_start():
    with pytest.raises(ImproperlyConfigured, match="TRUSTED_PROXIES"):
        settings_from_environment(TRUSTED_PROXIES="yes")


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
    # Every inline block (a <style>, a <script> without src; the JSON data block is not run)
    # carries the header's nonce, and there are some.
    inline = re.findall(r"<(?:style|script)(?![^>]*\bsrc=)(?![^>]*application/json)[^>]*>", html)
    assert len(inline) >= 3, inline
    assert all(f'nonce="{nonce}"' in tag for tag in inline), inline
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
