"""Create, revoke and check API tokens. The management command and the view call these."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.utils import timezone

from api.models import ApiToken

KEY_PREFIX = "bj_"
PREFIX_LENGTH = 11  # "bj_" + 8 characters of the random part
# Recording every request's use would write a row per call; once a minute is enough.
LAST_USED_GRANULARITY = timedelta(seconds=60)


class ApiTokenError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def api_token_create(*, username: str, name: str) -> tuple[ApiToken, str]:
    """A new token for ``username``; returns (row, key). The key is not stored anywhere."""
    name = (name or "").strip()
    if not name:
        raise ApiTokenError("Give the token a name (what it is for).")
    if len(name) > 100:
        raise ApiTokenError("Token names are at most 100 characters.")
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise ApiTokenError(f"No user {username!r}.")
    # The API serves active staff only (api/permissions.py): anyone else's token could only
    # ever be answered FORBIDDEN, so it is refused here rather than handed out silently.
    if not user.is_active:
        raise ApiTokenError(f"User {username!r} is not active: the API serves active staff only.")
    if not user.is_staff:
        raise ApiTokenError(
            f"User {username!r} is not staff: the API serves staff users only "
            "(give them staff status and the permissions their script needs first)."
        )
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user, name=name, prefix=key[:PREFIX_LENGTH], key_hash=hash_key(key)
    )
    return token, key


def api_token_revoke(*, token: str) -> ApiToken:
    """Revoke a token given by id or by its prefix (as ``api_token list`` shows it)."""
    token = (token or "").strip().rstrip("…")
    qs = ApiToken.objects.select_related("user")
    matches = list(qs.filter(pk=int(token))) if token.isdigit() else []
    if not matches and token:
        matches = list(qs.filter(prefix=token[:PREFIX_LENGTH]))
    if not matches:
        raise ApiTokenError(f"No token {token!r} (give its id or prefix).")
    if len(matches) > 1:
        ids = ", ".join(str(t.pk) for t in matches)
        raise ApiTokenError(f"Prefix {token!r} matches tokens {ids}; give the id instead.")
    row = matches[0]
    if row.revoked_at is None:
        row.revoked_at = timezone.now()
        row.save(update_fields=["revoked_at"])
    return row


def api_token_authenticate(*, key: str) -> ApiToken | None:
    """The active token for ``key`` (with its user), or None. Records the use."""
    if not key or not key.startswith(KEY_PREFIX) or len(key) > 200:
        return None
    token = (
        ApiToken.objects.select_related("user")
        .filter(key_hash=hash_key(key), revoked_at__isnull=True)
        .first()
    )
    if token is None or not token.user.is_active:
        return None
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_GRANULARITY:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token


def api_tokens_list(*, username: str | None = None) -> list[ApiToken]:
    qs = ApiToken.objects.select_related("user").order_by("user__username", "-created_at")
    if username:
        qs = qs.filter(user__username=username)
    return list(qs)
