#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    from config.demo_env import load_demo_env

    # In a second terminal next to ./bin/run: use the running demo's Redis, database and key.
    load_demo_env()
    try:
        from django.conf import settings

        settings.INSTALLED_APPS  # noqa: B018 - load the settings here, to report them plainly
    except ImproperlyConfigured as exc:
        # A missing setting is the user's to fix, not a bug: one line, no traceback.
        sys.exit(
            f"manage.py: {exc} (No demo is running: ./bin/run sets everything for the "
            "commands typed next to it.)"
        )
    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
