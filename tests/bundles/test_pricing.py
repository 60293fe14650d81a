"""Pure price and availability math: no database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bundles import pricing
from bundles.pricing import Line

D = Decimal
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def line(price="10.00", quantity=1, *, currency="USD", stock=100, allocated=0, **kw) -> Line:
    return Line(
        price=D(price),
        currency=currency,
        quantity=quantity,
        stock_on_hand=stock,
        allocated=allocated,
        **kw,
    )


STARTER = [line("100.05", 1), line("9.99", 2)]  # total 120.03


def price(lines=STARTER, rule="percent_off", value="0", currency="USD") -> pricing.PriceResult:
    return pricing.compute_price(lines=lines, rule=rule, value=D(value), currency=currency)


# --- rules ---------------------------------------------------------------------------------


def test_components_total_is_sum_of_price_times_quantity():
    assert pricing.components_total(STARTER) == D("120.03")


def test_percent_off_takes_the_percentage_off_the_total():
    result = price(rule="percent_off", value="10")  # 120.03 × 0.9 = 108.027
    assert result.price == D("108.03")
    assert result.total == D("120.03")
    assert result.problem is None


def test_amount_off_subtracts_the_amount():
    assert price(rule="amount_off", value="20.50").price == D("99.53")


def test_fixed_price_is_the_value_and_below_total_is_not_flagged():
    result = price(rule="fixed_price", value="99")
    assert result.price == D("99.00")
    assert result.no_saving is False


@pytest.mark.parametrize("value", ["120.03", "150"])
def test_fixed_price_not_below_total_is_allowed_but_flagged_no_saving(value):
    result = price(rule="fixed_price", value=value)
    assert result.price == D(value).quantize(D("0.01"))
    assert result.no_saving is True
    assert result.problem is None


# --- rounding ------------------------------------------------------------------------------


def test_half_up_rounding_at_the_boundary_rounds_up():
    # 10.05 × 50 % = 5.025 exactly: half-up gives 5.03 (banker's rounding would give 5.02).
    result = price(lines=[line("10.05")], rule="percent_off", value="50")
    assert result.price == D("5.03")


def test_half_up_applies_to_the_total_too():
    # 3 × 0.335 = 1.005 → 1.01
    result = price(lines=[line("0.335", 3)], rule="percent_off", value="0")
    assert result.total == D("1.01")
    assert result.price == D("1.01")


def test_zero_decimal_currency_rounds_to_whole_units():
    result = price(
        lines=[line("101", currency="JPY")], rule="percent_off", value="50", currency="JPY"
    )
    assert result.price == D("51")  # 50.5 → 51


def test_three_decimal_currency_rounds_to_thousandths():
    result = price(
        lines=[line("2.001", currency="BHD")], rule="percent_off", value="50", currency="BHD"
    )
    assert result.price == D("1.001")  # 1.0005 → 1.001


@pytest.mark.parametrize(
    ("currency", "units"),
    [
        ("USD", 2),
        ("EUR", 2),
        ("JPY", 0),
        ("KRW", 0),
        ("KWD", 3),
        ("CLF", 4),  # only a full ISO 4217 table knows this one
        ("ISK", 0),
        ("eur", 2),
        ("XAU", 2),  # no minor unit in ISO 4217: cents
        ("ZZZ", 2),  # not a currency: cents
    ],
)
def test_minor_units_table(currency, units):
    assert pricing.minor_units(currency) == units


# --- problems ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "value"),
    [("amount_off", "120.03"), ("amount_off", "500"), ("percent_off", "100"), ("fixed_price", "0")],
)
def test_result_at_or_below_zero_is_a_problem_not_a_price(rule, value):
    result = price(rule=rule, value=value)
    assert result.price is None
    assert result.problem == pricing.NON_POSITIVE_PRICE


def test_currency_mismatch_is_detected_and_gives_no_price():
    result = price(lines=[line("10"), line("5", currency="EUR")], currency="USD")
    assert result.price is None
    assert result.problem == pricing.CURRENCY_MISMATCH
    assert result.mismatched_currencies == ("EUR",)


def test_no_components_is_a_problem():
    assert price(lines=[]).problem == pricing.NO_COMPONENTS


@pytest.mark.parametrize(
    ("rule", "value"),
    [("percent_off", "100.01"), ("percent_off", "-1"), ("amount_off", "-5"), ("bogus", "1")],
)
def test_invalid_rule_is_refused(rule, value):
    with pytest.raises(pricing.PricingRuleError):
        price(rule=rule, value=value)


# --- availability --------------------------------------------------------------------------


def availability(lines, **kw) -> int:
    return pricing.compute_availability(lines=lines, now=kw.pop("now", NOW), **kw)


def test_availability_is_min_over_components_of_whole_bundles():
    lines = [line(quantity=1, stock=10), line(quantity=2, stock=7)]  # 10 and 3
    assert availability(lines) == 3


def test_allocated_stock_is_not_available():
    assert availability([line(quantity=2, stock=10, allocated=3)]) == 3  # floor(7 / 2)


def test_availability_never_goes_below_zero_when_overallocated():
    assert availability([line(stock=2, allocated=5)]) == 0


def test_cap_limits_availability():
    assert availability([line(stock=100)], cap=5) == 5
    assert availability([line(stock=3)], cap=5) == 3


@pytest.mark.parametrize("flag", [{"enabled": False}, {"deleted": True}])
def test_disabled_or_deleted_component_makes_availability_zero(flag):
    assert availability([line(stock=100), line(stock=100, **flag)]) == 0


def test_validity_window_outside_is_zero_inside_counts():
    day = timedelta(days=1)
    lines = [line(stock=10)]
    assert availability(lines, valid_from=NOW + day) == 0
    assert availability(lines, valid_to=NOW - day) == 0
    assert availability(lines, valid_to=NOW) == 0  # valid_to is exclusive
    assert availability(lines, valid_from=NOW - day, valid_to=NOW + day) == 10
    assert availability(lines, valid_from=NOW) == 10


def test_no_components_means_no_availability():
    assert availability([]) == 0


# --- properties ----------------------------------------------------------------------------

money = st.decimals(min_value=0, max_value=100_000, places=4, allow_nan=False, allow_infinity=False)
lines_strategy = st.lists(
    st.builds(
        Line,
        price=money,
        currency=st.just("USD"),
        quantity=st.integers(min_value=1, max_value=1000),
        stock_on_hand=st.integers(min_value=0, max_value=1_000_000),
        allocated=st.integers(min_value=0, max_value=1_000_000),
        enabled=st.booleans(),
        deleted=st.booleans(),
    ),
    max_size=8,
)
rules = st.one_of(
    st.tuples(
        st.just("percent_off"), st.decimals(min_value=0, max_value=100, places=2, allow_nan=False)
    ),
    st.tuples(st.just("amount_off"), money),
    st.tuples(st.just("fixed_price"), money),
)


@given(lines=lines_strategy, rule=rules, currency=st.sampled_from(["USD", "JPY", "KWD"]))
def test_price_is_never_negative_or_zero(lines, rule, currency):
    lines = [Line(**{**ln.__dict__, "currency": currency}) for ln in lines]
    result = pricing.compute_price(lines=lines, rule=rule[0], value=rule[1], currency=currency)
    assert result.price is None or result.price > 0
    assert (result.price is None) == (result.problem is not None)


@given(lines=lines_strategy, cap=st.one_of(st.none(), st.integers(min_value=0, max_value=10**6)))
def test_availability_never_exceeds_any_components_whole_bundles(lines, cap):
    result = pricing.compute_availability(lines=lines, now=NOW, cap=cap)
    assert result >= 0
    for ln in lines:
        assert result <= max(0, (ln.stock_on_hand - ln.allocated) // ln.quantity)
    if cap is not None:
        assert result <= cap
