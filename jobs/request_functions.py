"""Named request functions: what a schedule (or any door that stores its request as data) calls.

A request function asks for jobs the way every door does (validate, then ``enqueue``); it
takes keyword arguments only, among them ``trigger``, ``requested_by`` and ``reason``, and
returns the ledger job it recorded or merged into (or None when there was nothing to do). An app
registers its own in its ``requests`` module::

    register_request(
        "bundles.check",
        bundles_check_enqueue,
        permission="bundles.change_bundle",  # what the work needs, whoever asks
        validate=check_arguments,  # called when a schedule is saved
        queue="bundle-consistency-check",
    )

Each request declares the permission(s) its work needs: a person creating, editing, enabling or
running a schedule needs them besides the schedule permission (``jobs.scheduling.permissions``
checks), and a cron fire runs as the person who last changed the schedule. ``validate`` gets the
schedule's arguments and raises (``InvalidRequestArguments``, ``ValueError`` or any error with
an ``api_code`` and ``message``) when they would fail, so a bad argument is refused on save.

A schedule then names ``"bundles.check"`` with JSON ``kwargs`` (``{"scope": "active"}``), so the
nightly check and the admin's "check active" button are the same request: one pending job,
one dedup key, one target.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from jobs.permissions import User, missing_permissions

# The arguments every call gets from the door; a schedule's kwargs may not set them.
DOOR_ARGUMENTS = ("trigger", "requested_by", "reason")


class UnknownRequest(LookupError):
    def __init__(self, name: str) -> None:
        self.name = name
        known = ", ".join(sorted(_REQUESTS)) or "none"
        self.message = f"Unknown request function {name!r} (known: {known})"
        super().__init__(self.message)


class InvalidRequestArguments(ValueError):
    def __init__(self, message: str, *, audit: bool = False) -> None:
        self.message = message
        # A refusal worth an admin log entry (a validator's error with ``audit = True``, such
        # as a retention below the floor), not just a typo.
        self.audit = audit
        super().__init__(message)


@dataclass(frozen=True)
class RequestFunction:
    name: str
    func: Callable[..., Any]
    # The permissions (``app.codename``) the work needs; a person asks only with all of them.
    permissions: tuple[str, ...]
    # Checks the arguments beyond the signature (scope names, retention floor…); may be None.
    validate: Callable[[dict], None] | None = None
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
        if self.validate is not None:
            try:
                self.validate(dict(kwargs))
            except InvalidRequestArguments:
                raise
            except Exception as exc:
                if not isinstance(exc, ValueError) and getattr(exc, "api_code", None) is None:
                    raise  # a bug in the validator, not bad arguments
                message = getattr(exc, "message", None) or str(exc)
                raise InvalidRequestArguments(
                    f"{self.name}: {message}", audit=bool(getattr(exc, "audit", False))
                ) from exc

    def missing_permissions(self, user: User | None) -> list[str]:
        """The permissions ``user`` lacks for this work (none for ``None``, the system)."""
        return missing_permissions(user, self.permissions)

    def call(
        self, kwargs: dict, *, trigger: str, requested_by: User | None = None, reason: str = ""
    ) -> Any:
        self.check_kwargs(kwargs)
        params = inspect.signature(self.func).parameters
        door: dict[str, Any] = {"trigger": trigger}
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
    permission: str | Sequence[str],
    validate: Callable[[dict], None] | None = None,
    queue: str | None = None,
    kind: str = "",
    description: str = "",
) -> RequestFunction:
    """Register ``func`` as the request function ``name`` (re-registering replaces it).

    ``permission`` is required: the permission (or permissions) its work needs, checked for
    whoever asks through a schedule."""
    if "trigger" not in inspect.signature(func).parameters:
        raise ValueError(f"Request function {name!r} must take a 'trigger' keyword argument")
    permissions = (permission,) if isinstance(permission, str) else tuple(permission)
    if not permissions or not all(isinstance(p, str) and "." in p for p in permissions):
        raise ValueError(f"Request function {name!r}: permission is 'app.codename' (or several)")
    entry = RequestFunction(
        name=name,
        func=func,
        permissions=permissions,
        validate=validate,
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
