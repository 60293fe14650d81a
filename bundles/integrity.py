"""Integrity rules of a bundle, as pure functions over plain values (no ORM, no queries).

The issue codes, what each issue says, which can be fixed automatically, and how a bundle's
status follows its unfixable issues. The engine (``bundles/engine/``) reads a batch's rows and
aggregates and asks these functions; ``selectors.validate_bundle_integrity`` is the read-only
door for one bundle.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from decimal import Decimal

from . import pricing

NO_COMPONENTS = "no_components"
COMPONENT_DELETED = "component_deleted"
COMPONENT_DISABLED = "component_disabled"
CURRENCY_MISMATCH = "currency_mismatch"
NON_POSITIVE_PRICE = "non_positive_price"
PRICE_DRIFT = "price_drift"
AVAILABILITY_DRIFT = "availability_drift"
SHELL_MISSING = "shell_missing"
SHELL_OUT_OF_SYNC = "shell_out_of_sync"
NESTED_BUNDLE = "nested_bundle"
INVALID_QUANTITY = "invalid_quantity"

# Fixing means recomputing (drift) or recreating/syncing the shell; the rest needs a person.
FIXABLE_CODES = frozenset({PRICE_DRIFT, AVAILABILITY_DRIFT, SHELL_MISSING, SHELL_OUT_OF_SYNC})
ALL_CODES = (
    NO_COMPONENTS,
    COMPONENT_DELETED,
    COMPONENT_DISABLED,
    CURRENCY_MISMATCH,
    NON_POSITIVE_PRICE,
    PRICE_DRIFT,
    AVAILABILITY_DRIFT,
    SHELL_MISSING,
    SHELL_OUT_OF_SYNC,
    NESTED_BUNDLE,
    INVALID_QUANTITY,
)

QUANTITY_MIN, QUANTITY_MAX = 1, 1000

# Bundle statuses, as the model spells them (kept here as text: this module imports no ORM).
ACTIVE, ARCHIVED, BROKEN, DRAFT = "active", "archived", "broken", "draft"


@dataclass(frozen=True)
class Issue:
    code: str
    message: str
    fixable: bool

    def as_dict(self) -> dict:
        return asdict(self)


def issue(code: str, message: str) -> Issue:
    """An issue of this code; whether it is fixable follows from the code."""
    return Issue(code=code, message=message, fixable=code in FIXABLE_CODES)


def shell_sku(bundle_id: int) -> str:
    return f"BUNDLE-{bundle_id}"


def shell_slug(bundle_id: int) -> str:
    return f"bundle-shell-{bundle_id}"


def component_label(sku: str, name: str) -> str:
    return f"{sku} ({name})"


def no_components_issues(n_components: int) -> list[Issue]:
    if n_components:
        return []
    return [issue(NO_COMPONENTS, "The bundle has no components.")]


def component_issues(
    *, label: str, deleted: bool, enabled: bool, nested: bool, quantity: int
) -> list[Issue]:
    """What is wrong with one component (deleted, disabled, a bundle's shell, bad quantity)."""
    issues = []
    if deleted:
        issues.append(issue(COMPONENT_DELETED, f"Component {label} is deleted."))
    if not enabled:
        issues.append(issue(COMPONENT_DISABLED, f"Component {label} is disabled."))
    if nested:
        issues.append(
            issue(
                NESTED_BUNDLE, f"Component {label} is a bundle's shell variant; bundles can't nest."
            )
        )
    if not QUANTITY_MIN <= quantity <= QUANTITY_MAX:
        issues.append(
            issue(
                INVALID_QUANTITY,
                f"Component {label} has quantity {quantity}; "
                f"it must lie in {QUANTITY_MIN}–{QUANTITY_MAX}.",
            )
        )
    return issues


def price_issues(result: pricing.PriceResult, *, currency: str) -> list[Issue]:
    """The pricing problem of a bundle (mixed currencies, a price ≤ 0) as an issue."""
    if result.problem == pricing.CURRENCY_MISMATCH:
        others = ", ".join(result.mismatched_currencies)
        return [
            issue(
                CURRENCY_MISMATCH, f"Components are priced in {others}, the bundle in {currency}."
            )
        ]
    if result.problem == pricing.NON_POSITIVE_PRICE:
        return [
            issue(
                NON_POSITIVE_PRICE,
                f"The rule leaves a price ≤ 0 (components total {result.total} {currency}).",
            )
        ]
    return []


def drift_issues(
    *,
    stored_price: Decimal | None,
    price: Decimal | None,
    stored_availability: int,
    availability: int,
) -> list[Issue]:
    """Stored values that differ from the computed ones (fixed by a recompute)."""
    issues = []
    if stored_price != price:
        issues.append(issue(PRICE_DRIFT, f"Stored price {stored_price}, computed {price}."))
    if stored_availability != availability:
        issues.append(
            issue(
                AVAILABILITY_DRIFT,
                f"Stored availability {stored_availability}, computed {availability}.",
            )
        )
    return issues


def shell_issues(*, missing: bool, drift: Sequence[str]) -> list[Issue]:
    """The shell is missing, or differs from its bundle in these fields."""
    if missing:
        return [issue(SHELL_MISSING, "The bundle's shell product or variant is missing.")]
    if drift:
        return [issue(SHELL_OUT_OF_SYNC, f"The shell differs in {', '.join(drift)}.")]
    return []


def status_is_stale(*, stored: tuple, evaluated: tuple) -> bool:
    """The stale rule, in one place: the stored (status, status before broken, broken reasons)
    no longer match the evaluated ones (e.g. a broken bundle that is clean now). A check writes
    such a bundle."""
    return tuple(stored) != tuple(evaluated)


def status_after(status: str, before: str, has_unfixable: bool) -> tuple[str, str]:
    """(status, status_before_broken) after an evaluation, from the stored pair.

    Draft and active bundles with unfixable issues become broken and remember what they were;
    a clean broken bundle returns to it. Archived bundles keep their status (reasons are
    still stored, so they show).
    """
    if status == ARCHIVED:
        return status, ""
    if has_unfixable:
        if status == BROKEN:
            return status, before or DRAFT
        return BROKEN, status
    if status == BROKEN:
        return before or DRAFT, ""
    return status, ""
