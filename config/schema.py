"""Root GraphQL schema; each app contributes its query and mutation roots."""

import graphene

from bundles.graphql.schema import BundlesMutation, BundlesQuery
from jobs.graphql.schema import JobsMutation, JobsQuery


class Query(BundlesQuery, JobsQuery, graphene.ObjectType):
    ping = graphene.String(description="Health check.")

    def resolve_ping(root, info) -> str:
        return "pong"


class Mutation(BundlesMutation, JobsMutation, graphene.ObjectType):
    pass


schema = graphene.Schema(query=Query, mutation=Mutation)
