"""Reads that the admin, GraphQL and job handlers go through."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from django.db.models import Q

from jobs.models import Job
from jobs.parents import ordered_children

from .engine import bundle_issues
from .errors import BundleNotFound, InvalidScope
from .integrity import Issue
from .kinds import Kind
from .models import Bundle, BundleComponent, SearchEntry
from .search import search_queryset

SCOPES = ("all", "active", "broken")


def bundle_ids_for_scope(*, scope: str | Sequence[int]) -> list[int]:
    """Ids of the bundles a scope names, ascending.

    A string must be one of SCOPES; a sequence is a list of ids that must all exist
    (``BundleNotFound`` names the missing ones).
    """
    if isinstance(scope, str):
        if scope not in SCOPES:
            raise InvalidScope(scope)
        qs = Bundle.objects.all()
        if scope != "all":
            qs = qs.filter(status=scope)
        return list(qs.order_by("pk").values_list("pk", flat=True))
    try:
        wanted = sorted({int(i) for i in scope})
    except (TypeError, ValueError) as exc:
        raise InvalidScope(scope) from exc
    return existing_bundle_ids(wanted)


# A list of ids spread over at most this many times its length is checked by one range read.
RANGE_READ_FACTOR = 4


def bundle_ids_split(bundle_ids: Iterable[int]) -> tuple[list[int], list[int]]:
    """(ids that exist, ids that don't), each de-duplicated in the given order: the one
    existence check of bundle ids (doors refuse unknown ones, handlers skip vanished ones)."""
    wanted = list(dict.fromkeys(int(i) for i in bundle_ids))
    found: set[int] = set()
    low, high = (min(wanted), max(wanted)) if wanted else (0, 0)
    if len(wanted) > 500 and high - low < RANGE_READ_FACTOR * len(wanted):
        # A dense list (a catalog-wide selection): one read of the ids in its range, at most
        # RANGE_READ_FACTOR x as many as asked, instead of a query per 500.
        found.update(Bundle.objects.filter(pk__range=(low, high)).values_list("pk", flat=True))
    else:
        # Chunked so a long id list stays under the database's parameter limit.
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            found.update(Bundle.objects.filter(pk__in=chunk).values_list("pk", flat=True))
    return [i for i in wanted if i in found], [i for i in wanted if i not in found]


def existing_bundle_ids(bundle_ids: Iterable[int]) -> list[int]:
    """The ids, de-duplicated in order; raises BundleNotFound naming every unknown one."""
    found, missing = bundle_ids_split(bundle_ids)
    if missing:
        raise BundleNotFound(missing)
    return found


def validate_bundle_integrity(bundle: Bundle | int, *, now: datetime | None = None) -> list[Issue]:
    """Every integrity issue of one bundle (a bundle or its id), as the engine evaluates it
    for a check: typed issues with code, message and whether a fix can repair them. Reads
    only (2–3 queries); raises BundleNotFound for an unknown id."""
    bundle_id = bundle.pk if isinstance(bundle, Bundle) else int(bundle)
    issues = bundle_issues(bundle_id, now=now)
    if issues is None:
        raise BundleNotFound([bundle_id])
    return issues


def bundle_ids_using_variants(*, variant_ids: Iterable[int]) -> list[int]:
    ids = list({int(v) for v in variant_ids})
    if not ids:
        return []
    return list(
        BundleComponent.objects.filter(variant_id__in=ids)
        .order_by("bundle_id")
        .values_list("bundle_id", flat=True)
        .distinct()
    )


def bundle_ids_using_products(*, product_ids: Iterable[int]) -> list[int]:
    """Bundles with a component that is a variant of one of these products."""
    ids = list({int(p) for p in product_ids})
    if not ids:
        return []
    return list(
        BundleComponent.objects.filter(variant__product_id__in=ids)
        .order_by("bundle_id")
        .values_list("bundle_id", flat=True)
        .distinct()
    )


def bundles_using_variant(*, variant_id: int) -> list[Bundle]:
    return list(Bundle.objects.filter(components__variant_id=variant_id).order_by("name", "pk"))


def bundle_search(*, term: str, limit: int = 50) -> list[SearchEntry]:
    """Search entries of active bundles matching ``term`` (name, component names, SKUs)."""
    return list(search_queryset(term)[: max(0, limit)])


def bulk_batch_jobs(*, parent: Job) -> list[Job]:
    """The batch jobs of a bulk job, in batch order (batch 1 first)."""
    return list(ordered_children(parent.pk).filter(kind=Kind.BULK_BATCH))


def bulk_batch_job_ids(*, parent: Job) -> list:
    """The ids of a bulk job's batch jobs, in batch order (no payloads read)."""
    return list(
        ordered_children(parent.pk).filter(kind=Kind.BULK_BATCH).values_list("pk", flat=True)
    )


def bundle_ids_matching(term: str, *, limit: int = 200) -> list[int]:
    """Ids of bundles whose name or SKU (shell or component) matches ``term`` (the jobs
    search box finds their jobs through this)."""
    return list(
        Bundle.objects.filter(
            Q(name__icontains=term)
            | Q(shell_variant__sku__iexact=term)
            | Q(components__variant__sku__iexact=term)
        )
        .order_by()
        .values_list("pk", flat=True)
        .distinct()[:limit]
    )
