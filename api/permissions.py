"""The checks every GraphQL field and mutation makes: the same Django permissions as the admin."""

from __future__ import annotations

from api.errors import Forbidden, Unauthenticated

NOT_LOGGED_IN = "Log in as staff, or send an API token: 'Authorization: Bearer <key>'."


def require_staff(info, *perms: str):
    """The requesting user, if staff with every permission in ``perms``; else an API error.

    Anonymous (or a bad token) → UNAUTHENTICATED; not staff or lacking a permission → FORBIDDEN.
    """
    request = info.context
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        raise Unauthenticated(getattr(request, "api_auth_error", "") or NOT_LOGGED_IN)
    if not user.is_active or not user.is_staff:
        raise Forbidden("Only staff users can use this API.")
    missing = [perm for perm in perms if not user.has_perm(perm)]
    if missing:
        raise Forbidden(
            f"You need the permission {', '.join(missing)} for this.", permissions=missing
        )
    return user
