"""What the jobs app learns from the bundles: target types, and the request functions that
schedules (``JOBS_SCHEDULES``) may name, each with its permission and its argument check.

Imported by ``BundlesConfig.ready()``. Each request declares the permission its work needs (a
schedule's editor must hold it too) and checks a schedule's arguments when it is saved, so a
typo is a form error, not a failed night.
"""

from __future__ import annotations

from bundles.errors import InvalidJobOptions, InvalidScope
from bundles.kinds import Kind
from bundles.models import Bundle, ProductVariant
from bundles.requests import bundles_check_enqueue, bundles_reindex_enqueue, maintenance_enqueue
from bundles.selectors import SCOPES, bundle_ids_matching
from jobs.maintenance.prune import check_retention
from jobs.request_functions import register_request
from jobs.target_types import register_target

CHANGE_BUNDLE = "bundles.change_bundle"


def _whole_ids(value: object) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(i, int) and not isinstance(i, bool) for i in value)
    )


def _check_flags(kwargs: dict, *names: str) -> None:
    for name in names:
        if not isinstance(kwargs.get(name, False), bool):
            raise InvalidJobOptions(f"{name} is true or false.", field=name)


def check_arguments(kwargs: dict) -> None:
    """``bundles.check``: scope is all / active / broken or a non-empty list of bundle ids."""
    scope = kwargs.get("scope")
    if not (isinstance(scope, str) and scope in SCOPES) and not _whole_ids(scope):
        raise InvalidScope(scope)
    _check_flags(kwargs, "fix", "notify_admins")


def maintenance_arguments(kwargs: dict) -> None:
    """``bundles.maintenance``: retention_days, when given, is at least the floor."""
    if kwargs.get("retention_days") is not None:
        check_retention(kwargs["retention_days"])
    _check_flags(kwargs, "notify_admins")


def reindex_arguments(kwargs: dict) -> None:
    """``bundles.reindex``: bundle_ids is null (all) or a non-empty list of ids."""
    ids = kwargs.get("bundle_ids")
    if ids is not None and not _whole_ids(ids):
        raise InvalidJobOptions("bundle_ids is null (all) or a list of bundle ids.")


def bundle_labels(ids: list[str]) -> dict[str, str]:
    """ "Name (SKU)" of each bundle, for the jobs pages' linked targets. One query."""
    rows = Bundle.objects.filter(pk__in=[i for i in ids if i.isdigit()]).values_list(
        "pk", "name", "shell_variant__sku"
    )
    return {str(pk): f"{name} ({sku})" if sku else name for pk, name, sku in rows}


register_target(
    "bundle",
    label="Bundle",
    admin_url="admin:bundles_bundle_change",
    search=bundle_ids_matching,
    filter_argument="bundle_id",
    describe=bundle_labels,
)


def variant_labels(ids: list[str]) -> dict[str, str]:
    """ "SKU" of each variant (what the catalog calls it), for the jobs pages. One query."""
    rows = ProductVariant.objects.filter(pk__in=[i for i in ids if i.isdigit()])
    return {str(pk): sku for pk, sku in rows.values_list("pk", "sku")}


register_target(
    "variant",
    label="Variant",
    admin_url="admin:bundles_productvariant_change",
    describe=variant_labels,
)
register_target("product", label="Product", admin_url="admin:bundles_product_change")
register_target("scope", label="Scope", numeric_ids=False)

register_request(
    "bundles.check",
    bundles_check_enqueue,
    permission=CHANGE_BUNDLE,  # with fix, it changes bundles
    validate=check_arguments,
    queue="bundle-consistency-check",
    kind=Kind.CONSISTENCY_CHECK,
)
register_request(
    "bundles.maintenance",
    maintenance_enqueue,
    permission=(CHANGE_BUNDLE, "jobs.delete_job"),  # fixes bundles, purges the ledger
    validate=maintenance_arguments,
    queue="bundle-consistency-check",
    kind=Kind.MAINTENANCE,
)
register_request(
    "bundles.reindex",
    bundles_reindex_enqueue,
    permission=CHANGE_BUNDLE,
    validate=reindex_arguments,
    queue="bundle-reindex",
    kind=Kind.REINDEX,
)
