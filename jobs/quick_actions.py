"""Quick actions: buttons apps add to the jobs page (bundles: checks and recompute all)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from jobs.models import Job
from jobs.permissions import User, missing_permissions


@dataclass(frozen=True)
class QuickAction:
    slug: str
    label: str
    description: str
    run: Callable[..., list[Job]]  # run(user=...) -> the jobs it queued
    # Needed besides jobs.run_schedule: the same permission the operation needs from any other
    # door (the bundle admin's actions, GraphQL), so the jobs page is not a way around it.
    permissions: tuple[str, ...] = ()

    def allowed(self, user: User | None) -> bool:
        """Whether ``user`` may press it: ``jobs.run_schedule`` and what the operation needs."""
        return not missing_permissions(user, ("jobs.run_schedule", *self.permissions))


_QUICK_ACTIONS: dict[str, QuickAction] = {}


def register_quick_action(action: QuickAction) -> None:
    """Apps add buttons to the jobs page (bundles: checks and recompute all)."""
    _QUICK_ACTIONS[action.slug] = action


def quick_actions(*, user: User | None = None) -> list[QuickAction]:
    """All quick actions, or those ``user`` may run."""
    return [a for a in _QUICK_ACTIONS.values() if user is None or a.allowed(user)]


def get_quick_action(slug: str) -> QuickAction | None:
    return _QUICK_ACTIONS.get(slug)
