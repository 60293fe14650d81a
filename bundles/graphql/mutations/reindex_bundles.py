"""reindexBundles(bundleIds, reason) → { jobId message }; no ids = every bundle."""

from __future__ import annotations

import graphene
from django.db import transaction
from django.utils.translation import ngettext

from api.graphql_utils import parse_int_ids
from api.permissions import require_staff
from bundles.graphql.mutations.common import CHANGE_BUNDLE, TRIGGER, clean_reason
from bundles.requests import bundles_reindex_enqueue


class ReindexBundles(graphene.Mutation):
    class Arguments:
        bundle_ids = graphene.List(
            graphene.NonNull(graphene.ID), description="Bundles to reindex; omit for all"
        )
        reason = graphene.String()

    job_id = graphene.ID(required=True)
    message = graphene.String(required=True)

    @staticmethod
    def mutate(root, info, bundle_ids=None, reason=None):
        user = require_staff(info, CHANGE_BUNDLE)
        ids = None if bundle_ids is None else parse_int_ids(bundle_ids, field="bundleIds")
        why = clean_reason(reason, default="Reindex requested over GraphQL")
        with transaction.atomic():
            job = bundles_reindex_enqueue(
                bundle_ids=ids, trigger=TRIGGER, reason=why, requested_by=user
            )  # unknown ids → NOT_FOUND
        count = 0 if ids is None else len(set(ids))
        what = "all bundles" if ids is None else f"{count} " + ngettext("bundle", "bundles", count)
        return ReindexBundles(
            job_id=str(job.pk),
            message=f"Reindex of {what} queued. View progress in System → Jobs.",
        )
