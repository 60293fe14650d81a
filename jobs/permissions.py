"""The one permission check of the job services and the schedules: which of the permissions
a person lacks, and the ``JobPermissionDenied`` that names them.

``user=None`` is the system (settings, migrations, a command run without ``--user``, a batch
parent retrying its children) and holds every permission.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, TypeAlias, cast

from jobs.errors import JobPermissionDenied

if TYPE_CHECKING:  # the auth models need the app registry; annotations only name them
    from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, PermissionsMixin

# A person (or the anonymous user); ``None`` where a function takes it means the system.
User: TypeAlias = "AbstractBaseUser | AnonymousUser"


def missing_permissions(user: User | None, permissions: Iterable[str]) -> list[str]:
    """The permissions ``user`` lacks, each once, in the order asked."""
    if user is None:
        return []
    # The user model has permissions (PermissionsMixin, as the admin needs): AbstractBaseUser
    # alone declares no ``has_perm``.
    checked = cast("PermissionsMixin | AnonymousUser", user)
    return [p for p in dict.fromkeys(permissions) if not checked.has_perm(p)]


def permission_denied(missing: list[str], message: str) -> JobPermissionDenied:
    """The refusal, with the missing permissions attached (GraphQL names them)."""
    refused = JobPermissionDenied(message)
    refused.permissions = missing
    return refused


def check_permissions(user: User | None, *permissions: str) -> None:
    """Raise ``JobPermissionDenied`` unless ``user`` holds every one of ``permissions``."""
    missing = missing_permissions(user, permissions)
    if missing:
        raise permission_denied(missing, f"You need the permission {', '.join(missing)} for this.")
