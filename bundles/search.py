"""The search index: what an entry holds, and how it is queried on each database.

PostgreSQL: ``document`` is a weighted tsvector (title and SKU A, body B) with a GIN index
(migration 0002), queried with ``websearch`` syntax and ranked. SQLite: every word of the
term must appear in the title, body or SKU (case-insensitive LIKE).
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Protocol

from django.db import connection
from django.db.models import F, Q, QuerySet

from .models import Bundle, SearchEntry

SEARCH_CONFIG = "simple"  # component names and SKUs are not English prose; no stemming


def uses_postgres_fts() -> bool:
    return connection.vendor == "postgresql"


class EntrySource(Protocol):
    """What ``entry_values`` reads of a bundle: a ``Bundle``, or the seeder's planned one."""

    @property
    def name(self) -> str: ...
    @property
    def slug(self) -> str: ...
    @property
    def computed_price(self) -> Decimal | None: ...
    @property
    def computed_availability(self) -> int: ...
    @property
    def status(self) -> str: ...


def entry_values(bundle: EntrySource, components: Iterable, *, sku: str) -> dict:
    """The entry's fields for a bundle whose components (with variant + product) are loaded."""
    words: list[str] = [bundle.name, bundle.slug]
    for c in components:
        words += [c.variant.name, c.variant.sku, c.variant.product.name]
    return {
        "title": bundle.name,
        "sku": sku,
        "body": " ".join(dict.fromkeys(w for w in words if w)),
        "price": bundle.computed_price,
        "availability": bundle.computed_availability,
        "status": bundle.status,
    }


def refresh_documents(bundle_ids: Iterable[int]) -> None:
    """Rebuild the tsvector of these entries in one UPDATE (PostgreSQL only)."""
    if not uses_postgres_fts():
        return
    from django.contrib.postgres.search import SearchVector

    document = (
        SearchVector("title", weight="A", config=SEARCH_CONFIG)
        + SearchVector("sku", weight="A", config=SEARCH_CONFIG)
        + SearchVector("body", weight="B", config=SEARCH_CONFIG)
    )
    SearchEntry.objects.filter(bundle_id__in=list(bundle_ids)).update(document=document)


def search_queryset(term: str) -> QuerySet[SearchEntry]:
    """Active entries matching ``term``, best first. Empty term → nothing."""
    term = term.strip()
    base = SearchEntry.objects.filter(status=Bundle.Status.ACTIVE).select_related("bundle")
    if not term:
        return base.none()
    if uses_postgres_fts():
        from django.contrib.postgres.search import SearchQuery, SearchRank

        query = SearchQuery(term, search_type="websearch", config=SEARCH_CONFIG)
        return (
            base.filter(Q(document=query) | Q(sku__iexact=term))
            # F(): rank the stored weighted vector, not a re-parse of its text.
            .annotate(rank=SearchRank(F("document"), query))
            .order_by("-rank", "title", "pk")
        )
    matches = base
    for word in term.split():
        matches = matches.filter(
            Q(title__icontains=word) | Q(body__icontains=word) | Q(sku__icontains=word)
        )
    return matches.order_by("title", "pk")
