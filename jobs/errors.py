"""Errors of the job services. They follow the API error protocol (``api/errors.py``): an
``api_code`` saying how a door reports them, a stable ``code`` and a human ``message``."""

from __future__ import annotations


class JobError(Exception):
    """A refused job operation; follows the API error protocol (``api/errors.py``)."""

    api_code: str | None = None
    code = "job_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class JobNotFound(JobError):
    api_code = "NOT_FOUND"
    code = "not_found"


class JobStateError(JobError):
    api_code = "BAD_USER_INPUT"
    code = "invalid_state"


class JobPermissionDenied(JobError):
    api_code = "FORBIDDEN"
    code = "permission_denied"
    permissions: list[str]  # the missing ones, when the raiser sets them (GraphQL names them)
