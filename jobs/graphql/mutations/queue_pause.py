"""pauseQueue(name) / resumeQueue(name): hold a queue on every worker, or let it run again."""

from __future__ import annotations

import graphene

from api.errors import NotFound
from api.permissions import require_staff
from jobs.errors import JobNotFound
from jobs.pause import queue_paused
from jobs.services import queue_pause, queue_resume

PERMISSIONS = ("jobs.view_job", "jobs.pause_queue")


class PauseQueue(graphene.Mutation):
    class Arguments:
        name = graphene.String(required=True)

    name = graphene.String(required=True)
    paused = graphene.Boolean(required=True)
    message = graphene.String(required=True)

    @staticmethod
    def mutate(root, info, name):
        user = require_staff(info, *PERMISSIONS)
        try:
            queue_pause(queue=name, user=user)
        except JobNotFound as exc:
            raise NotFound(exc.message, ids=[name]) from None
        return PauseQueue(
            name=name,
            paused=queue_paused(name),
            message=f"Queue {name} paused: its jobs stay pending until it is resumed.",
        )


class ResumeQueue(graphene.Mutation):
    class Arguments:
        name = graphene.String(required=True)

    name = graphene.String(required=True)
    paused = graphene.Boolean(required=True)
    sent = graphene.Int(required=True, description="Waiting jobs sent to the workers now")
    message = graphene.String(required=True)

    @staticmethod
    def mutate(root, info, name):
        user = require_staff(info, *PERMISSIONS)
        try:
            sent = queue_resume(queue=name, user=user)
        except JobNotFound as exc:
            raise NotFound(exc.message, ids=[name]) from None
        return ResumeQueue(
            name=name,
            paused=queue_paused(name),
            sent=sent,
            message=f"Queue {name} resumed; {sent} waiting job(s) sent.",
        )
