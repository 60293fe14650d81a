"""One registry of job kinds: each kind's queue, handler, retry policy and timeout.

A consuming app registers its handlers with the decorator in a module that its own
``AppConfig.ready()`` imports (``bundles.apps`` imports ``bundles.handlers``); the jobs app
discovers nothing by itself. Django Tasks ``@task`` paths are kinds too, resolved when first
asked for (``register_kind_resolver``, from ``jobs.apps``)::

    @job_kind("recompute", queue="bundle-recompute", max_attempts=3, backoff=(10, 60, 300))
    def recompute(ctx: JobContext, *, bundle_id: int, **options) -> dict: ...
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.conf import settings

if TYPE_CHECKING:
    from jobs.context import JobContext

# What a handler returns: a JSON-ready result (a dict, usually), None, or ``AWAIT_CHILDREN``
# (``jobs.parents``, a layer above this one: ``jobs.runner`` tells them apart).
Handler = Callable[..., object]


class UnknownJobKind(LookupError):
    """No handler is registered under this name."""

    def __init__(self, name: str) -> None:
        self.name = name
        known = ", ".join(sorted(_REGISTRY)) or "none"
        super().__init__(f"Unknown job kind {name!r} (known: {known})")


@dataclass(frozen=True)
class JobKind:
    name: str
    queue: str
    handler: Handler
    max_attempts: int = 3
    # Seconds to wait before attempt 2, 3, ...; the last value repeats for later attempts.
    backoff: tuple[int, ...] = (10, 60, 300)
    timeout: int = 600
    description: str = ""
    # Extra keyword arguments for RQ's enqueue of one row (e.g. ``at_front``), from its payload.
    dispatch_options: Callable[[dict], dict] | None = None
    # A parent kind's result once all its children settled: summarize(parent), called once
    # (it streams what it needs from the children; never load them all with their payloads).
    summarize: Callable[[Any], dict] | None = None

    def backoff_for(self, attempt: int) -> int:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        if not self.backoff:
            return 0
        return self.backoff[min(attempt, len(self.backoff)) - 1]

    def run(self, ctx: JobContext, payload: dict[str, Any]) -> object:
        return self.handler(ctx, **payload)


_REGISTRY: dict[str, JobKind] = {}
# Kinds not declared up front (a Django Tasks ``@task`` path): name -> JobKind, or None.
_RESOLVERS: list[Callable[[str], JobKind | None]] = []


def register_kind_resolver(resolver: Callable[[str], JobKind | None]) -> None:
    """Let ``get_kind`` ask ``resolver`` about names that no ``@job_kind`` registered."""
    if resolver not in _RESOLVERS:
        _RESOLVERS.append(resolver)


def job_kind(
    name: str,
    *,
    queue: str,
    max_attempts: int = 3,
    backoff: Sequence[int] = (10, 60, 300),
    timeout: int = 600,
    description: str = "",
    summarize: Callable[[Any], dict] | None = None,
) -> Callable[[Handler], Handler]:
    """Register the decorated function as the handler of job kind ``name``."""
    queues = getattr(settings, "RQ_QUEUES", {})
    if queues and queue not in queues:
        raise ValueError(f"Job kind {name!r}: queue {queue!r} is not in RQ_QUEUES")
    if max_attempts < 1:
        raise ValueError(f"Job kind {name!r}: max_attempts must be at least 1")
    if timeout < 1:
        raise ValueError(f"Job kind {name!r}: timeout must be positive")

    name = str(name)  # an enum member (StrEnum) is stored as its plain value

    def register(handler: Handler) -> Handler:
        existing = _REGISTRY.get(name)
        # Re-importing the same module (autoreload, tests) re-registers the same function.
        if existing and existing.handler.__qualname__ != handler.__qualname__:
            raise ValueError(
                f"Job kind {name!r} is already registered by "
                f"{existing.handler.__module__}.{existing.handler.__qualname__}"
            )
        _REGISTRY[name] = JobKind(
            name=name,
            queue=queue,
            handler=handler,
            max_attempts=max_attempts,
            backoff=tuple(int(b) for b in backoff),
            timeout=int(timeout),
            description=description or (handler.__doc__ or "").strip().split("\n")[0],
            summarize=summarize,
        )
        return handler

    return register


def get_kind(name: str) -> JobKind:
    if name in _REGISTRY:
        return _REGISTRY[name]
    for resolver in _RESOLVERS:
        if (kind := resolver(name)) is not None:
            return kind
    raise UnknownJobKind(name)


def all_kinds() -> list[JobKind]:
    return sorted(_REGISTRY.values(), key=lambda kind: kind.name)


# A Django Tasks kind is the task's dotted path (``app.tasks.send_mail``).
_TASK_PATH_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$")


def is_filterable_kind(name: str) -> bool:
    """True for a registered kind or a name shaped like a task path (a list filter's value).

    Never imports anything: a filter value typed by a user must not reach ``import_string``.
    """
    return name in _REGISTRY or (len(name) <= 200 and bool(_TASK_PATH_RE.match(name)))
