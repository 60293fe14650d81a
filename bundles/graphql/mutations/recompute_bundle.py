"""recomputeBundle(bundleId, options) → { jobId message } (the original's name)."""

from __future__ import annotations

import graphene
from django.db import transaction
from django.utils import timezone

from api.errors import NotFound
from api.graphql_utils import MAX_DB_ID, parse_int_id
from api.permissions import require_staff
from bundles.graphql.inputs import RecomputeOptions
from bundles.graphql.mutations.common import CHANGE_BUNDLE, TRIGGER, clean_reason
from bundles.requests import bundle_recompute_request


class RecomputeBundle(graphene.Mutation):
    class Arguments:
        bundle_id = graphene.ID(required=True)
        options = RecomputeOptions()

    job_id = graphene.ID(required=True)
    message = graphene.String(required=True)

    @staticmethod
    def mutate(root, info, bundle_id, options=None):
        user = require_staff(info, CHANGE_BUNDLE)
        options = options or {}
        pk = parse_int_id(bundle_id, field="bundleId")
        if not 1 <= pk <= MAX_DB_ID:
            raise NotFound(f"No bundle with id {pk}.", ids=[pk])
        reason = clean_reason(options.get("reason"), default="Manual recompute over GraphQL")
        asked_at = timezone.now()
        with transaction.atomic():
            job = bundle_recompute_request(
                bundle_id=pk,
                trigger=TRIGGER,
                reason=reason,
                force=bool(options.get("force_recalculation")),
                update_search=options.get("update_search") is not False,
                requested_by=user,
            )  # unknown id → BundleNotFound → NOT_FOUND
        if job.created_at < asked_at:
            message = (
                "Recompute merged into the bundle's pending recompute job. "
                "View progress in System → Jobs."
            )
        else:
            message = "Recompute job queued. View progress in System → Jobs."
        return RecomputeBundle(job_id=str(job.pk), message=message)
