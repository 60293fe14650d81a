"""The demo's generated secrets (the secret key, the admin's password) are readable by their
owner only, like ``var/demo-env.json``: a umask of 022 must not make them world-readable."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

from config import demo
from tests.support import ROOT


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def _import_settings(var_dir, code: str) -> None:
    """Import the settings in a fresh process with no SECRET_KEY (DEBUG: a key is generated)."""
    env = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "DJANGO_SETTINGS_MODULE"}}
    env.update(VAR_DIR=str(var_dir), DEBUG="1", DJANGO_SETTINGS_MODULE="config.settings")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True, timeout=60)


def test_the_generated_secret_key_file_is_owner_only(tmp_path):
    # Settings generate the key at import when none is given (DEBUG or the demo).
    _import_settings(tmp_path, "import os; os.umask(0o022); import config.settings")
    key_file = tmp_path / "dev-secret-key"
    assert len(key_file.read_text().strip()) >= 50
    assert _mode(key_file) == 0o600


def test_the_demo_password_file_is_owner_only(tmp_path, monkeypatch):
    monkeypatch.setattr(demo, "VAR_DIR", tmp_path)
    old = os.umask(0o022)
    try:
        password = demo.demo_password()
    finally:
        os.umask(old)
    path = tmp_path / "demo-password"
    assert path.read_text().strip() == password and len(password) >= 16
    assert _mode(path) == 0o600
    # Made once: the next start reads the same password.
    assert demo.demo_password() == password


def test_secret_files_left_world_readable_by_an_older_version_are_tightened(tmp_path, monkeypatch):
    for name in ("dev-secret-key", "demo-password"):
        (tmp_path / name).write_text("x" * 50)
        (tmp_path / name).chmod(0o644)
    _import_settings(tmp_path, "import config.settings")
    monkeypatch.setattr(demo, "VAR_DIR", tmp_path)
    assert demo.demo_password() == "x" * 50
    assert _mode(tmp_path / "dev-secret-key") == 0o600
    assert _mode(tmp_path / "demo-password") == 0o600
