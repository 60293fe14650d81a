"""The project's settings plus a test app (tests/jobs_testapp) that registers its own job kind
and target type: proof that the jobs app serves an app it has never heard of. Production
settings never install it."""

from config.settings import *  # noqa: F403

INSTALLED_APPS = [*INSTALLED_APPS, "tests.jobs_testapp"]  # noqa: F405

# issue 24: no alert evaluation in the background of every worker; the alert tests evaluate
# when they mean to (and turn it on to test the maintenance pass's own evaluation).
JOBS_ALERTS_ENABLED = False
