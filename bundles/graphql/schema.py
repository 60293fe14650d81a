"""The catalog's GraphQL roots: bundle queries (``bundles.view_bundle``) and the bundle job
mutations (``bundles.change_bundle``, as the admin's actions)."""

from __future__ import annotations

import graphene

from api.errors import BadUserInput, NotFound
from api.graphql_utils import (
    MAX_DB_ID,
    build_connection,
    check_page_size,
    clean_text,
    parse_int_id,
    selected_fields,
)
from api.permissions import require_staff
from bundles.graphql import filters
from bundles.graphql.mutations.bulk_recompute_bundles import BulkRecomputeBundles
from bundles.graphql.mutations.recompute_bundle import RecomputeBundle
from bundles.graphql.mutations.reindex_bundles import ReindexBundles
from bundles.graphql.mutations.trigger_bundle_consistency_check import (
    TriggerBundleConsistencyCheck,
)
from bundles.graphql.types import Bundle, BundleConnection, BundleEdge
from bundles.models import Bundle as BundleModel
from bundles.selectors import bundle_search

VIEW_BUNDLE = "bundles.view_bundle"
MAX_SEARCH_RESULTS = 100


class BundlesQuery(graphene.ObjectType):
    bundle = graphene.Field(Bundle, id=graphene.ID(required=True))
    bundles = graphene.Field(
        BundleConnection,
        required=True,
        status=graphene.String(description="draft, active, broken or archived"),
        search=graphene.String(description="Name, slug, or a shell or component SKU"),
        first=graphene.Int(description="Page size, 1-100 (default 20)"),
        after=graphene.String(description="endCursor of the previous page"),
    )
    search_bundles = graphene.List(
        graphene.NonNull(Bundle),
        required=True,
        term=graphene.String(required=True),
        first=graphene.Int(default_value=50, description=f"1-{MAX_SEARCH_RESULTS}"),
        description="Active bundles found by the search index, best match first",
    )

    @staticmethod
    def resolve_bundle(root, info, id):
        require_staff(info, VIEW_BUNDLE)
        pk = parse_int_id(id, field="id")
        bundle = None
        if 1 <= pk <= MAX_DB_ID:
            qs = filters.with_relations(BundleModel.objects.filter(pk=pk), selected_fields(info))
            bundle = qs.first()
        if bundle is None:
            raise NotFound(f"No bundle with id {pk}.", ids=[pk])
        return bundle

    @staticmethod
    def resolve_bundles(root, info, first=None, after=None, **filter_args):
        require_staff(info, VIEW_BUNDLE)
        check_page_size(first)  # before the filters: the same error order as ever
        return build_connection(
            info,
            filters.filtered_bundles(**filter_args),
            first=first,
            after=after,
            with_relations=filters.with_relations,
            page=filters.bundle_page,
            cursor=filters.bundle_cursor,
            connection=BundleConnection,
            edge=BundleEdge,
        )

    @staticmethod
    def resolve_search_bundles(root, info, term, first=50):
        require_staff(info, VIEW_BUNDLE)
        if first is None or not 1 <= first <= MAX_SEARCH_RESULTS:
            raise BadUserInput(
                f"'first' must be between 1 and {MAX_SEARCH_RESULTS}.", field="first"
            )
        term = clean_text(term, field="term", max_length=200)
        hits = bundle_search(term=term, limit=first)
        order = [hit.bundle_id for hit in hits]
        qs = BundleModel.objects.filter(pk__in=order)
        by_id = {b.pk: b for b in filters.with_relations(qs, selected_fields(info))}
        return [by_id[pk] for pk in order if pk in by_id]


class BundlesMutation(graphene.ObjectType):
    trigger_bundle_consistency_check = TriggerBundleConsistencyCheck.Field()
    recompute_bundle = RecomputeBundle.Field()
    bulk_recompute_bundles = BulkRecomputeBundles.Field()
    reindex_bundles = ReindexBundles.Field()
