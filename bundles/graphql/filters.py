"""Bundle reads for the GraphQL queries: filters, keyset pages, prefetching."""

from __future__ import annotations

from django.db.models import Prefetch, Q, QuerySet

from api.errors import BadUserInput
from api.graphql_utils import MAX_DB_ID, clean_text, decode_cursor, encode_cursor, parse_int_id
from bundles.models import Bundle, BundleComponent


def filtered_bundles(*, status: str | None = None, search: str | None = None) -> QuerySet[Bundle]:
    qs = Bundle.objects.all()
    if status is not None:
        if status not in Bundle.Status.values:
            raise BadUserInput(
                f"Unknown status {status!r}: use one of {', '.join(Bundle.Status.values)}.",
                field="status",
            )
        qs = qs.filter(status=status)
    term = clean_text(search, field="search", max_length=200)
    if term:
        # Name or slug, or the SKU of the bundle's shell or of one of its components.
        qs = qs.filter(
            Q(name__icontains=term)
            | Q(slug__icontains=term)
            | Q(shell_variant__sku__iexact=term)
            | Q(pk__in=BundleComponent.objects.filter(variant__sku__iexact=term).values("bundle"))
        )
    return qs


def with_relations(qs: QuerySet[Bundle], fields: set[str]) -> QuerySet[Bundle]:
    qs = qs.select_related("shell_variant")
    if "components" in fields:
        qs = qs.prefetch_related(
            Prefetch(
                "components",
                queryset=BundleComponent.objects.select_related("variant__product").order_by("pk"),
            )
        )
    return qs


def bundle_page(qs: QuerySet[Bundle], *, first: int, after: str | None):
    """By name then id, keyset-paginated on (name, id)."""
    qs = qs.order_by("name", "pk")
    if after:
        name, pk = decode_cursor(after, size=2)
        pk_value = parse_int_id(pk, field="after")
        if not 0 <= pk_value <= MAX_DB_ID:
            raise BadUserInput("'after' is not a cursor from this API.", field="after")
        qs = qs.filter(Q(name__gt=name) | Q(name=name, pk__gt=pk_value))
    rows = list(qs[: first + 1])
    return rows[:first], len(rows) > first


def bundle_cursor(bundle: Bundle) -> str:
    return encode_cursor([bundle.name, bundle.pk])
