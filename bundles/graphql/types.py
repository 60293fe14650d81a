"""GraphQL types of the catalog: bundles with their components and computed values."""

from __future__ import annotations

import graphene

from api.graphql_utils import PageInfo


class BrokenReason(graphene.ObjectType):
    code = graphene.String(required=True)
    message = graphene.String(required=True)
    fixable = graphene.Boolean(required=True)

    @staticmethod
    def resolve_code(entry: dict, info) -> str:
        return str(entry.get("code", ""))

    @staticmethod
    def resolve_message(entry: dict, info) -> str:
        return str(entry.get("message", ""))

    @staticmethod
    def resolve_fixable(entry: dict, info) -> bool:
        return bool(entry.get("fixable"))


class Variant(graphene.ObjectType):
    id = graphene.ID(required=True)
    sku = graphene.String(required=True)
    name = graphene.String(required=True)
    product_name = graphene.String(required=True)
    price = graphene.Decimal(required=True)
    currency = graphene.String(required=True)
    stock_on_hand = graphene.Int(required=True)
    allocated = graphene.Int(required=True)
    enabled = graphene.Boolean(required=True)
    deleted_at = graphene.DateTime()

    @staticmethod
    def resolve_product_name(variant, info) -> str:
        return variant.product.name


class BundleComponent(graphene.ObjectType):
    id = graphene.ID(required=True)
    quantity = graphene.Int(required=True)
    variant = graphene.Field(Variant, required=True)


class Bundle(graphene.ObjectType):
    """A bundle with its computed price and availability (kept right by jobs)."""

    id = graphene.ID(required=True)
    name = graphene.String(required=True)
    slug = graphene.String(required=True)
    status = graphene.String(required=True, description="draft, active, broken or archived")
    status_before_broken = graphene.String(required=True)
    pricing_rule = graphene.String(required=True)
    rule_value = graphene.Decimal(required=True)
    currency = graphene.String(required=True)
    availability_cap = graphene.Int()
    valid_from = graphene.DateTime()
    valid_to = graphene.DateTime()
    computed_price = graphene.Decimal()
    computed_availability = graphene.Int(required=True)
    no_saving = graphene.Boolean(required=True)
    broken_reasons = graphene.List(graphene.NonNull(BrokenReason), required=True)
    last_recomputed_at = graphene.DateTime()
    created_at = graphene.DateTime(required=True)
    updated_at = graphene.DateTime(required=True)
    shell_sku = graphene.String(description="SKU of the variant that stands for the bundle")
    components = graphene.List(graphene.NonNull(BundleComponent), required=True)

    @staticmethod
    def resolve_broken_reasons(bundle, info) -> list[dict]:
        return [r for r in (bundle.broken_reasons or []) if isinstance(r, dict)]

    @staticmethod
    def resolve_shell_sku(bundle, info) -> str | None:
        return bundle.shell_variant.sku if bundle.shell_variant_id else None

    @staticmethod
    def resolve_components(bundle, info):
        # Prefetched with variant and product by the resolvers that load bundles.
        return bundle.components.all()


class BundleEdge(graphene.ObjectType):
    cursor = graphene.String(required=True)
    node = graphene.Field(Bundle, required=True)


class BundleConnection(graphene.ObjectType):
    edges = graphene.List(graphene.NonNull(BundleEdge), required=True)
    page_info = graphene.Field(PageInfo, required=True)
    total_count = graphene.Int(required=True, description="Bundles matching the filters")
