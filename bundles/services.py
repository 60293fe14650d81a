"""Writes on bundles: create, recompute, reindex, check/fix, status, variant deletion.

The many-bundle services work in chunks, each chunk one batch of the engine
(``bundles/engine/``) in its own transaction: the number of SQL queries grows with the number
of chunks, never with the number of bundles. One bundle is a batch of one.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Count, ProtectedError
from django.utils import timezone
from django.utils.text import slugify

from jobs.models import JobTrigger

from . import engine, fanout, pricing, requests
from .errors import BundleError, BundleNotFound, VariantInUseError
from .integrity import QUANTITY_MAX, QUANTITY_MIN
from .models import Bundle, BundleComponent, ProductVariant
from .selectors import bundle_ids_for_scope, bundle_ids_using_variants, bundles_using_variant

Progress = Callable[[int, str], None] | None

SETTABLE_STATUSES = (Bundle.Status.DRAFT, Bundle.Status.ACTIVE, Bundle.Status.ARCHIVED)


def _report(progress: Progress, pct: int, message: str) -> None:
    if progress is not None:
        progress(pct, message)


def _chunks(ids: Sequence[int], size: int) -> Iterable[list[int]]:
    size = max(1, int(size))
    for start in range(0, len(ids), size):
        yield list(ids[start : start + size])


def _unique_ids(ids: Iterable[int]) -> list[int]:
    return sorted({int(i) for i in ids})


# --- create -----------------------------------------------------------------------------------


def _as_decimal(value: object, *, what: str) -> Decimal:
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError) as exc:
        raise BundleError(f"{what} must be a number, not {value!r}.", code="invalid_value") from exc
    if not number.is_finite():
        raise BundleError(f"{what} must be a finite number.", code="invalid_value")
    return number


def components_validate(
    *,
    components: Sequence[tuple[int, int]],
    currency: str,
    kept_variant_ids: Iterable[int] = (),
) -> list[tuple[ProductVariant, int]]:
    """The rules at the door for a component list (quantity, a variant once, no bundle's shell,
    not deleted, the bundle's currency); raises BundleError, writes nothing.

    ``bundle_create`` and the admin's bundle form both call this. ``kept_variant_ids`` are
    components a bundle already has and keeps unchanged: one deleted since is what integrity
    reports (the bundle is broken), not a new mistake, so it does not block other edits.
    """
    kept = {int(v) for v in kept_variant_ids}
    pairs: list[tuple[int, int]] = []
    for item in components:
        try:
            variant_id, quantity = item
        except (TypeError, ValueError) as exc:
            raise BundleError(
                f"Each component is (variant_id, quantity), not {item!r}.", code="invalid_component"
            ) from exc
        if isinstance(quantity, bool) or not isinstance(quantity, int):
            raise BundleError(
                f"Quantity of variant {variant_id} must be a whole number, not {quantity!r}.",
                code="invalid_quantity",
            )
        if not QUANTITY_MIN <= quantity <= QUANTITY_MAX:
            raise BundleError(
                f"Quantity of variant {variant_id} is {quantity}; "
                f"it must lie in {QUANTITY_MIN}–{QUANTITY_MAX}.",
                code="invalid_quantity",
            )
        pairs.append((int(variant_id), quantity))
    ids = [v for v, _ in pairs]
    duplicates = sorted({v for v in ids if ids.count(v) > 1})
    if duplicates:
        raise BundleError(
            f"A variant may appear once per bundle; repeated: {', '.join(map(str, duplicates))}.",
            code="duplicate_variant",
        )
    variants = ProductVariant.objects.select_related("product").in_bulk(ids)
    missing = [v for v in ids if v not in variants]
    if missing:
        raise BundleError(
            f"No variant with id {', '.join(map(str, missing))}.", code="variant_not_found"
        )
    shells = set(
        Bundle.objects.filter(shell_variant_id__in=ids).values_list("shell_variant_id", flat=True)
    )
    for vid in ids:
        v = variants[vid]
        if v.product.is_bundle_shell or vid in shells:
            raise BundleError(
                f"Variant {v.sku} is a bundle's shell; a bundle can't contain a bundle.",
                code="nested_bundle",
            )
        if v.deleted_at is not None and vid not in kept:
            raise BundleError(f"Variant {v.sku} is deleted.", code="component_deleted")
        if v.currency != currency:
            raise BundleError(
                f"Variant {v.sku} is priced in {v.currency}, the bundle in {currency}.",
                code="currency_mismatch",
            )
    return [(variants[vid], qty) for vid, qty in pairs]


def _unique_slug(name: str) -> str:
    base = slugify(name)[:200] or "bundle"
    taken = set(Bundle.objects.filter(slug__startswith=base).values_list("slug", flat=True))
    if base not in taken:
        return base
    n = 2
    while f"{base}-{n}" in taken:
        n += 1
    return f"{base}-{n}"


def bundle_create(
    *,
    name: str,
    components: Sequence[tuple[int, int]],
    pricing_rule: str = "percent_off",
    rule_value: Decimal = Decimal(0),
    currency: str = "USD",
    status: str = "draft",
    slug: str | None = None,
    availability_cap: int | None = None,
) -> Bundle:
    """Create a bundle with components and shell, priced and indexed; bad input → BundleError."""
    name = (name or "").strip()
    if not name:
        raise BundleError("A bundle needs a name.", code="invalid_name")
    value = _as_decimal(rule_value, what="Rule value")
    try:
        pricing.validate_rule(pricing_rule, value)
    except pricing.PricingRuleError as exc:
        raise BundleError(str(exc), code="invalid_rule") from exc
    currency = (currency or "").upper()
    if not re.fullmatch(r"[A-Z]{3}", currency):
        raise BundleError(
            f"Currency must be a 3-letter code, not {currency!r}.", code="invalid_currency"
        )
    if status not in SETTABLE_STATUSES:
        raise BundleError(
            f"A new bundle's status is draft, active or archived, not {status!r}.",
            code="invalid_status",
        )
    if availability_cap is not None and (
        isinstance(availability_cap, bool)
        or not isinstance(availability_cap, int)
        or availability_cap < 0
    ):
        raise BundleError("Availability cap must be a whole number ≥ 0.", code="invalid_cap")
    with transaction.atomic():
        pairs = components_validate(components=components, currency=currency)
        if status == Bundle.Status.ACTIVE and not pairs:
            raise BundleError(
                "An active bundle needs at least one component.", code="no_components"
            )
        if slug is None:
            slug = _unique_slug(name)
        elif not re.fullmatch(r"[-a-zA-Z0-9_]+", slug):
            raise BundleError(f"Invalid slug {slug!r}.", code="invalid_slug")
        elif Bundle.objects.filter(slug=slug).exists():
            raise BundleError(f"A bundle with slug {slug!r} exists.", code="duplicate_slug")
        bundle = Bundle.objects.create(
            name=name,
            slug=slug,
            status=status,
            pricing_rule=pricing_rule,
            rule_value=value,
            currency=currency,
            availability_cap=availability_cap,
        )
        BundleComponent.objects.bulk_create(
            BundleComponent(bundle=bundle, variant=variant, quantity=qty) for variant, qty in pairs
        )
        bundle_recompute(bundle_id=bundle.pk, force=True)
    bundle.refresh_from_db()
    return bundle


# --- recompute --------------------------------------------------------------------------------


def bundle_recompute(
    *, bundle_id: int, force: bool = False, update_search: bool = True, progress: Progress = None
) -> dict:
    """Recompute one bundle: price, availability, status/reasons, shell, search entry.

    Without ``force`` only what differs is written; ``force`` rewrites shell and entry anyway.
    """
    with transaction.atomic():
        batch = engine.recompute_batch([bundle_id], update_search=update_search, force=force)
        if not batch.outcomes:
            raise BundleNotFound([bundle_id])
    # The steps are reported once the transaction is over: a progress write inside it would be
    # seen by nobody until the commit and, on PostgreSQL, would hold the job's row locked so
    # that a cancel waited for the recompute (one bundle's transaction is short anyway).
    for pct, message in (
        (25, "loaded"),
        (50, "priced"),
        (75, "saved, shell synced"),
        (100, "indexed" if update_search else "done"),
    ):
        _report(progress, pct, message)
    o = batch.outcomes[0]
    return {
        "bundle_id": o.row.id,
        # Always in the currency's minor unit ("30.00").
        "price": None if o.price is None else str(pricing.quantize_money(o.price, o.row.currency)),
        "availability": o.availability,
        "status": o.status,
        "changed": batch.changed > 0,
    }


def bundles_recompute(
    *,
    bundle_ids: Sequence[int],
    update_search: bool = True,
    batch_size: int = 500,
    progress: Progress = None,
) -> dict:
    """Recompute many bundles in batches; a bounded number of queries per batch.

    The result's ``changes`` maps each changed bundle's id (as text) to what changed, each
    field as (old, new): ``{"12": {"price": ("10.00", "20.00"), "availability": (5, 4)}}``
    (arrays in a job's JSON result).
    """
    ids = _unique_ids(bundle_ids)
    recomputed = changed = 0
    missing: list[int] = []
    changes: dict[str, dict] = {}
    done = 0
    for chunk in _chunks(ids, batch_size):
        with transaction.atomic():
            batch = engine.recompute_batch(chunk, update_search=update_search)
        found = set(batch.found)
        changed += batch.changed
        changes.update({str(k): v for k, v in batch.changes.items()})
        missing += [i for i in chunk if i not in found]
        recomputed += len(found)
        done += len(chunk)
        _report(progress, int(done * 100 / len(ids)), f"{done}/{len(ids)} bundles")
    return {"recomputed": recomputed, "changed": changed, "missing": missing, "changes": changes}


# --- search -----------------------------------------------------------------------------------


def bundles_reindex(
    *, bundle_ids: Sequence[int] | None = None, progress: Progress = None, batch_size: int = 500
) -> int:
    """Rewrite the search entries of these bundles (None = all); returns how many."""
    if bundle_ids is None:
        ids = list(Bundle.objects.order_by("pk").values_list("pk", flat=True))
    else:
        ids = _unique_ids(bundle_ids)
    count = done = 0
    for chunk in _chunks(ids, batch_size):
        with transaction.atomic():
            count += engine.reindex_batch(chunk)
        done += len(chunk)
        _report(progress, int(done * 100 / len(ids)), f"{done}/{len(ids)} bundles")
    if not ids:
        _report(progress, 100, "nothing to index")
    return count


# --- integrity check --------------------------------------------------------------------------


def bundles_check(
    *,
    scope: str | Sequence[int],
    fix: bool = False,
    chunk_size: int = 500,
    progress: Progress = None,
) -> dict:
    """Validate the bundles of a scope; with ``fix`` repair what can be repaired.

    Without ``fix`` nothing is written. With it, drift is recomputed, shells are recreated or
    synced, bundles with unfixable issues become broken (reasons stored) and clean broken
    bundles return to their previous status.

    Counts: ``ok`` (no issues), ``broken`` (unfixable issues), ``fixed`` (fixable issues or
    a stale status, repaired), ``needs_fix`` (the same, left alone because ``fix`` is off),
    ``errors`` (bundles that could not be checked; details in ``error_details``).
    ``broken_bundles`` lists the bundles with issues still present after the run, the first
    ``BUNDLES_CHECK_MAX_LISTED`` (1,000) of them; ``unlisted`` counts the rest (a check of a
    drifted catalog without ``fix`` would otherwise hold every bundle's reasons in memory).
    """
    ids = bundle_ids_for_scope(scope=scope)
    result: dict = {
        **dict.fromkeys(engine.CHECK_COUNTS, 0),
        "broken_bundles": [],
        "error_details": [],
    }
    done = 0
    for chunk in _chunks(ids, chunk_size):
        try:
            with transaction.atomic():
                partial: dict[str, Any] = {
                    k: ([] if isinstance(v, list) else 0) for k, v in result.items()
                }
                engine.check_batch(chunk, fix=fix, result=partial)
        except Exception:
            # Isolate the bundle(s) that fail; the rest of the chunk is still checked.
            partial = {k: ([] if isinstance(v, list) else 0) for k, v in result.items()}
            for bundle_id in chunk:
                try:
                    with transaction.atomic():
                        engine.check_batch([bundle_id], fix=fix, result=partial)
                except Exception as exc:
                    partial["errors"] += 1
                    partial["checked"] += 1
                    partial["error_details"].append({"id": bundle_id, "message": str(exc)})
        for key, value in partial.items():
            result[key] += value
        _cap_listed(result)
        done += len(chunk)
        _report(progress, int(done * 100 / len(ids)), f"checked {done}/{len(ids)}")
    if not ids:
        _report(progress, 100, "nothing to check")
    return result


def _cap_listed(result: dict) -> None:
    cap = int(getattr(settings, "BUNDLES_CHECK_MAX_LISTED", 1000))
    over = len(result["broken_bundles"]) - cap
    if over > 0:
        del result["broken_bundles"][cap:]
        result["unlisted"] = result.get("unlisted", 0) + over


# --- status -----------------------------------------------------------------------------------


def bundles_set_status(*, bundle_ids: Sequence[int], status: str) -> dict:
    """Set draft/active/archived on many bundles; per-bundle refusals land in ``errors``.

    Activation needs at least one component. A broken bundle can only be archived: it returns
    to its previous status by itself once its issues are gone.
    """
    if status not in SETTABLE_STATUSES:
        raise BundleError(
            f"Status {status!r} can't be set; use draft, active or archived "
            "(broken is set by the integrity check).",
            code="invalid_status",
        )
    ids = _unique_ids(bundle_ids)
    updated, errors = 0, []
    for chunk in _chunks(ids, 500):
        with transaction.atomic():
            rows = {
                b.pk: b
                for b in Bundle.objects.filter(pk__in=chunk)
                .annotate(n_components=Count("components"))
                .only("pk", "name", "status", "broken_reasons")
            }
            accepted = []
            for bundle_id in chunk:
                b = rows.get(bundle_id)
                if b is None:
                    errors.append({"id": bundle_id, "message": f"No bundle with id {bundle_id}."})
                elif status == Bundle.Status.ACTIVE and b.n_components == 0:
                    errors.append(
                        {
                            "id": bundle_id,
                            "message": f"{b.name!r} has no components; can't activate.",
                        }
                    )
                elif b.status == Bundle.Status.BROKEN and status != Bundle.Status.ARCHIVED:
                    codes = ", ".join(sorted({r.get("code", "?") for r in b.broken_reasons or []}))
                    errors.append(
                        {
                            "id": bundle_id,
                            "message": f"{b.name!r} is broken ({codes}); it returns to its "
                            "previous status once fixed.",
                        }
                    )
                else:
                    accepted.append(bundle_id)
            if accepted:
                Bundle.objects.filter(pk__in=accepted).update(
                    status=status, status_before_broken="", updated_at=timezone.now()
                )
                # Sync shells (enabled iff active) and search entries; may break a bundle
                # whose components are unusable, with its reasons.
                bundles_recompute(bundle_ids=accepted)
            updated += len(accepted)
    return {"updated": updated, "errors": errors}


# --- variants ---------------------------------------------------------------------------------


def _locked_variant(variant_id: int) -> ProductVariant:
    """The variant, locked for this transaction; refused when unknown or a bundle's shell."""
    variant = ProductVariant.objects.select_for_update().filter(pk=variant_id).first()
    if variant is None:
        raise BundleError(f"No variant with id {variant_id}.", code="variant_not_found")
    if Bundle.objects.filter(shell_variant_id=variant.pk).exists():
        raise BundleError(
            f"Variant {variant.sku} is a bundle's shell; archive or delete the bundle instead.",
            code="shell_variant",
        )
    return variant


def variant_soft_delete(
    *,
    variant_id: int,
    trigger: str = JobTrigger.ADMIN,
    requested_by: AbstractBaseUser | None = None,
) -> list[int]:
    """Mark a variant deleted; returns the ids of the bundles that use it.

    Those bundles become broken in the background: this service asks for the fan-out (their
    recomputes) and the broken-scope check itself, on commit. Nothing is recomputed here.

    The rule: a service that changes what bundles depend on writes with ``update()`` and asks
    for its jobs explicitly; the signal receivers are for saves made by others (the variant's
    admin form, scripts), so nothing is asked for twice.
    """
    with transaction.atomic():
        variant = _locked_variant(variant_id)
        bundle_ids = bundle_ids_using_variants(variant_ids=[variant.pk])
        if variant.deleted_at is not None:
            return bundle_ids  # deleted already: its jobs were asked for then
        now = timezone.now()
        ProductVariant.objects.filter(pk=variant.pk).update(deleted_at=now, updated_at=now)
        fanout.variants_changed(
            variant_ids=[variant.pk],
            trigger=trigger,
            reason=f"Variant {variant.sku} deleted",
            requested_by=requested_by,
            label=variant.sku,
        )
        if bundle_ids:  # the safety net: the broken scope is checked (and fixed) too
            requests.broken_check_enqueue(
                trigger=trigger,
                reason=f"Component variant {variant.sku} deleted",
                requested_by=requested_by,
            )
    return bundle_ids


def variant_hard_delete(*, variant_id: int) -> None:
    """Delete a variant for good; refused (VariantInUseError, nothing deleted) while used.

    No job is asked for: a variant no bundle uses changes no bundle.
    """
    with transaction.atomic():
        variant = _locked_variant(variant_id)
        blocking = bundles_using_variant(variant_id=variant.pk)
        if blocking:
            raise VariantInUseError(variant_label=variant.sku, bundles=blocking)
        try:
            variant.delete()
        except ProtectedError as exc:  # a component was added meanwhile
            raise VariantInUseError(
                variant_label=variant.sku, bundles=bundles_using_variant(variant_id=variant.pk)
            ) from exc
