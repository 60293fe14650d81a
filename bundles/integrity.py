"""Integrity of a bundle: typed issues, and what the bundle should look like once fixed.

``validate_bundle_integrity`` only reads. ``evaluate_bundle`` also works out the target
state (price, availability, status, reasons, shell values) that the services write when
they recompute or fix. Both work on prefetched data: load many bundles with
``bundles_for_evaluation()`` and every call is free of queries.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from decimal import Decimal

from django.db.models import Exists, OuterRef, Prefetch, QuerySet
from django.utils import timezone

from . import pricing
from .models import Bundle, BundleComponent

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


@dataclass(frozen=True)
class Issue:
    code: str
    message: str
    fixable: bool

    def as_dict(self) -> dict:
        return asdict(self)


def _issue(code: str, message: str) -> Issue:
    return Issue(code=code, message=message, fixable=code in FIXABLE_CODES)


def shell_sku(bundle_id: int) -> str:
    return f"BUNDLE-{bundle_id}"


def shell_slug(bundle_id: int) -> str:
    return f"bundle-shell-{bundle_id}"


@dataclass
class Evaluation:
    """What a bundle is, what is wrong with it, and what it should become."""

    bundle: Bundle
    issues: list[Issue]
    price: Decimal | None
    availability: int
    no_saving: bool
    status: str
    status_before_broken: str
    broken_reasons: list[dict]
    shell_fields: dict = field(default_factory=dict)

    @property
    def unfixable(self) -> list[Issue]:
        return [i for i in self.issues if not i.fixable]

    @property
    def fixable(self) -> list[Issue]:
        return [i for i in self.issues if i.fixable]

    @property
    def status_stale(self) -> bool:
        """The stale rule (``status_is_stale``) for this bundle's stored fields."""
        b = self.bundle
        return status_is_stale(
            stored=(b.status, b.status_before_broken, b.broken_reasons or []),
            evaluated=(self.status, self.status_before_broken, self.broken_reasons),
        )

    @property
    def bundle_fields_changed(self) -> bool:
        b = self.bundle
        return (
            b.computed_price != self.price
            or b.computed_availability != self.availability
            or b.no_saving != self.no_saving
            or self.status_stale
        )


def status_is_stale(*, stored: tuple, evaluated: tuple) -> bool:
    """The stale rule, in one place: the stored (status, status before broken, broken reasons)
    no longer match the evaluated ones (e.g. a broken bundle that is clean now). A check writes
    such a bundle. Plain values, so the per-bundle and the set-based paths share it."""
    return tuple(stored) != tuple(evaluated)


def _components_queryset() -> QuerySet[BundleComponent]:
    # ``variant_is_shell``: the variant is some bundle's shell (its own or another's), known
    # from the same query whatever the shell product's ``is_bundle_shell`` flag says.
    return BundleComponent.objects.select_related("variant__product").annotate(
        variant_is_shell=Exists(Bundle.objects.filter(shell_variant_id=OuterRef("variant_id")))
    )


def bundles_for_evaluation() -> QuerySet[Bundle]:
    """Bundles with everything evaluation and recompute touch: 2 queries for any number."""
    # Timestamps and descriptions are never read here; skipping them saves a third of the
    # row conversion time at 100k bundles. (Fields that are only *assigned* may be deferred.)
    components = (
        _components_queryset()
        .defer(
            "variant__created_at",
            "variant__updated_at",
            "variant__product__created_at",
            "variant__product__updated_at",
            "variant__product__description",
        )
        .order_by("id")
    )
    return (
        Bundle.objects.select_related("shell_product", "shell_variant", "search_entry")
        .defer(
            "created_at",
            "shell_product__created_at",
            "shell_product__updated_at",
            "shell_product__description",
            "shell_variant__created_at",
            "shell_variant__updated_at",
            "search_entry__indexed_at",
            "search_entry__document",
        )
        .prefetch_related(Prefetch("components", queryset=components))
    )


def _components(bundle: Bundle) -> list[BundleComponent]:
    cache = getattr(bundle, "_prefetched_objects_cache", {})
    if "components" in cache:
        return list(cache["components"])
    return list(_components_queryset().filter(bundle=bundle).order_by("id"))


def _is_shell_variant(component: BundleComponent, bundle: Bundle) -> bool:
    """A component that is a bundle's shell variant: own, another's, or on a shell product."""
    if component.variant.product.is_bundle_shell or component.variant_id == bundle.shell_variant_id:
        return True
    known = getattr(component, "variant_is_shell", None)
    if known is None:  # components loaded without the annotation: ask the database
        return Bundle.objects.filter(shell_variant_id=component.variant_id).exists()
    return bool(known)


def _label(component: BundleComponent) -> str:
    return f"{component.variant.sku} ({component.variant.name})"


def target_status(bundle: Bundle, unfixable: list[Issue]) -> tuple[str, str]:
    """(status, status_before_broken) after applying the unfixable issues (``status_after``
    for this bundle's stored fields)."""
    return status_after(bundle.status, bundle.status_before_broken, bool(unfixable))


_ARCHIVED, _BROKEN, _DRAFT = (
    Bundle.Status.ARCHIVED.value,
    Bundle.Status.BROKEN.value,
    Bundle.Status.DRAFT.value,
)


def status_after(status: str, before: str, has_unfixable: bool) -> tuple[str, str]:
    """(status, status_before_broken) after an evaluation, from the stored pair.

    Draft and active bundles with unfixable issues become broken and remember what they were;
    a clean broken bundle returns to it. Archived bundles keep their status (reasons are
    still stored, so they show).
    """
    if status == _ARCHIVED:
        return status, ""
    if has_unfixable:
        if status == _BROKEN:
            return status, before or _DRAFT
        return _BROKEN, status
    if status == _BROKEN:
        return before or _DRAFT, ""
    return status, ""


def evaluate_bundle(bundle: Bundle, *, now: datetime | None = None) -> Evaluation:
    now = now or timezone.now()
    components = _components(bundle)
    issues: list[Issue] = []

    if not components:
        issues.append(_issue(NO_COMPONENTS, "The bundle has no components."))
    for c in components:
        v = c.variant
        if v.deleted_at is not None:
            issues.append(_issue(COMPONENT_DELETED, f"Component {_label(c)} is deleted."))
        if not v.enabled:
            issues.append(_issue(COMPONENT_DISABLED, f"Component {_label(c)} is disabled."))
        if _is_shell_variant(c, bundle):
            issues.append(
                _issue(
                    NESTED_BUNDLE,
                    f"Component {_label(c)} is a bundle's shell variant; bundles can't nest.",
                )
            )
        if not QUANTITY_MIN <= c.quantity <= QUANTITY_MAX:
            issues.append(
                _issue(
                    INVALID_QUANTITY,
                    f"Component {_label(c)} has quantity {c.quantity}; "
                    f"it must lie in {QUANTITY_MIN}–{QUANTITY_MAX}.",
                )
            )

    lines = [
        pricing.Line(
            price=c.variant.price,
            currency=c.variant.currency,
            quantity=c.quantity,
            stock_on_hand=c.variant.stock_on_hand,
            allocated=c.variant.allocated,
            enabled=c.variant.enabled,
            deleted=c.variant.deleted_at is not None,
        )
        for c in components
    ]
    result = pricing.compute_price(
        lines=lines,
        rule=bundle.pricing_rule,
        value=Decimal(bundle.rule_value),
        currency=bundle.currency,
    )
    if result.problem == pricing.CURRENCY_MISMATCH:
        issues.append(
            _issue(
                CURRENCY_MISMATCH,
                f"Components are priced in {', '.join(result.mismatched_currencies)}, "
                f"the bundle in {bundle.currency}.",
            )
        )
    elif result.problem == pricing.NON_POSITIVE_PRICE:
        issues.append(
            _issue(
                NON_POSITIVE_PRICE,
                f"The rule leaves a price ≤ 0 (components total {result.total} {bundle.currency}).",
            )
        )
    price = result.price
    availability = pricing.compute_availability(
        lines=lines,
        now=now,
        cap=bundle.availability_cap,
        valid_from=bundle.valid_from,
        valid_to=bundle.valid_to,
    )

    if bundle.computed_price != price:
        issues.append(
            _issue(PRICE_DRIFT, f"Stored price {bundle.computed_price}, computed {price}.")
        )
    if bundle.computed_availability != availability:
        issues.append(
            _issue(
                AVAILABILITY_DRIFT,
                f"Stored availability {bundle.computed_availability}, computed {availability}.",
            )
        )

    unfixable = [i for i in issues if not i.fixable]
    status, before = target_status(bundle, unfixable)
    shell_fields = {
        "name": bundle.name,
        "price": price if price is not None else Decimal(0),
        "currency": bundle.currency,
        "stock_on_hand": availability,
        "allocated": 0,
        "enabled": status == Bundle.Status.ACTIVE,
        "deleted_at": None,
    }
    if bundle.shell_product_id is None or bundle.shell_variant_id is None:
        issues.append(_issue(SHELL_MISSING, "The bundle's shell product or variant is missing."))
    else:
        drift = _shell_drift(bundle, shell_fields)
        if drift:
            issues.append(_issue(SHELL_OUT_OF_SYNC, f"The shell differs in {', '.join(drift)}."))

    return Evaluation(
        bundle=bundle,
        issues=issues,
        price=price,
        availability=availability,
        no_saving=result.no_saving,
        status=status,
        status_before_broken=before,
        broken_reasons=[i.as_dict() for i in unfixable],
        shell_fields=shell_fields,
    )


def _shell_drift(bundle: Bundle, expected: dict) -> list[str]:
    product, variant = bundle.shell_product, bundle.shell_variant
    assert product is not None and variant is not None  # called for a bundle with both shells
    drift = [name for name, value in expected.items() if getattr(variant, name) != value]
    if variant.product_id != product.pk:
        drift.append("product")
    if product.name != bundle.name:
        drift.append("product name")
    if not product.is_bundle_shell:
        drift.append("is_bundle_shell")
    return drift


def validate_bundle_integrity(bundle: Bundle, *, now: datetime | None = None) -> list[Issue]:
    """Every issue of one bundle. Uses prefetched components/shells when they are loaded."""
    return evaluate_bundle(bundle, now=now).issues


def validate_bundles_integrity(
    bundles: Iterable[Bundle], *, now: datetime | None = None
) -> dict[int, list[Issue]]:
    """Bulk variant: pass bundles from ``bundles_for_evaluation()``; runs no queries itself."""
    now = now or timezone.now()
    return {b.pk: evaluate_bundle(b, now=now).issues for b in bundles}
