"""Receivers that turn catalog changes into jobs.

Each receiver only answers "did something that bundles depend on change?" and, if so, asks
for a job through ``bundles.fanout`` (variants, products) or ``bundles.requests`` (bundles,
components). The work itself (finding the bundles that use a variant, pricing them, indexing)
happens in the jobs, never in the request that saved.

They are for saves made by others (admin change forms, scripts). A bundles service that
changes what bundles depend on asks for its own jobs and writes with ``update()``, which sends
no signal (``services.variant_soft_delete``), so nothing is asked for twice.

Changes are detected without queries: ``post_init`` remembers the tracked values an instance
was loaded with (``bundles.change_tracking``), ``post_save`` compares. Fixture loads
(``raw``) are skipped.
"""

from __future__ import annotations

from django.db import transaction
from django.db.models import QuerySet
from django.db.models.signals import post_delete, post_init, post_save

from bundles import change_tracking, fanout, requests
from bundles.models import Bundle, BundleComponent, Product, ProductVariant
from jobs.actor import current_user, note_queued

TRIGGER = "signal"

# What a bundle's price, availability or integrity depends on.
VARIANT_PRICING_FIELDS = change_tracking.tracked_fields(
    ProductVariant, ("price", "currency", "stock_on_hand", "allocated", "enabled", "deleted_at")
)
# What the search entries of the bundles using a variant show of it: a reindex is enough.
VARIANT_SEARCH_FIELDS = change_tracking.tracked_fields(ProductVariant, ("name", "sku"))
VARIANT_FIELDS = VARIANT_PRICING_FIELDS + VARIANT_SEARCH_FIELDS
_VARIANT_PRICING_NAMES = frozenset(f.attname for f in VARIANT_PRICING_FIELDS)
PRODUCT_FIELDS = change_tracking.tracked_fields(Product, ("name",))
# What a bundle's recompute depends on: its pricing, and its status, which the recompute turns
# into the shell's enabled flag and the search entry's status (only active bundles are found),
# so a status set from a shell or a script takes effect too.
BUNDLE_RECOMPUTE_FIELDS = change_tracking.tracked_fields(
    Bundle,
    (
        "pricing_rule",
        "rule_value",
        "currency",
        "availability_cap",
        "valid_from",
        "valid_to",
        "status",
    ),
)
# What the search entry shows besides the computed values: a reindex is enough.
BUNDLE_SEARCH_FIELDS = change_tracking.tracked_fields(Bundle, ("name", "slug"))
BUNDLE_FIELDS = BUNDLE_RECOMPUTE_FIELDS + BUNDLE_SEARCH_FIELDS
COMPONENT_FIELDS = change_tracking.tracked_fields(
    BundleComponent, ("bundle", "variant", "quantity")
)


def _noted(request_function):
    """Call a request function as the saving user (if any), noting the job it returns, so the
    admin's save message can link to it (jobs.actor)."""

    def call(**kwargs):
        kwargs.setdefault("requested_by", current_user())
        made = request_function(**kwargs)
        for job in made if isinstance(made, list) else [made]:
            note_queued(job)
        return made

    return call


def _remember(fields):
    def receiver(sender, instance, **kwargs) -> None:
        if instance.pk is not None:
            change_tracking.take_snapshot(instance, fields)

    return receiver


_variant_loaded = _remember(VARIANT_FIELDS)
_product_loaded = _remember(PRODUCT_FIELDS)
_bundle_loaded = _remember(BUNDLE_FIELDS)
_component_loaded = _remember(COMPONENT_FIELDS)


def _changes(instance, fields, created: bool, update_fields) -> dict:
    """What this save changed, and re-arm the snapshot once the save is committed."""
    changes = (
        {}
        if created
        else change_tracking.changed_fields(instance, fields, update_fields=update_fields)
    )
    if created or changes:
        # The values this save wrote, remembered once it commits: a rolled-back save still
        # counts as a change when the instance is saved again. In autocommit: at once.
        saved = change_tracking.current_values(instance, fields)
        transaction.on_commit(lambda: change_tracking.store_snapshot(instance, saved))
    return changes


def _is_bundle_shell(variant: ProductVariant) -> bool:
    """True for a bundle's own shell variant, whose price the recompute service writes."""
    if ProductVariant.product.is_cached(variant):
        return variant.product.is_bundle_shell
    shell_of = ProductVariant.shell_of_bundle
    if shell_of.is_cached(variant):
        return shell_of.related.get_cached_value(variant) is not None
    return Bundle.objects.filter(shell_variant_id=variant.pk).exists()


def _variant_saved(sender, instance: ProductVariant, created: bool, raw: bool, **kwargs) -> None:
    if raw:
        return
    changes = _changes(instance, VARIANT_FIELDS, created, kwargs.get("update_fields"))
    # A new variant belongs to no bundle yet; a bundle adding it fires the component signal.
    if created or not changes:
        return
    # The recompute service syncs shell variants; fanning out from them would loop.
    if _is_bundle_shell(instance):
        return
    fields = ", ".join(sorted(changes))
    # Only name/SKU changed: the bundles' prices stand, their search entries need a reindex.
    reindex_only = not _VARIANT_PRICING_NAMES.intersection(changes)
    _noted(fanout.variants_changed)(
        variant_ids=[instance.pk],
        trigger=TRIGGER,
        reason=f"Variant {instance.sku} {'renamed' if reindex_only else 'changed'}: {fields}",
        label=instance.sku,
        reindex_only=reindex_only,
    )
    became_unsafe = ("enabled" in changes and not instance.enabled) or (
        "deleted_at" in changes and instance.deleted_at is not None
    )
    if became_unsafe and BundleComponent.objects.filter(variant_id=instance.pk).exists():
        what = "deleted" if instance.deleted_at is not None else "disabled"
        _noted(requests.broken_check_enqueue)(
            trigger=TRIGGER, reason=f"Component variant {instance.sku} {what}"
        )


def _product_saved(sender, instance: Product, created: bool, raw: bool, **kwargs) -> None:
    if raw:
        return
    changes = _changes(instance, PRODUCT_FIELDS, created, kwargs.get("update_fields"))
    # A new product has no variants in bundles yet; a shell product's name is the bundle's
    # (the recompute writes it), and search shows the bundle's own name.
    if created or not changes or instance.is_bundle_shell:
        return
    _noted(fanout.products_renamed)(
        product_ids=[instance.pk],
        trigger=TRIGGER,
        reason=f"Product {instance.name} renamed",
        label=instance.name,
    )


def _bundle_saved(sender, instance: Bundle, created: bool, raw: bool, **kwargs) -> None:
    # A new bundle is priced by bundle_create; one made in the admin gets its recompute when
    # its first component is added.
    if raw or created:
        _changes(instance, BUNDLE_FIELDS, created, None)
        return
    changes = _changes(instance, BUNDLE_FIELDS, created, kwargs.get("update_fields"))
    if not changes:
        return
    recompute = sorted(f for f in changes if f in {f.attname for f in BUNDLE_RECOMPUTE_FIELDS})
    if recompute:
        # The recompute also reindexes (update_search), so it covers name changes too.
        _noted(requests.bundle_recompute_enqueue)(
            bundle_id=instance.pk,
            trigger=TRIGGER,
            reason=f"Bundle changed: {', '.join(recompute)}",
            label=instance.name,
        )
    else:
        _noted(requests.bundle_reindex_enqueue)(
            bundle_id=instance.pk,
            trigger=TRIGGER,
            reason=f"Bundle {', '.join(sorted(changes))} changed",
            label=instance.name,
        )


def _component_label(component: BundleComponent) -> str | None:
    if BundleComponent.bundle.is_cached(component):
        return component.bundle.name
    return None


def _component_saved(sender, instance: BundleComponent, created: bool, raw: bool, **kwargs):
    if raw:
        _changes(instance, COMPONENT_FIELDS, True, None)
        return
    changes = _changes(instance, COMPONENT_FIELDS, created, kwargs.get("update_fields"))
    if not created and not changes:
        return
    what = "added" if created else f"changed ({', '.join(sorted(changes))})"
    _noted(requests.bundle_recompute_enqueue)(
        bundle_id=instance.bundle_id,
        trigger=TRIGGER,
        reason=f"Component {what}",
        label=_component_label(instance),
    )
    old_bundle_id = changes.get("bundle_id", (None, None))[0]
    if old_bundle_id and old_bundle_id != instance.bundle_id:
        _noted(requests.bundle_recompute_enqueue)(
            bundle_id=old_bundle_id, trigger=TRIGGER, reason="Component moved to another bundle"
        )


def _deleting_whole_bundle(origin) -> bool:
    if isinstance(origin, Bundle):
        return True
    return isinstance(origin, QuerySet) and issubclass(origin.model, Bundle)


def _component_deleted(sender, instance: BundleComponent, origin=None, **kwargs) -> None:
    # Components deleted because their bundle is being deleted need no recompute.
    if _deleting_whole_bundle(origin):
        return
    _noted(requests.bundle_recompute_enqueue)(
        bundle_id=instance.bundle_id,
        trigger=TRIGGER,
        reason="Component removed",
        label=_component_label(instance),
    )


_RECEIVERS = (
    (post_init, _variant_loaded, ProductVariant, "bundles.variant_loaded"),
    (post_init, _product_loaded, Product, "bundles.product_loaded"),
    (post_init, _bundle_loaded, Bundle, "bundles.bundle_loaded"),
    (post_init, _component_loaded, BundleComponent, "bundles.component_loaded"),
    (post_save, _variant_saved, ProductVariant, "bundles.variant_saved"),
    (post_save, _product_saved, Product, "bundles.product_saved"),
    (post_save, _bundle_saved, Bundle, "bundles.bundle_saved"),
    (post_save, _component_saved, BundleComponent, "bundles.component_saved"),
    (post_delete, _component_deleted, BundleComponent, "bundles.component_deleted"),
)


def connect() -> None:
    """Connect the receivers (with dispatch_uid); called from BundlesConfig.ready()."""
    for signal, receiver, sender, uid in _RECEIVERS:
        signal.connect(receiver, sender=sender, dispatch_uid=uid, weak=False)


def disconnect() -> None:
    """Undo ``connect()`` (for benchmarks comparing a save with and without receivers)."""
    for signal, _receiver, sender, uid in _RECEIVERS:
        signal.disconnect(sender=sender, dispatch_uid=uid)
