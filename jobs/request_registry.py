"""Named request functions: what a schedule (or any door that stores its request as data) calls.

A request function asks for jobs the way every door does (validate, then ``enqueue``); it
takes keyword arguments only, among them ``trigger``, ``requested_by`` and ``reason``, and
returns the ledger job it recorded or merged into (or None when there was nothing to do). An app
registers its own in its ``requests`` module::

    register_request("bundles.check", bundles_check_enqueue, queue="bundle-consistency-check")

A schedule then names ``"bundles.check"`` with JSON ``kwargs`` (``{"scope": "active"}``), so the
nightly check and the admin's "check active" button are the same request: one pending job,
one dedup key, one target.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# The arguments every call gets from the door; a schedule's kwargs may not set them.
DOOR_ARGUMENTS = ("trigger", "requested_by", "reason")


class UnknownRequest(LookupError):
    def __init__(self, name: str) -> None:
        self.name = name
        known = ", ".join(sorted(_REQUESTS)) or "none"
        self.message = f"Unknown request function {name!r} (known: {known})"
        super().__init__(self.message)


class InvalidRequestArguments(ValueError):
    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


@dataclass(frozen=True)
class RequestFunction:
    name: str
    func: Callable[..., Any]
    # The queue whose workers run a schedule's cron entry for this request (None: the first).
    queue: str | None = None
    # The job kind it asks for, for display (schedules list it).
    kind: str = ""
    description: str = ""

    def check_kwargs(self, kwargs: dict) -> None:
        """Refuse kwargs the function does not take, door arguments, or non-JSON values."""
        clashing = [k for k in kwargs if k in DOOR_ARGUMENTS]
        if clashing:
            raise InvalidRequestArguments(
                f"{self.name}: {', '.join(clashing)} come from the door, not the arguments"
            )
        try:
            json.dumps(kwargs)
        except (TypeError, ValueError) as exc:
            raise InvalidRequestArguments(f"{self.name}: arguments must be JSON: {exc}") from exc
        try:
            inspect.signature(self.func).bind(trigger="schedule", **kwargs)
        except TypeError as exc:
            raise InvalidRequestArguments(f"{self.name}: {exc}") from exc

    def call(self, kwargs: dict, *, trigger: str, requested_by=None, reason: str = ""):
        self.check_kwargs(kwargs)
        params = inspect.signature(self.func).parameters
        door = {"trigger": trigger}
        if "requested_by" in params:
            door["requested_by"] = requested_by
        if "reason" in params and reason:
            door["reason"] = reason
        return self.func(**kwargs, **door)


_REQUESTS: dict[str, RequestFunction] = {}


def register_request(
    name: str,
    func: Callable[..., Any],
    *,
    queue: str | None = None,
    kind: str = "",
    description: str = "",
) -> RequestFunction:
    """Register ``func`` as the request function ``name`` (re-registering replaces it)."""
    if "trigger" not in inspect.signature(func).parameters:
        raise ValueError(f"Request function {name!r} must take a 'trigger' keyword argument")
    entry = RequestFunction(
        name=name,
        func=func,
        queue=queue,
        kind=str(kind),
        description=description or (func.__doc__ or "").strip().split("\n")[0],
    )
    _REQUESTS[name] = entry
    return entry


def get_request(name: str) -> RequestFunction:
    try:
        return _REQUESTS[name]
    except KeyError:
        raise UnknownRequest(name) from None


def all_requests() -> list[RequestFunction]:
    return sorted(_REQUESTS.values(), key=lambda r: r.name)
