"""updateSchedule(id, cron, enabled, arguments): edit a stored schedule, like the admin's form.

Same permissions (``jobs.change_schedule`` and those of the schedule's request, before and
after the edit: else FORBIDDEN, logged) and the same validation as the admin: a bad cron, an
unknown request function or arguments it refuses (a bad scope, a retention below the floor) are
``BAD_USER_INPUT`` errors naming the field, and change nothing. The service writes the admin
log entry.
"""

from __future__ import annotations

import graphene
from graphene.types.generic import GenericScalar

from api.errors import Forbidden
from api.permissions import require_staff
from jobs.errors import JobPermissionDenied
from jobs.graphql.types import Schedule
from jobs.scheduling.listing import list_schedules
from jobs.scheduling.permissions import CHANGE_PERMISSION
from jobs.scheduling.store import schedule_update


class UpdateSchedule(graphene.Mutation):
    class Arguments:
        id = graphene.ID(required=True, description="Schedule id, e.g. nightly-consistency-check")
        cron = graphene.String(description="5-field cron line, read in the schedule's timezone")
        enabled = graphene.Boolean()
        arguments = GenericScalar(description="The request function's keyword arguments")
        timezone = graphene.String(description="IANA time zone, e.g. UTC or Europe/Berlin")
        grace_seconds = graphene.Int(description="A missed fire runs on recovery within this")

    schedule = graphene.Field(Schedule, required=True)
    message = graphene.String(required=True)

    @staticmethod
    def mutate(root, info, id, **changes):
        user = require_staff(info, CHANGE_PERMISSION)
        try:
            schedule_update(schedule_id=str(id), user=user, **changes)
        except JobPermissionDenied as exc:
            raise Forbidden(exc.message, permissions=getattr(exc, "permissions", [])) from None
        item = next(s for s in list_schedules() if s["id"] == str(id))
        return UpdateSchedule(schedule=item, message=f"Schedule {id} saved.")
