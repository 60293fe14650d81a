"""Root GraphQL schema; each app contributes its query and mutation roots."""

import graphene


class Query(graphene.ObjectType):
    ping = graphene.String(description="Health check.")

    def resolve_ping(root, info) -> str:
        return "pong"


schema = graphene.Schema(query=Query)
