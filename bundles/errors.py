"""Errors the bundle services raise. Each has a stable ``code`` and a human ``message``.

Doors (admin, GraphQL, commands, job handlers) turn them into their own error shapes; a
``BundleError`` always means "bad input or a refused operation, nothing was changed".
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .models import Bundle


class BundleError(Exception):
    """Bad input or a refused operation; follows the API error protocol (``api/errors.py``):
    ``api_code`` says how every door reports it, ``field`` names the input it is about."""

    api_code = "BAD_USER_INPUT"
    code: str = "bundle_error"
    message: str
    field: str | None = None

    def __init__(self, message: str, *, code: str | None = None, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if field is not None:
            self.field = field

    def __str__(self) -> str:
        return self.message


class VariantNotFound(BundleError):
    api_code = "NOT_FOUND"
    code = "variant_not_found"

    def __init__(self, ids: Iterable[int]) -> None:
        self.ids: list[int] = sorted(ids)
        shown = ", ".join(str(i) for i in self.ids[:20])
        more = f" (+{len(self.ids) - 20} more)" if len(self.ids) > 20 else ""
        noun = "variant" if len(self.ids) == 1 else "variants"
        super().__init__(f"No {noun} with id {shown}{more}.", field="variantIds")


class BundleNotFound(BundleError):
    api_code = "NOT_FOUND"
    code = "bundle_not_found"

    def __init__(self, ids: Iterable[int]) -> None:
        self.ids: list[int] = sorted(ids)
        shown = ", ".join(str(i) for i in self.ids)
        noun = "bundle" if len(self.ids) == 1 else "bundles"
        super().__init__(f"No {noun} with id {shown}.")


class VariantInUseError(BundleError):
    code = "variant_in_use"

    def __init__(self, *, variant_label: str, bundles: Sequence[Bundle]) -> None:
        self.bundles: list[Bundle] = list(bundles)
        names = ", ".join(f"{b.name!r} (id {b.pk})" for b in self.bundles)
        super().__init__(
            f"Variant {variant_label} can't be deleted: it is a component of {names}. "
            "Remove it from these bundles first, or soft-delete it."
        )


class InvalidScope(BundleError):
    code = "invalid_scope"

    def __init__(self, scope: object) -> None:
        self.scope = scope
        super().__init__(
            f"Invalid scope {scope!r}: use 'all', 'active', 'broken' or a list of bundle ids."
        )


class InvalidJobOptions(BundleError, ValueError):
    """An option of a bundle job request is out of range or unknown."""

    code = "invalid_options"
