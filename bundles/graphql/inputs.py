"""Input types of the bundle mutations, named as in the original design."""

from __future__ import annotations

import graphene


class ConsistencyCheckOptions(graphene.InputObjectType):
    fix_broken_bundles = graphene.Boolean(
        default_value=False, description="Fix what can be fixed automatically"
    )
    notify_admins = graphene.Boolean(
        default_value=False, description="Mail the site admins when problems are found"
    )


class RecomputeOptions(graphene.InputObjectType):
    reason = graphene.String(description="Why (shown on the job), up to 255 characters")
    force_recalculation = graphene.Boolean(default_value=False)
    update_search = graphene.Boolean(default_value=True)
