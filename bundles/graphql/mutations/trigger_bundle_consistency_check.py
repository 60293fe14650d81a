"""triggerBundleConsistencyCheck(scope, options) → { jobId message } (the original's name)."""

from __future__ import annotations

import graphene
from django.db import transaction

from api.errors import BadUserInput
from api.permissions import require_staff
from bundles.graphql.inputs import ConsistencyCheckOptions
from bundles.graphql.mutations.common import CHANGE_BUNDLE, TRIGGER
from bundles.requests import bundles_check_enqueue
from bundles.selectors import SCOPES

MESSAGE = "Consistency check job queued. View progress in System → Jobs."


class TriggerBundleConsistencyCheck(graphene.Mutation):
    class Arguments:
        scope = graphene.String(required=True, description="all, active or broken")
        options = ConsistencyCheckOptions()

    job_id = graphene.ID(required=True)
    message = graphene.String(required=True)

    @staticmethod
    def mutate(root, info, scope, options=None):
        user = require_staff(info, CHANGE_BUNDLE)
        if scope not in SCOPES:
            raise BadUserInput(
                f"Invalid scope {scope!r}: use one of {', '.join(SCOPES)}.",
                field="scope",
                allowed=list(SCOPES),
            )
        options = options or {}
        with transaction.atomic():
            job = bundles_check_enqueue(
                scope=scope,
                fix=bool(options.get("fix_broken_bundles")),
                notify_admins=bool(options.get("notify_admins")),
                trigger=TRIGGER,
                reason=f"Consistency check of {scope} bundles requested over GraphQL",
                requested_by=user,
            )
        return TriggerBundleConsistencyCheck(job_id=str(job.pk), message=MESSAGE)
