"""The running demo's environment, for commands typed in a second terminal.

``bin/run`` (``config.demo``) writes ``var/demo-env.json``: its pid, the embedded Redis URL,
the database and how the secret key is found. ``manage.py`` loads it when nothing is set in the
environment (no ``SECRET_KEY``, ``REDIS_URL`` or ``DATABASE_URL``) and that pid is alive, so
``python manage.py recompute_bundles 12 13 --wait`` reaches the demo's workers as typed. A
file left by a demo that is gone is ignored. Anything set in the environment wins.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
FILE_NAME = "demo-env.json"
# Set in a shell, any of these means "not the demo's environment": leave it alone.
OWN_SETTINGS = ("SECRET_KEY", "REDIS_URL", "DATABASE_URL")


def var_dir() -> Path:
    return Path(os.environ.get("VAR_DIR", BASE_DIR / "var"))


def write_demo_env(*, redis_url: str) -> Path:
    """Record the demo's environment (called by the demo once Redis is up). Mode 0600."""
    env = {
        "REDIS_URL": redis_url,
        "DATABASE_URL": os.environ.get("DATABASE_URL") or f"sqlite:///{var_dir() / 'db.sqlite3'}",
    }
    if os.environ.get("SECRET_KEY"):
        env["SECRET_KEY"] = os.environ["SECRET_KEY"]
    else:
        env["ALLOW_INSECURE_KEY"] = "1"  # the generated key in var/, as the demo uses
    path = var_dir() / FILE_NAME
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump({"pid": os.getpid(), "env": env}, fh)
    return path


def running_demo_env() -> dict[str, str] | None:
    """The environment of a demo that is running now, or None."""
    try:
        data = json.loads((var_dir() / FILE_NAME).read_text())
        pid, env = int(data["pid"]), dict(data["env"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None  # left behind by a demo that is gone
    except PermissionError:
        pass  # alive, someone else's
    return {str(k): str(v) for k, v in env.items()}


def load_demo_env() -> bool:
    """Fill the environment from the running demo if none of our settings is set. True if so."""
    if any(os.environ.get(name) for name in OWN_SETTINGS):
        return False
    env = running_demo_env()
    if env is None:
        return False
    for key, value in env.items():
        os.environ.setdefault(key, value)
    return True
