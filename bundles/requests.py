"""Request functions: ask for bundle jobs. Validate the request, then call ``jobs.enqueue``.

Every door (signals, services, admin actions, GraphQL, management commands, schedules) goes
through these functions, so a recompute asked for from the admin is the same job as one asked
for by a signal: same payload, same dedup key, same target. Bad input raises a ``BundleError``
(``InvalidJobOptions`` for malformed options) before anything is written.

Here: one bundle's recompute and reindex, reindexes and checks of a selection, the safety-net
check and the weekly maintenance. Changed variants: ``bundles.fanout``; bulk operations:
``bundles.bulk``; what schedules may name: ``bundles.registration``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from bundles.errors import BundleNotFound, InvalidJobOptions, InvalidScope
from bundles.kinds import Kind
from bundles.models import Bundle
from bundles.selectors import SCOPES, bundle_ids_for_scope, existing_bundle_ids
from jobs.enqueue import enqueue
from jobs.models import Job
from jobs.target_types import Target, TargetIds

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

# --- dedup keys and payload merges ------------------------------------------------------------


def recompute_dedup_key(bundle_id: int) -> str:
    return f"recompute:{bundle_id}"


def _merge_recompute(old: dict, new: dict) -> dict:
    # The merged job must do everything either request asked for.
    merged = dict(old)
    merged["force"] = bool(old.get("force")) or bool(new.get("force"))
    merged["update_search"] = bool(old.get("update_search", True)) or bool(
        new.get("update_search", True)
    )
    reasons = [r for r in (old.get("reason", ""), new.get("reason", "")) if r]
    merged["reason"] = old.get("reason") or new.get("reason", "")
    if len(set(reasons)) > 1:
        merged["reason"] = f"{reasons[0]} (+ later changes)"
    return merged


def _merge_check(old: dict, new: dict) -> dict:
    merged = dict(old)
    merged["fix"] = bool(old.get("fix")) or bool(new.get("fix"))
    merged["notify_admins"] = bool(old.get("notify_admins")) or bool(new.get("notify_admins"))
    return merged


def _bundle_target(bundle_id: int, label: str | None) -> Target:
    return Target("bundle", str(bundle_id), label or f"Bundle #{bundle_id}")


def bundle_links(ids: Sequence[int]) -> TargetIds:
    """One link per bundle a job touches, so each bundle's page and filter find the job."""
    return TargetIds("bundle", ids)


# --- single bundle ----------------------------------------------------------------------------


def bundle_recompute_enqueue(
    *,
    bundle_id: int,
    trigger: str,
    reason: str = "",
    force: bool = False,
    update_search: bool = True,
    requested_by: AbstractBaseUser | None = None,
    label: str | None = None,
    parent: Job | None = None,
    dispatch_on_commit: bool = True,
) -> Job:
    """Ask for one bundle's recompute; merges into a pending recompute of the same bundle.

    No existence check: signals call this for bundles they just saw, and the handler treats a
    bundle that vanished meanwhile as done. Doors taking ids from people validate first
    (``bundle_recompute_request``).
    """
    return enqueue(
        Kind.RECOMPUTE,
        payload={
            "bundle_id": int(bundle_id),
            "reason": reason,
            "force": bool(force),
            "update_search": bool(update_search),
        },
        trigger=trigger,
        reason=reason,
        requested_by=requested_by,
        target=_bundle_target(bundle_id, label),
        dedup_key=recompute_dedup_key(bundle_id),
        merge=_merge_recompute,
        parent=parent,
        dispatch_on_commit=dispatch_on_commit,
    )


def bundle_recompute_request(
    *,
    bundle_id: int,
    trigger: str,
    reason: str = "",
    force: bool = False,
    update_search: bool = True,
    requested_by: AbstractBaseUser | None = None,
    dispatch_on_commit: bool = True,
) -> Job:
    """Like ``bundle_recompute_enqueue`` for ids typed by people: unknown id → BundleNotFound."""
    bundle = Bundle.objects.filter(pk=bundle_id).only("pk", "name").first()
    if bundle is None:
        raise BundleNotFound([int(bundle_id)])
    return bundle_recompute_enqueue(
        bundle_id=bundle.pk,
        trigger=trigger,
        reason=reason,
        force=force,
        update_search=update_search,
        requested_by=requested_by,
        label=bundle.name,
        dispatch_on_commit=dispatch_on_commit,
    )


# --- reindex / check --------------------------------------------------------------------------


def bundle_reindex_enqueue(
    *,
    bundle_id: int,
    trigger: str,
    reason: str = "",
    requested_by: AbstractBaseUser | None = None,
    label: str | None = None,
    parent: Job | None = None,
    dispatch_on_commit: bool = True,
) -> Job:
    """Reindex one bundle (no existence check, like ``bundle_recompute_enqueue``)."""
    return enqueue(
        Kind.REINDEX,
        payload={"bundle_ids": [int(bundle_id)]},
        trigger=trigger,
        reason=reason,
        requested_by=requested_by,
        target=_bundle_target(bundle_id, label),
        dedup_key=f"reindex:{bundle_id}",
        parent=parent,
        dispatch_on_commit=dispatch_on_commit,
    )


def bundles_reindex_enqueue(
    *,
    bundle_ids: Sequence[int] | None,
    trigger: str,
    reason: str = "",
    requested_by: AbstractBaseUser | None = None,
    dispatch_on_commit: bool = True,
) -> Job:
    """Reindex the given bundles (``None`` = all). Unknown ids → BundleNotFound, no job."""
    if bundle_ids is None:
        payload: dict = {"bundle_ids": None}
        target = Target("bundle", "", "All bundles")
        dedup_key: str | None = "reindex:all"
    else:
        ids = existing_bundle_ids(bundle_ids)
        if not ids:
            raise InvalidJobOptions("No bundles selected to reindex.")
        payload = {"bundle_ids": ids}
        if len(ids) == 1:
            name = Bundle.objects.filter(pk=ids[0]).values_list("name", flat=True).first()
            target = _bundle_target(ids[0], name)
            dedup_key = f"reindex:{ids[0]}"
        else:
            target = Target("bundle", "", f"{len(ids)} bundles")
            dedup_key = None
    return enqueue(
        Kind.REINDEX,
        payload=payload,
        trigger=trigger,
        reason=reason,
        requested_by=requested_by,
        target=target,
        targets=bundle_links(payload["bundle_ids"] or ()),
        dedup_key=dedup_key,
        dispatch_on_commit=dispatch_on_commit,
    )


def bundles_check_enqueue(
    *,
    scope: str | Sequence[int],
    fix: bool = False,
    notify_admins: bool = False,
    trigger: str,
    reason: str = "",
    requested_by: AbstractBaseUser | None = None,
    dispatch_on_commit: bool = True,
) -> Job:
    """Consistency check of a scope (all / active / broken) or a list of bundle ids.

    The scope is validated now (``InvalidScope``, ``BundleNotFound``) so a typo never becomes
    a job. Named scopes dedup: a burst of requests for the same check makes one job.
    """
    # Validation only: the job resolves the scope when it runs.
    if isinstance(scope, str):
        if scope not in SCOPES:
            raise InvalidScope(scope)
    else:
        bundle_ids_for_scope(scope=scope)
    if isinstance(scope, str):
        payload: dict = {"scope": scope, "fix": bool(fix), "notify_admins": bool(notify_admins)}
        target = Target("scope", scope, f"{scope.capitalize()} bundles")
        dedup_key: str | None = f"check:{scope}:{'fix' if fix else 'nofix'}"
    else:
        ids = list(dict.fromkeys(int(i) for i in scope))
        if not ids:
            raise InvalidJobOptions("No bundles selected to check.")
        payload = {"scope": ids, "fix": bool(fix), "notify_admins": bool(notify_admins)}
        target = (
            _bundle_target(ids[0], None)
            if len(ids) == 1
            else Target("bundle", "", f"{len(ids)} bundles")
        )
        dedup_key = None
    return enqueue(
        Kind.CONSISTENCY_CHECK,
        payload=payload,
        trigger=trigger,
        reason=reason,
        requested_by=requested_by,
        target=target,
        targets=bundle_links(payload["scope"] if not isinstance(scope, str) else ()),
        dedup_key=dedup_key,
        merge=_merge_check,
        dispatch_on_commit=dispatch_on_commit,
    )


def broken_check_enqueue(
    *, trigger: str, reason: str = "", requested_by: AbstractBaseUser | None = None
) -> Job:
    """The safety net after a component was deleted or disabled: check broken bundles, fix on.

    Deduped, so a burst of deletions makes one pending check.
    """
    return enqueue(
        Kind.CONSISTENCY_CHECK,
        payload={"scope": "broken", "fix": True, "notify_admins": False},
        trigger=trigger,
        reason=reason,
        requested_by=requested_by,
        target=Target("scope", "broken", "Broken bundles"),
        dedup_key="check:broken:fix",
        merge=_merge_check,
    )


def maintenance_enqueue(
    *,
    trigger: str,
    reason: str = "",
    requested_by: AbstractBaseUser | None = None,
    retention_days: int | None = None,
    notify_admins: bool = True,
) -> Job:
    """The weekly maintenance: check all bundles (fix on), reindex all, prune old jobs.

    Deduped, so a backlog (or "run now" pressed twice) makes one pending job.
    """
    payload: dict = {"notify_admins": bool(notify_admins)}
    if retention_days is not None:
        if isinstance(retention_days, bool) or not isinstance(retention_days, int):
            raise InvalidJobOptions("Retention days must be a whole number.", field="retentionDays")
        if retention_days < 0:
            raise InvalidJobOptions("Retention days must be 0 or more.", field="retentionDays")
        payload["retention_days"] = retention_days
    return enqueue(
        Kind.MAINTENANCE,
        payload=payload,
        trigger=trigger,
        reason=reason,
        requested_by=requested_by,
        target=Target("scope", "all", "All bundles"),
        dedup_key="maintenance",
    )
