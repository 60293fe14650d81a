"""``/health/`` for load balancers and probes, on django-health-check.

Checks: the database, Redis, at least one live RQ worker per job queue, the scheduler's
heartbeat, and the oldest waiting job under a threshold. The answer is JSON (HTML for a browser
that asks for it) with 200 when every check passes and 503 naming the failing ones otherwise.
Messages name the part and the problem, never a URL, a host or a password.

Thresholds (settings): ``JOBS_HEALTH_SCHEDULER_MAX_AGE`` (seconds since the scheduler's last
heartbeat, default 60) and ``JOBS_HEALTH_MAX_WAIT`` (seconds the oldest waiting job may wait,
default 600).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import ClassVar

from django.conf import settings
from django.db.models import Min, Q
from django.http import JsonResponse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers, patch_vary_headers
from django.views import View
from health_check.base import HealthCheck, HealthCheckResult
from health_check.checks import Database
from health_check.exceptions import HealthCheckException, ServiceUnavailable
from health_check.views import HealthCheckView
from redis.exceptions import RedisError

from jobs import selectors
from jobs.models import Job, JobState
from jobs.probes import health_checks
from jobs.redis_client import redis_for
from jobs.scheduling.scheduler_heartbeat import heartbeat_age

logger = logging.getLogger(__name__)

DEFAULT_SCHEDULER_MAX_AGE = 60
DEFAULT_MAX_WAIT = 600


def _redis():
    return redis_for(selectors.queue_names()[0])


def _unreachable(exc: Exception) -> ServiceUnavailable:
    # The exception's text names host and port: keep only its class.
    return ServiceUnavailable(f"Redis unreachable ({type(exc).__name__})")


@dataclasses.dataclass(repr=False)
class Named(HealthCheck):
    """A check reported under a short stable name (the JSON key)."""

    name: ClassVar[str] = ""

    def __repr__(self) -> str:
        return self.name


@dataclasses.dataclass(repr=False)
class DatabaseCheck(Named, Database):
    name: ClassVar[str] = "database"


@dataclasses.dataclass(repr=False)
class RedisCheck(Named):
    name: ClassVar[str] = "redis"

    def run(self) -> None:
        try:
            _redis().ping()
        except (RedisError, OSError) as exc:
            raise _unreachable(exc) from exc


@dataclasses.dataclass(repr=False)
class WorkersCheck(Named):
    name: ClassVar[str] = "workers"

    def run(self) -> None:
        workers = selectors.workers_by_queue()
        if workers is None:
            raise ServiceUnavailable("Redis unreachable: cannot list workers")
        idle = [q for q in selectors.queue_names() if not workers.get(q)]
        if idle:
            raise ServiceUnavailable(f"no live worker for queue {', '.join(idle)}")


@dataclasses.dataclass(repr=False)
class SchedulerCheck(Named):
    name: ClassVar[str] = "scheduler"

    def run(self) -> None:
        max_age = getattr(settings, "JOBS_HEALTH_SCHEDULER_MAX_AGE", DEFAULT_SCHEDULER_MAX_AGE)
        try:
            age = heartbeat_age(_redis())
        except (RedisError, OSError) as exc:
            raise _unreachable(exc) from exc
        if age is None:
            raise ServiceUnavailable("no scheduler heartbeat (is run_scheduler running?)")
        if age > max_age:
            raise ServiceUnavailable(f"scheduler heartbeat is {age:.0f}s old (limit {max_age}s)")


def oldest_wait_seconds(*, now=None) -> float | None:
    """How long the longest-waiting job has been due: pending since it was created (or since
    its ``run_after``), retrying since its backoff ran out. None if nothing waits."""
    now = now or timezone.now()
    due = Job.objects.filter(
        Q(state=JobState.PENDING) | Q(state=JobState.RETRYING),
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now),
        cancel_requested=False,
    ).aggregate(
        pending=Min("created_at", filter=Q(state=JobState.PENDING, next_attempt_at__isnull=True)),
        delayed=Min("next_attempt_at"),
    )
    since = [t for t in (due["pending"], due["delayed"]) if t is not None]
    return (now - min(since)).total_seconds() if since else None


@dataclasses.dataclass(repr=False)
class BacklogCheck(Named):
    name: ClassVar[str] = "backlog"

    def run(self) -> None:
        max_wait = getattr(settings, "JOBS_HEALTH_MAX_WAIT", DEFAULT_MAX_WAIT)
        wait = oldest_wait_seconds()
        if wait is not None and wait > max_wait:
            raise ServiceUnavailable(
                f"oldest waiting job has waited {wait:.0f}s (limit {max_wait}s)"
            )


CHECKS = (DatabaseCheck, RedisCheck, WorkersCheck, SchedulerCheck, BacklogCheck)


def run_check(check: HealthCheck) -> HealthCheckResult:
    """Run one (synchronous) check here; its failure becomes the result's error."""
    started = time.monotonic()
    try:
        check.run()
        error = None
    except HealthCheckException as exc:
        logger.warning("Health check %r failed: %s", check, exc)
        error = exc
    except Exception:  # a bug in a check must not say more than "unknown error" to a probe
        logger.exception("Health check %r crashed", check)
        error = HealthCheckException("unknown error")
    return HealthCheckResult(check=check, error=error, time_taken=time.monotonic() - started)


class HealthView(HealthCheckView):
    """JSON unless the client asks for HTML; 503 when a check fails (probes read the code).

    Synchronous, in the request's thread: every check is a short blocking call with its own
    client timeout (Redis connects give up after 2 s), and a sync view needs no event loop.
    """

    checks = CHECKS

    def get_checks(self):
        yield from super().get_checks()
        yield from (check() for check in health_checks())  # other apps' (jobs.probes)

    def dispatch(self, request, *args, **kwargs):
        response = View.dispatch(self, request, *args, **kwargs)
        patch_vary_headers(response, ["Accept"])
        add_never_cache_headers(response)
        return response

    def get(self, request, *args, **kwargs):
        self.results = [run_check(check) for check in self.get_checks()]
        status = 503 if any(result.error for result in self.results) else 200
        wants_html = request.GET.get("format") == "html" or (
            "text/html" in request.headers.get("accept", "") and "format" not in request.GET
        )
        if wants_html:
            return self.render_to_response(self.get_context_data(**kwargs), status=status)
        return self.render_to_response_json(status)

    def render_to_response_json(self, status):
        checks = {
            repr(result.check): "ok" if not result.error else str(result.error)
            for result in self.results
        }
        failing = [name for name, value in checks.items() if value != "ok"]
        body = {"status": "ok" if not failing else "failing", "failing": failing, "checks": checks}
        return JsonResponse(body, status=status)
