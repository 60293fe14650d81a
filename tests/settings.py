"""The project's settings plus a test app (tests/jobs_testapp) that registers its own job kind
and target type: proof that the jobs app serves an app it has never heard of. Production
settings never install it."""

from config.settings import *  # noqa: F403

INSTALLED_APPS = [*INSTALLED_APPS, "tests.jobs_testapp"]  # noqa: F405
