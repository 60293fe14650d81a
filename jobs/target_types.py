"""Target types: what a job works on, and how the jobs pages label, link and search it.

The jobs app knows no target type itself. Each consumer registers its own in its ``requests``
module (the jobs app's ``ready()`` imports it)::

    register_target(
        "bundle",
        label="Bundle",
        admin_url="admin:bundles_bundle_change",
        search=bundle_ids_matching,      # term -> ids, for the jobs search box
        filter_argument="bundle_id",     # an extra GraphQL filter argument (bundleId)
    )

A job names its targets with :class:`Target`; the ledger keeps each one as a
``JobTarget`` link row, so one job can link to every object it touches.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from django.urls import NoReverseMatch, reverse


@dataclass(frozen=True)
class Target:
    """One object a job works on. ``id`` empty: a group (e.g. "All bundles"), not linked."""

    type: str
    id: str = ""
    label: str = ""

    @classmethod
    def of(cls, value: Target | tuple | None) -> Target | None:
        """A Target from a Target or a ``(type, id, label)`` tuple (the older form)."""
        if value is None or isinstance(value, Target):
            return value
        type_, id_, label = (*value, "", "")[:3]
        return cls(type=str(type_), id=str(id_), label=str(label))


@dataclass(frozen=True)
class TargetIds:
    """Many objects of one type a job works on, linked without labels (a batch's 500 bundles):
    one value instead of a :class:`Target` each."""

    type: str
    ids: Sequence = ()


@dataclass(frozen=True)
class TargetType:
    name: str
    label: str
    # A URL name reversed with the target id, or a function id -> URL (None: no link).
    admin_url: str | Callable[[str], str | None] | None = None
    # term -> ids of matching targets, for the jobs search box.
    search: Callable[[str], Iterable] | None = None
    # An extra filter argument of the GraphQL ``jobs`` query (snake_case, e.g. "bundle_id").
    filter_argument: str | None = None
    # Ids are whole numbers (filters refuse anything else).
    numeric_ids: bool = True
    # ids -> {id: label}, one query for many: names the targets a job linked without a label
    # (a bundle's name and SKU rather than "bundle 30").
    describe: Callable[[list[str]], dict[str, str]] | None = None

    def url_for(self, target_id: str) -> str | None:
        if not target_id or self.admin_url is None:
            return None
        if callable(self.admin_url):
            return self.admin_url(str(target_id))
        try:
            return reverse(self.admin_url, args=[target_id])
        except NoReverseMatch:
            return None


_TARGET_TYPES: dict[str, TargetType] = {}


def register_target(
    name: str,
    *,
    label: str,
    admin_url: str | Callable[[str], str | None] | None = None,
    search: Callable[[str], Iterable] | None = None,
    filter_argument: str | None = None,
    numeric_ids: bool = True,
    describe: Callable[[list[str]], dict[str, str]] | None = None,
) -> TargetType:
    """Register (or re-register, on a module reload) the target type ``name``."""
    if not name or len(name) > 32:
        raise ValueError(f"Target type {name!r}: use 1-32 characters")
    target_type = TargetType(
        name=name,
        label=label,
        admin_url=admin_url,
        search=search,
        filter_argument=filter_argument,
        numeric_ids=numeric_ids,
        describe=describe,
    )
    _TARGET_TYPES[name] = target_type
    return target_type


def get_target_type(name: str) -> TargetType | None:
    return _TARGET_TYPES.get(name)


def all_target_types() -> list[TargetType]:
    return sorted(_TARGET_TYPES.values(), key=lambda t: t.name)


def target_url(target_type: str, target_id: str) -> str | None:
    """The admin page of one target, or None if its type has none (or is unknown)."""
    registered = _TARGET_TYPES.get(target_type)
    return registered.url_for(target_id) if registered else None


def target_labels(target_type: str, ids: Iterable[str]) -> dict[str, str]:
    """Labels of many targets of one type: the type's ``describe`` where it has one, else its
    label and the id ("Bundle 30"); the raw type and id for an unknown type."""
    ids = [str(i) for i in ids]
    registered = _TARGET_TYPES.get(target_type)
    if registered is None:
        return {i: f"{target_type} {i}" for i in ids}
    described = registered.describe(ids) if registered.describe and ids else {}
    return {i: described.get(i) or f"{registered.label} {i}" for i in ids}


def matching_target_ids(term: str, *, limit: int = 200) -> dict[str, list[str]]:
    """Target type -> ids (as text) whose objects match a search term, for every type that
    can search."""
    out: dict[str, list[str]] = {}
    for target_type in all_target_types():
        if target_type.search is None:
            continue
        ids = [str(i) for i in list(target_type.search(term))[:limit]]
        if ids:
            out[target_type.name] = ids
    return out
