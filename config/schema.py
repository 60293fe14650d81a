"""Root GraphQL schema; each app contributes its query and mutation roots."""

import graphene

from api.permissions import require_staff
from bundles.graphql.schema import BundlesMutation, BundlesQuery
from jobs.graphql.schema import JobsMutation, JobsQuery


class Query(BundlesQuery, JobsQuery, graphene.ObjectType):
    ping = graphene.String(description="Health check for staff users and their API tokens.")

    def resolve_ping(root, info) -> str:
        require_staff(info)  # like every field: anonymous callers learn nothing
        return "pong"


class Mutation(BundlesMutation, JobsMutation, graphene.ObjectType):
    pass


schema = graphene.Schema(query=Query, mutation=Mutation)
