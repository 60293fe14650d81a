"""Who is calling /graphql/: a Bearer token if one is sent, else the Django session.

A request that sends ``Authorization`` is judged by the token alone: a bad or revoked token
makes it anonymous even if a session cookie came along, so a script never silently acts as
whoever is logged in to the browser.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import AnonymousUser

from api.models import ApiToken
from api.services import api_token_authenticate

BAD_TOKEN_MESSAGE = "Invalid or revoked API token."
BAD_HEADER_MESSAGE = "Send the API token as 'Authorization: Bearer <key>'."


@dataclass
class TokenAuthResult:
    user: object
    token: ApiToken | None
    error: str = ""


def authenticate_bearer(header: str) -> TokenAuthResult:
    """Authenticate an ``Authorization`` header value."""
    scheme, _, key = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        return TokenAuthResult(AnonymousUser(), None, BAD_HEADER_MESSAGE)
    token = api_token_authenticate(key=key.strip())
    if token is None:
        return TokenAuthResult(AnonymousUser(), None, BAD_TOKEN_MESSAGE)
    return TokenAuthResult(token.user, token)


def authenticate_request(request) -> bool:
    """Set ``request.user`` from a Bearer token if the request carries one.

    Returns True when the request is token-authenticated (so CSRF does not apply). The reason
    a token was refused is kept on ``request.api_auth_error`` for the UNAUTHENTICATED message.
    """
    header = request.META.get("HTTP_AUTHORIZATION", "")
    request.api_token = None
    request.api_auth_error = ""
    if not header:
        return False
    result = authenticate_bearer(header)
    request.user = result.user
    request.api_token = result.token
    request.api_auth_error = result.error
    return True
