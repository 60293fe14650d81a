"""GraphQL for error groups: ``errorGroups`` and ``retryErrorGroup`` / ``discardErrorGroup``.

The same reads and services as System → Jobs → Errors (``jobs.error_groups``): reading needs
``jobs.view_job``; retrying a group ``jobs.retry_job``, discarding it ``jobs.delete_job`` (the
services check them again and write an audit entry per job).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import graphene
from django.utils.translation import ngettext

from api.errors import BadUserInput, NotFound
from api.graphql_utils import clean_text, selected_fields
from api.permissions import require_staff
from jobs.error_groups import selectors, services

VIEW_JOB = "jobs.view_job"
MAX_GROUPS = 100
# The fields that need each group's sample row (one indexed read per group): only then read.
SAMPLE_FIELDS = {"exception", "sampleJobId", "sampleMessage", "sampleTraceback"}


class ErrorGroupKind(graphene.ObjectType):
    kind = graphene.String(required=True)
    count = graphene.Int(required=True)


class ErrorGroup(graphene.ObjectType):
    fingerprint = graphene.String(required=True, description="The group's key")
    count = graphene.Int(required=True, description="Failed jobs in the group")
    first_seen = graphene.DateTime()
    last_seen = graphene.DateTime()
    exception = graphene.String(required=True, description="The sample's exception class")
    kinds = graphene.List(graphene.NonNull(ErrorGroupKind), required=True)
    sample_job_id = graphene.ID()
    sample_message = graphene.String(required=True)
    sample_traceback = graphene.String(required=True)

    @staticmethod
    def resolve_kinds(group, info):
        return [ErrorGroupKind(kind=k, count=n) for k, n in group.kinds]


class ErrorGroupsQuery(graphene.ObjectType):
    error_groups = graphene.List(
        graphene.NonNull(ErrorGroup),
        required=True,
        first=graphene.Int(description=f"How many groups, 1-{MAX_GROUPS} (default 50)"),
        description="Failed jobs grouped by their error, the biggest groups first",
    )

    @staticmethod
    def resolve_error_groups(root, info, first=None):
        require_staff(info, VIEW_JOB)
        first = selectors.DEFAULT_GROUPS if first is None else first
        if not 1 <= first <= MAX_GROUPS:
            raise BadUserInput(f"'first' must be between 1 and {MAX_GROUPS}.", field="first")
        with_samples = bool(SAMPLE_FIELDS & selected_fields(info))
        return selectors.error_groups(limit=first, with_samples=with_samples)


class _GroupAction(graphene.Mutation):
    """What both group mutations answer."""

    class Arguments:
        fingerprint = graphene.String(required=True)

    count = graphene.Int(required=True, description="Jobs retried or deleted")
    skipped = graphene.Int(required=True, description="Jobs that changed state meanwhile")
    remaining = graphene.Int(required=True, description="Failed jobs still in the group")
    message = graphene.String(required=True)

    permission = ""
    service: ClassVar[Callable[..., services.GroupOutcome]]  # each mutation's own
    verb = ""

    @classmethod
    def mutate(cls, root, info, fingerprint):
        user = require_staff(info, VIEW_JOB, cls.permission)
        fingerprint = clean_text(fingerprint, field="fingerprint", max_length=64)
        if not selectors.failed_in_group(fingerprint=fingerprint).exists():
            raise NotFound(f"No failed job in error group {fingerprint}", ids=[fingerprint])
        outcome = cls.service(fingerprint=fingerprint, user=user)
        return cls(
            count=outcome.done,
            skipped=outcome.skipped,
            remaining=outcome.remaining,
            message=f"{outcome.done} {ngettext('job', 'jobs', outcome.done)} {cls.verb}.",
        )


class RetryErrorGroup(_GroupAction):
    """Retry every failed job of an error group (up to 5,000 per call)."""

    permission = services.RETRY_PERMISSION
    service = staticmethod(services.error_group_retry)
    verb = "queued again"


class DiscardErrorGroup(_GroupAction):
    """Delete every failed job of an error group from the ledger (up to 5,000 per call)."""

    permission = services.DISCARD_PERMISSION
    service = staticmethod(services.error_group_discard)
    verb = "deleted"


class ErrorGroupsMutation(graphene.ObjectType):
    retry_error_group = RetryErrorGroup.Field()
    discard_error_group = DiscardErrorGroup.Field()
