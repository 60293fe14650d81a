"""Typed GraphQL errors: every error in a response carries ``extensions.code``.

Resolvers raise :class:`ApiError` subclasses (or the services' own errors, which
:func:`format_error` maps); anything else becomes INTERNAL_SERVER_ERROR with a reference to the
server log, never a message or traceback from inside the code.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from typing import Any

from graphql import GraphQLError

logger = logging.getLogger(__name__)

UNAUTHENTICATED = "UNAUTHENTICATED"
FORBIDDEN = "FORBIDDEN"
NOT_FOUND = "NOT_FOUND"
BAD_USER_INPUT = "BAD_USER_INPUT"
INTERNAL_SERVER_ERROR = "INTERNAL_SERVER_ERROR"
GRAPHQL_PARSE_FAILED = "GRAPHQL_PARSE_FAILED"
GRAPHQL_VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"
# A document over one of the limits in api/limits.py (depth, aliases, cost...).
QUERY_TOO_COMPLEX = "QUERY_TOO_COMPLEX"


class ApiError(Exception):
    """An error meant for the API client: a stable code, a message, optional details."""

    code = BAD_USER_INPUT

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    @property
    def extensions(self) -> dict[str, Any]:
        # graphql-core copies an original error's ``extensions`` into the formatted error.
        return {"code": self.code, **self.details}


class Unauthenticated(ApiError):
    code = UNAUTHENTICATED


class Forbidden(ApiError):
    code = FORBIDDEN


class NotFound(ApiError):
    code = NOT_FOUND

    def __init__(self, message: str, *, ids: Sequence[str | int] = (), **details: Any) -> None:
        super().__init__(message, ids=[str(i) for i in ids], **details)


class BadUserInput(ApiError):
    code = BAD_USER_INPUT

    def __init__(self, message: str, *, field: str | None = None, **details: Any) -> None:
        if field:
            details["field"] = field
        super().__init__(message, **details)


def as_api_error(exc: BaseException) -> ApiError | None:
    """The API error a service exception stands for, or None if it is unexpected.

    The protocol the domains' exceptions follow (so this module imports no domain): a class
    attribute ``api_code`` (``NOT_FOUND``, ``BAD_USER_INPUT`` or ``FORBIDDEN``), a
    ``message``, the domain's own ``code`` (sent as ``extensions.reason``), and optionally
    ``field`` and ``ids``.
    """
    if isinstance(exc, ApiError):
        return exc
    api_code = getattr(exc, "api_code", None)
    message = getattr(exc, "message", None) or str(exc)
    if api_code == FORBIDDEN:
        return Forbidden(message)
    if api_code == NOT_FOUND:
        return NotFound(message, ids=getattr(exc, "ids", None) or ())
    if api_code == BAD_USER_INPUT:
        details = {"reason": getattr(exc, "code", None) or "bad_input"}
        return BadUserInput(message, field=getattr(exc, "field", None), **details)
    return None


def format_error(error: Exception) -> dict[str, Any]:
    """The JSON of one error in the response's ``errors`` list."""
    if not isinstance(error, GraphQLError):
        # Raised outside execution (graphene's HttpError: bad JSON, no query...).
        message = getattr(error, "message", None) or str(error)
        return {"message": message, "extensions": {"code": BAD_USER_INPUT}}
    original = error.original_error
    if original is None:
        formatted = error.formatted
        if "code" not in (formatted.get("extensions") or {}):
            code = (
                GRAPHQL_PARSE_FAILED
                if "Syntax Error" in error.message
                else (GRAPHQL_VALIDATION_FAILED)
            )
            formatted["extensions"] = {**(formatted.get("extensions") or {}), "code": code}
        return dict(formatted)
    api_error = as_api_error(original)
    if api_error is None and error.path is None:
        # No path: the request's variables failed coercion to their declared types before
        # anything ran (an Int beyond 32 bits, a malformed DateTime...). graphql-core's own
        # message says which variable and why; it is the client's input, not our fault.
        return {
            "message": error.message,
            "locations": [loc._asdict() for loc in error.locations or ()],
            "extensions": {"code": BAD_USER_INPUT},
        }
    if api_error is None:
        ref = uuid.uuid4().hex[:12]
        logger.error(
            "Unexpected error in GraphQL resolver at %s (ref %s)",
            error.path,
            ref,
            exc_info=(type(original), original, original.__traceback__),
        )
        api_error = ApiError(f"Internal server error (reference {ref}; see the server log).")
        api_error.code = INTERNAL_SERVER_ERROR
    out: dict[str, Any] = {"message": api_error.message}
    if error.locations:
        out["locations"] = [loc._asdict() for loc in error.locations]
    if error.path is not None:
        out["path"] = list(error.path)
    out["extensions"] = api_error.extensions
    return out
