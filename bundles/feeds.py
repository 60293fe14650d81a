"""Feeds: imports that change variants with ``QuerySet.update()`` / ``bulk_update()`` (which
send no signals) tell the bundles here, and get the same coalesced recomputes a save gets.

    ProductVariant.objects.filter(sku__in=skus).update(stock_on_hand=0)
    feeds.variants_changed_feed(variant_ids=ids, reason="supplier stock feed")

``manage.py variants_changed --ids … | --file …`` is the command-line door.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from bundles import fanout
from bundles.errors import InvalidJobOptions, VariantNotFound
from bundles.models import ProductVariant
from jobs.models import Job

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

# One feed call names at most this many variants (a request must stay a reasonable row).
MAX_FEED_VARIANTS = 100_000


def variant_ids_checked(variant_ids: Iterable) -> list[int]:
    """The ids as whole numbers, de-duplicated and sorted; every unknown one → VariantNotFound.

    One query per 10,000 ids. Raises ``InvalidJobOptions`` for no ids, too many, or an id
    that is not a positive whole number; nothing is written then.
    """
    ids: list[int] = []
    for value in variant_ids:
        if isinstance(value, bool) or not str(value).strip().isdigit() or int(value) < 1:
            raise InvalidJobOptions(
                f"{value!r} is not a variant id (a positive whole number).", field="variantIds"
            )
        ids.append(int(value))
    ids = sorted(set(ids))
    if not ids:
        raise InvalidJobOptions("No variant ids given.", field="variantIds")
    if len(ids) > MAX_FEED_VARIANTS:
        raise InvalidJobOptions(
            f"At most {MAX_FEED_VARIANTS} variants per feed call, got {len(ids)}.",
            field="variantIds",
        )
    found: set[int] = set()
    for start in range(0, len(ids), 10_000):
        chunk = ids[start : start + 10_000]
        found |= set(ProductVariant.objects.filter(pk__in=chunk).values_list("pk", flat=True))
    missing = [i for i in ids if i not in found]
    if missing:
        raise VariantNotFound(missing)
    return ids


def variants_changed_feed(
    *,
    variant_ids: Sequence,
    reason: str = "",
    trigger: str = "command",
    requested_by: AbstractBaseUser | None = None,
    dispatch_on_commit: bool = True,
) -> list[Job]:
    """Schedule the recomputes of every bundle using these variants (fan-out jobs that fill
    coalesced recompute batches; several for a feed bigger than one fan-out holds). Validates
    first: bad or unknown ids create no job. Returns every fan-out, in order."""
    ids = variant_ids_checked(variant_ids)
    return fanout.variants_changed(
        variant_ids=ids,
        trigger=trigger,
        reason=reason or f"Feed changed {len(ids)} variant{'s' if len(ids) != 1 else ''}",
        requested_by=requested_by,
        dispatch_on_commit=dispatch_on_commit,
    )
