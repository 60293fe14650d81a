"""bulkRecomputeBundles(bundleIds, batchSize) → { jobIds totalBundles batchCount message }.

One bulk job is queued with one child job per batch (visible under it in System → Jobs).
``jobIds`` holds the children's ids in batch order (as many as ``batchCount``); ``bulkJobId``
is the parent's, whose progress and result cover the whole operation.
"""

from __future__ import annotations

import graphene
from django.db import transaction
from django.utils.translation import ngettext

from api.graphql_utils import parse_int_ids
from api.permissions import require_staff
from bundles.bulk import batch_size_checked, bulk_batch_size, bundles_bulk_enqueue
from bundles.graphql.mutations.common import CHANGE_BUNDLE, TRIGGER
from bundles.selectors import bulk_batch_job_ids


class BulkRecomputeBundles(graphene.Mutation):
    class Arguments:
        bundle_ids = graphene.List(graphene.NonNull(graphene.ID), required=True)
        batch_size = graphene.Int(
            description="Bundles per batch, 1-1000 (default BUNDLES_BULK_BATCH_SIZE, 500)"
        )

    job_ids = graphene.List(
        graphene.NonNull(graphene.ID),
        required=True,
        description="The batch jobs, one per batch, in batch order",
    )
    bulk_job_id = graphene.ID(
        required=True, description="The parent job: progress and result of the whole operation"
    )
    total_bundles = graphene.Int(required=True)
    batch_count = graphene.Int(required=True)
    message = graphene.String(required=True)

    @staticmethod
    def mutate(root, info, bundle_ids, batch_size=None):
        user = require_staff(info, CHANGE_BUNDLE)
        if batch_size is None:
            batch_size = bulk_batch_size()
        batch_size = batch_size_checked(batch_size)  # the rule's own error, field batchSize
        ids = list(dict.fromkeys(parse_int_ids(bundle_ids, field="bundleIds")))
        batches = -(-len(ids) // batch_size)
        with transaction.atomic():
            job = bundles_bulk_enqueue(
                operation="recompute",
                bundle_ids=ids,
                batch_size=batch_size,
                trigger=TRIGGER,
                reason=f"Bulk recompute of {len(ids)} "
                + ngettext("bundle", "bundles", len(ids))
                + " over GraphQL",
                requested_by=user,
            )  # unknown ids → BundleNotFound (naming them) → NOT_FOUND
            batch_job_ids = bulk_batch_job_ids(parent=job)
        return BulkRecomputeBundles(
            job_ids=[str(pk) for pk in batch_job_ids],
            bulk_job_id=str(job.pk),
            total_bundles=len(ids),
            batch_count=batches,
            message=(
                f"Bulk recompute of {len(ids)} {ngettext('bundle', 'bundles', len(ids))} queued "
                f"in {batches} {ngettext('batch', 'batches', batches)}. "
                "View progress in System → Jobs."
            ),
        )
