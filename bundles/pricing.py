"""Price and availability of a bundle: pure functions over plain values (no ORM).

Money is ``Decimal`` throughout and is rounded once, at the end, half-up to the currency's
minor unit. Problems (a price that is not positive, mixed currencies, no components) are
reported, never turned into a price.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from typing import NamedTuple

from iso4217 import Currency

PERCENT_OFF = "percent_off"
AMOUNT_OFF = "amount_off"
FIXED_PRICE = "fixed_price"
RULES = (PERCENT_OFF, AMOUNT_OFF, FIXED_PRICE)

# Codes that ISO 4217 does not list, or lists without a minor unit (gold, SDR): cents.
DEFAULT_MINOR_UNITS = 2

# Problem codes (they match the integrity codes of the same name).
NO_COMPONENTS = "no_components"
CURRENCY_MISMATCH = "currency_mismatch"
NON_POSITIVE_PRICE = "non_positive_price"


class PricingRuleError(ValueError):
    """The rule itself is invalid (unknown kind, negative value, percent above 100)."""


@dataclass(frozen=True)
class Line:
    """One component as plain values."""

    price: Decimal
    currency: str
    quantity: int
    stock_on_hand: int = 0
    allocated: int = 0
    enabled: bool = True
    deleted: bool = False


class PriceResult(NamedTuple):
    """Immutable; a tuple because a catalog recompute builds one per bundle (a frozen
    dataclass costs three times as much to make)."""

    price: Decimal | None  # None whenever there is a problem
    total: Decimal | None  # components' total, rounded; None with mixed currencies
    problem: str | None = None  # NO_COMPONENTS / CURRENCY_MISMATCH / NON_POSITIVE_PRICE
    no_saving: bool = False  # a fixed price not below the total: allowed, but flagged
    mismatched_currencies: tuple[str, ...] = ()


@lru_cache(maxsize=512)
def minor_units(currency: str) -> int:
    """The currency's ISO 4217 exponent (JPY 0, EUR 2, KWD 3), from the ``iso4217`` package."""
    try:
        exponent = Currency(currency.upper()).exponent
    except ValueError:
        return DEFAULT_MINOR_UNITS
    return DEFAULT_MINOR_UNITS if exponent is None else exponent


@lru_cache(maxsize=512)
def _minor_unit(currency: str) -> Decimal:
    return Decimal(1).scaleb(-minor_units(currency))


def quantize_money(amount: Decimal, currency: str) -> Decimal:
    """Round half-up to the currency's minor unit (5.025 USD -> 5.03, 1.5 JPY -> 2)."""
    return amount.quantize(_minor_unit(currency), rounding=ROUND_HALF_UP)


def validate_rule(rule: str, value: Decimal) -> None:
    if rule not in RULES:
        raise PricingRuleError(f"Unknown pricing rule {rule!r}; use one of {', '.join(RULES)}.")
    if not isinstance(value, Decimal) or not value.is_finite():
        raise PricingRuleError(f"Rule value must be a finite Decimal, not {value!r}.")
    if value < 0:
        raise PricingRuleError(f"Rule value must not be negative (got {value}).")
    if rule == PERCENT_OFF and value > 100:
        raise PricingRuleError(f"Percent off must lie in 0–100 (got {value}).")


def components_total(lines: Sequence[Line]) -> Decimal:
    """Sum of price × quantity, unrounded (callers round once at the end)."""
    return sum((line.price * line.quantity for line in lines), Decimal(0))


_HUNDRED = Decimal(100)


def _rule_applied(total: Decimal, rule: str, value: Decimal) -> Decimal:
    if rule == PERCENT_OFF:
        return total * (_HUNDRED - value) / _HUNDRED
    if rule == AMOUNT_OFF:
        return total - value
    return value


def compute_price(
    *, lines: Sequence[Line], rule: str, value: Decimal, currency: str
) -> PriceResult:
    validate_rule(rule, value)
    if not lines:
        return PriceResult(price=None, total=None, problem=NO_COMPONENTS)
    others = tuple(sorted({line.currency for line in lines if line.currency != currency}))
    return price_from_aggregates(
        n_lines=len(lines),
        other_currencies=others,
        raw_total=None if others else components_total(lines),
        rule=rule,
        value=value,
        currency=currency,
    )


def price_from_aggregates(
    *,
    n_lines: int,
    other_currencies: Sequence[str],
    raw_total: Decimal | None,
    rule: str,
    value: Decimal,
    currency: str,
) -> PriceResult:
    """``compute_price`` over a bundle's aggregates instead of its lines.

    ``other_currencies``: the components' currencies other than ``currency``, sorted;
    ``raw_total``: the unrounded Σ price × quantity (only read when there are none).
    """
    validate_rule(rule, value)
    if not n_lines:
        return PriceResult(price=None, total=None, problem=NO_COMPONENTS)
    if other_currencies:
        return PriceResult(
            price=None,
            total=None,
            problem=CURRENCY_MISMATCH,
            mismatched_currencies=tuple(other_currencies),
        )
    if raw_total is None:
        raise ValueError("raw_total is needed when every component is in the bundle's currency")
    total = quantize_money(raw_total, currency)
    price = quantize_money(_rule_applied(raw_total, rule, value), currency)  # validated above
    if price <= 0:
        return PriceResult(price=None, total=total, problem=NON_POSITIVE_PRICE)
    no_saving = rule == FIXED_PRICE and price >= total
    return PriceResult(price=price, total=total, no_saving=no_saving)


def component_availability(line: Line) -> int:
    """Whole bundles one component allows: floor((stock − allocated) ÷ quantity), ≥ 0."""
    if line.quantity < 1:
        return 0
    return max(0, (line.stock_on_hand - line.allocated) // line.quantity)


def unusable(deleted: bool, enabled: bool, quantity: int) -> bool:
    """A component no bundle can be made of: deleted, disabled or with quantity < 1."""
    return deleted or not enabled or quantity < 1


def compute_availability(
    *,
    lines: Sequence[Line],
    now: datetime,
    cap: int | None = None,
    valid_from: datetime | None = None,
    valid_to: datetime | None = None,
) -> int:
    return availability_from_aggregates(
        n_lines=len(lines),
        any_unusable=any(unusable(line.deleted, line.enabled, line.quantity) for line in lines),
        min_component=min((component_availability(line) for line in lines), default=0),
        now=now,
        cap=cap,
        valid_from=valid_from,
        valid_to=valid_to,
    )


def availability_from_aggregates(
    *,
    n_lines: int,
    any_unusable: bool,
    min_component: int,
    now: datetime,
    cap: int | None = None,
    valid_from: datetime | None = None,
    valid_to: datetime | None = None,
) -> int:
    """``compute_availability`` over aggregates: ``any_unusable`` (a component deleted,
    disabled or with quantity < 1) and ``min_component`` (the least whole bundles one
    component allows, floor((stock − allocated) ÷ quantity); clamped at 0 here)."""
    if not n_lines:
        return 0
    if valid_from is not None and now < valid_from:
        return 0
    if valid_to is not None and now >= valid_to:
        return 0
    if any_unusable:
        return 0
    available = max(0, min_component)
    if cap is not None:
        available = min(available, max(0, cap))
    return available
