"""Who is acting in this request, for the doors that cannot be told (signal receivers).

``ActorMiddleware`` remembers the request for its duration (a context variable, so threads and
async tasks each see their own); :func:`current_user` reads ``request.user`` when asked, so a
user authenticated later by the view (a GraphQL API token) counts too. Outside a request
(workers, commands) there is no actor. :func:`collecting` gathers the jobs queued meanwhile,
so an admin page can say what a save queued.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar

_request: ContextVar = ContextVar("jobs_actor_request", default=None)
_queued: ContextVar = ContextVar("jobs_actor_queued", default=None)


def current_user():
    """The authenticated user of the current request, or None."""
    request = _request.get()
    user = getattr(request, "user", None) if request is not None else None
    return user if getattr(user, "is_authenticated", False) else None


def note_queued(job) -> None:
    """Record a job queued inside :func:`collecting` (no-op elsewhere)."""
    bucket = _queued.get()
    if bucket is not None and job is not None:
        bucket.append(job)


@contextlib.contextmanager
def collecting() -> Iterator[list]:
    """The jobs :func:`note_queued` saw inside the block, in order."""
    bucket: list = []
    token = _queued.set(bucket)
    try:
        yield bucket
    finally:
        _queued.reset(token)


class ActorMiddleware:
    """Put after AuthenticationMiddleware."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        token = _request.set(request)
        try:
            return self.get_response(request)
        finally:
            _request.reset(token)
