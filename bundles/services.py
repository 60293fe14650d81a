"""Writes on bundles: create, recompute, reindex, check/fix, status, variant deletion.

Every many-bundle service works in batches: a batch is loaded with two queries
(``bundles_for_evaluation``), evaluated in Python and written with ``bulk_create`` and
``_bulk_write`` (one ``executemany`` per table), so the number of SQL queries grows with the
number of batches, never with the number of bundles. ``_bulk_write`` sends no signals, so
writing shells never looks like a catalog change to the receivers that schedule jobs.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, cast

from django.conf import settings
from django.db import connection, models, transaction
from django.db.models import Count, ProtectedError
from django.utils import timezone
from django.utils.text import slugify

from . import evaluation, pricing
from .errors import BundleError, BundleNotFound, VariantInUseError
from .integrity import (
    QUANTITY_MAX,
    QUANTITY_MIN,
    Evaluation,
    bundles_for_evaluation,
    evaluate_bundle,
    shell_sku,
    shell_slug,
)
from .models import Bundle, BundleComponent, Product, ProductVariant, SearchEntry
from .search import entry_values, refresh_documents
from .selectors import bundle_ids_for_scope, bundle_ids_using_variants, bundles_using_variant

Progress = Callable[[int, str], None] | None

SETTABLE_STATUSES = (Bundle.Status.DRAFT, Bundle.Status.ACTIVE, Bundle.Status.ARCHIVED)
# The per-bundle writer also links a recreated shell; the other columns are the set-based ones.
_BUNDLE_FIELDS = [*evaluation.BUNDLE_FIELDS, "shell_product", "shell_variant"]
_SHELL_VARIANT_FIELDS = evaluation.SHELL_VARIANT_FIELDS
_ENTRY_FIELDS = evaluation.ENTRY_FIELDS


def _bulk_write(model: type[models.Model], objs: list, fields: list[str]) -> None:
    """``UPDATE … SET … WHERE pk = %s`` for every object, sent as one ``executemany``.

    Django's ``bulk_update`` builds a ``CASE WHEN`` expression per row and field and costs
    milliseconds of Python per row; this costs microseconds, is one statement per call on
    every backend, and (like ``bulk_update``) sends no signals. ``auto_now`` fields are not
    touched: callers set them.
    """
    if not objs:
        return
    meta = model._meta
    columns = [cast(models.Field, meta.get_field(name)) for name in fields]  # concrete fields
    qn = connection.ops.quote_name
    assignments = ", ".join(f"{qn(f.column)} = %s" for f in columns)
    sql = f"UPDATE {qn(meta.db_table)} SET {assignments} WHERE {qn(meta.pk.column)} = %s"
    rows = [
        [f.get_db_prep_save(getattr(obj, f.attname), connection) for f in columns] + [obj.pk]
        for obj in objs
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)


def _report(progress: Progress, pct: int, message: str) -> None:
    if progress is not None:
        progress(pct, message)


def _chunks(ids: Sequence[int], size: int) -> Iterable[list[int]]:
    size = max(1, int(size))
    for start in range(0, len(ids), size):
        yield list(ids[start : start + size])


def _unique_ids(ids: Iterable[int]) -> list[int]:
    return sorted({int(i) for i in ids})


def _load(ids: Sequence[int], *, lock: bool) -> list[Bundle]:
    qs = bundles_for_evaluation().filter(pk__in=ids).order_by("pk")
    if lock:
        # Serialises concurrent recomputes of the same bundle on PostgreSQL, so the last
        # writer always computed from the newest data (SQLite serialises writers anyway).
        qs = qs.select_for_update(of=("self",))
    return list(qs)


# --- writing evaluated bundles ----------------------------------------------------------------


def _create_missing_shells(evaluations: list[Evaluation]) -> set[int]:
    """Create (or re-link orphaned) shell products/variants; returns ids of bundles touched."""
    bundles = [
        e.bundle
        for e in evaluations
        if e.bundle.shell_product_id is None or e.bundle.shell_variant_id is None
    ]
    if not bundles:
        return set()
    need_product = [b for b in bundles if b.shell_product_id is None]
    if need_product:
        slugs = [shell_slug(b.pk) for b in need_product]
        orphans = {p.slug: p for p in Product.objects.filter(slug__in=slugs)}
        new = []
        for b in need_product:
            product = orphans.get(shell_slug(b.pk))
            if product is None:
                product = Product(name=b.name, slug=shell_slug(b.pk), is_bundle_shell=True)
                new.append(product)
            b.shell_product = product
        Product.objects.bulk_create(new)
        for b in need_product:  # re-assign so the *_id attributes pick up the new pks
            b.shell_product = b.shell_product
    need_variant = [b for b in bundles if b.shell_variant_id is None]
    if need_variant:
        fields = {e.bundle.pk: e.shell_fields for e in evaluations}
        skus = [shell_sku(b.pk) for b in need_variant]
        orphan_variants = {v.sku: v for v in ProductVariant.objects.filter(sku__in=skus)}
        new_variants: list[ProductVariant] = []
        for b in need_variant:
            variant = orphan_variants.get(shell_sku(b.pk))
            if variant is None:
                variant = ProductVariant(
                    product=b.shell_product, sku=shell_sku(b.pk), **fields[b.pk]
                )
                new_variants.append(variant)
            b.shell_variant = variant
        ProductVariant.objects.bulk_create(new_variants)
        for b in need_variant:
            b.shell_variant = b.shell_variant
    return {b.pk for b in bundles}


def _write_bundles(evaluations: list[Evaluation], *, now: datetime, force: bool) -> set[int]:
    """Store computed values, status and reasons; create/sync shells. Returns changed ids."""
    changed = _create_missing_shells(evaluations)

    variants, products = [], []
    for e in evaluations:
        b = e.bundle
        variant, product = b.shell_variant, b.shell_product
        assert variant is not None and product is not None  # _create_missing_shells made them
        variant_differs = variant.product_id != product.pk or any(
            getattr(variant, name) != value for name, value in e.shell_fields.items()
        )
        if variant_differs or force:
            for name, value in e.shell_fields.items():
                setattr(variant, name, value)
            variant.product = product
            variant.updated_at = now
            variants.append(variant)
        product_differs = product.name != b.name or not product.is_bundle_shell
        if product_differs or force:
            product.name, product.is_bundle_shell, product.updated_at = b.name, True, now
            products.append(product)
        if variant_differs or product_differs:
            changed.add(b.pk)
    if variants:
        _bulk_write(ProductVariant, variants, _SHELL_VARIANT_FIELDS)
    if products:
        _bulk_write(Product, products, ["name", "is_bundle_shell", "updated_at"])

    to_save, touched_only = [], []
    for e in evaluations:
        b = e.bundle
        differs = e.bundle_fields_changed
        if differs or force or b.pk in changed:
            b.computed_price = e.price
            b.computed_availability = e.availability
            b.no_saving = e.no_saving
            b.status = e.status
            b.status_before_broken = e.status_before_broken
            b.broken_reasons = e.broken_reasons
            b.last_recomputed_at = b.updated_at = now
            to_save.append(b)
            if differs:
                changed.add(b.pk)
        else:
            b.last_recomputed_at = now
            touched_only.append(b.pk)
    if to_save:
        _bulk_write(Bundle, to_save, _BUNDLE_FIELDS)
    if touched_only:
        Bundle.objects.filter(pk__in=touched_only).update(last_recomputed_at=now)
    return changed


def _index(bundles: list[Bundle], *, force: bool) -> int:
    """Create or refresh the search entries of loaded bundles; returns how many were written."""
    now = timezone.now()
    new, updated = [], []
    for b in bundles:
        sku = b.shell_variant.sku if b.shell_variant is not None else shell_sku(b.pk)
        values = entry_values(b, b.components.all(), sku=sku)
        try:
            entry = b.search_entry
        except SearchEntry.DoesNotExist:
            entry = None
        if entry is None:
            new.append(SearchEntry(bundle=b, **values))
        elif force or any(getattr(entry, k) != v for k, v in values.items()):
            for k, v in values.items():
                setattr(entry, k, v)
            entry.indexed_at = now
            updated.append(entry)
    if new:
        SearchEntry.objects.bulk_create(new)
    if updated:
        _bulk_write(SearchEntry, updated, _ENTRY_FIELDS)
    written = [e.bundle_id for e in new + updated]
    if written:
        refresh_documents(written)
    return len(written)


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
    # The steps are reported once the transaction is over: a progress write inside it would be
    # seen by nobody until the commit and, on PostgreSQL, would hold the job's row locked so
    # that a cancel waited for the recompute (one bundle's transaction is short anyway).
    steps: list[tuple[int, str]] = []
    with transaction.atomic():
        loaded = _load([bundle_id], lock=True)
        if not loaded:
            raise BundleNotFound([bundle_id])
        bundle = loaded[0]
        steps.append((25, "loaded"))
        now = timezone.now()
        evaluation = evaluate_bundle(bundle, now=now)
        steps.append((50, "priced"))
        changed = _write_bundles([evaluation], now=now, force=force)
        steps.append((75, "saved, shell synced"))
        if update_search:
            _index(loaded, force=force)
        steps.append((100, "indexed" if update_search else "done"))
    for pct, message in steps:
        _report(progress, pct, message)
    return {
        "bundle_id": bundle.pk,
        # Always in the currency's minor unit ("30.00"), whether read back or just computed.
        "price": None
        if bundle.computed_price is None
        else str(pricing.quantize_money(bundle.computed_price, bundle.currency)),
        "availability": bundle.computed_availability,
        "status": bundle.status,
        "changed": bundle.pk in changed,
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
            # Set-based (bundles/evaluation.py); bundles whose shell or search entry must be
            # created, and unsupported databases, take the per-bundle path.
            if evaluation.supported():
                batch = evaluation.recompute_batch(chunk, update_search=update_search)
                found, slow = set(batch.found), batch.slow
                changed += batch.changed
                changes.update({str(k): v for k, v in batch.changes.items()})
            else:
                found, slow = set(), chunk
            if slow:
                loaded = _load(slow, lock=True)
                before = {
                    b.pk: (b.computed_price, b.computed_availability, b.status) for b in loaded
                }
                now = timezone.now()
                evaluations = [evaluate_bundle(b, now=now) for b in loaded]
                slow_changed = _write_bundles(evaluations, now=now, force=False)
                changed += len(slow_changed)
                if update_search:
                    _index(loaded, force=False)
                found |= {b.pk for b in loaded}
                for b in loaded:
                    diff = evaluation.change_of(
                        old=before[b.pk],
                        new=(b.computed_price, b.computed_availability, b.status),
                        currency=b.currency,
                    )
                    if b.pk in slow_changed and diff:
                        changes[str(b.pk)] = diff
        missing += [i for i in chunk if i not in found]
        recomputed += len(found)
        done += len(chunk)
        _report(progress, int(done * 100 / len(ids)), f"{done}/{len(ids)} bundles")
    return {"recomputed": recomputed, "changed": changed, "missing": missing, "changes": changes}


# --- search -----------------------------------------------------------------------------------


def bundle_reindex(*, bundle_id: int) -> None:
    loaded = _load([bundle_id], lock=False)
    if not loaded:
        raise BundleNotFound([bundle_id])
    with transaction.atomic():
        _index(loaded, force=True)


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
        loaded = _load(chunk, lock=False)
        with transaction.atomic():
            count += _index(loaded, force=True)
        done += len(chunk)
        _report(progress, int(done * 100 / len(ids)), f"{done}/{len(ids)} bundles")
    if not ids:
        _report(progress, 100, "nothing to index")
    return count


# --- integrity check --------------------------------------------------------------------------


def _check_chunk(chunk: list[int], *, fix: bool, result: dict) -> None:
    if not evaluation.supported():
        _check_chunk_per_bundle(chunk, fix=fix, result=result)
        return
    # Set-based; the few bundles to fix whose shell or entry must be created are written here.
    slow = evaluation.check_batch(chunk, fix=fix, result=result)
    if slow:
        loaded = _load(slow, lock=True)
        now = timezone.now()
        to_fix = [
            e for e in (evaluate_bundle(b, now=now) for b in loaded) if e.fixable or e.status_stale
        ]
        _write_bundles(to_fix, now=now, force=False)
        _index([e.bundle for e in to_fix], force=False)


def _check_chunk_per_bundle(chunk: list[int], *, fix: bool, result: dict) -> None:
    loaded = _load(chunk, lock=fix)
    now = timezone.now()
    evaluations = [evaluate_bundle(b, now=now) for b in loaded]
    to_fix = []
    for e in evaluations:
        b = e.bundle
        needs_writing = bool(e.fixable) or e.status_stale
        if e.unfixable:
            result["broken"] += 1
        elif needs_writing:
            result["fixed" if fix else "needs_fix"] += 1
        else:
            result["ok"] += 1
        remaining = e.unfixable if fix else e.issues
        if remaining:
            result["broken_bundles"].append(
                {"id": b.pk, "name": b.name, "reasons": [i.as_dict() for i in remaining]}
            )
        if fix and needs_writing:
            to_fix.append(e)
    if to_fix:
        _write_bundles(to_fix, now=now, force=False)
        _index([e.bundle for e in to_fix], force=False)
    result["checked"] += len(loaded)


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
        "checked": 0,
        "ok": 0,
        "broken": 0,
        "fixed": 0,
        "needs_fix": 0,
        "errors": 0,
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
                _check_chunk(chunk, fix=fix, result=partial)
        except Exception:
            # Isolate the bundle(s) that fail; the rest of the chunk is still checked.
            partial = {k: ([] if isinstance(v, list) else 0) for k, v in result.items()}
            for bundle_id in chunk:
                try:
                    with transaction.atomic():
                        _check_chunk([bundle_id], fix=fix, result=partial)
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
    variant = ProductVariant.objects.select_for_update().filter(pk=variant_id).first()
    if variant is None:
        raise BundleError(f"No variant with id {variant_id}.", code="variant_not_found")
    if Bundle.objects.filter(shell_variant_id=variant.pk).exists():
        raise BundleError(
            f"Variant {variant.sku} is a bundle's shell; archive or delete the bundle instead.",
            code="shell_variant",
        )
    return variant


def variant_soft_delete(*, variant_id: int) -> list[int]:
    """Mark a variant deleted; returns the ids of the bundles that use it.

    Those bundles become broken in the background: the save's receivers enqueue the fan-out
    (their recomputes) and the broken-scope check. Nothing is recomputed in the request.
    """
    with transaction.atomic():
        variant = _locked_variant(variant_id)
        if variant.deleted_at is None:
            variant.deleted_at = timezone.now()
            # save(), not update(): the receivers must see the deletion.
            variant.save(update_fields=["deleted_at", "updated_at"])
        bundle_ids = bundle_ids_using_variants(variant_ids=[variant.pk])
    return bundle_ids


def variant_hard_delete(*, variant_id: int) -> None:
    """Delete a variant for good; refused (VariantInUseError, nothing deleted) while used."""
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
