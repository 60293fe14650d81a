"""Remember the values a model instance was loaded with, so a save can tell what changed.

A ``post_init`` receiver snapshots the tracked fields of every instance that comes from the
database; ``post_save`` compares against that snapshot without a query and then takes a new
one, so saving the same instance twice only reports changes once. Instances built in memory
(no primary key yet) have no snapshot: their first save is a creation, not a change.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import cast

from django.db import models

_SNAPSHOT_ATTR = "_bundles_loaded_values"
_MISSING = object()


def _normalized(field: models.Field, value: object) -> object:
    # "10.00" set by a form and Decimal("10.0000") read from the database are the same price.
    if value is None or value is _MISSING:
        return value
    try:
        return field.to_python(value)
    except Exception:  # an invalid value simply counts as changed; save() will complain
        return value


def current_values(instance: models.Model, fields: Iterable[models.Field]) -> dict[str, object]:
    """The loaded values of ``fields`` (deferred fields are left out)."""
    loaded = instance.__dict__
    return {field.attname: loaded[field.attname] for field in fields if field.attname in loaded}


def take_snapshot(instance: models.Model, fields: Iterable[models.Field]) -> None:
    """Store the current values of ``fields`` on the instance (deferred fields are skipped)."""
    store_snapshot(instance, current_values(instance, fields))


def store_snapshot(instance: models.Model, values: dict[str, object]) -> None:
    instance.__dict__[_SNAPSHOT_ATTR] = values


def changed_fields(
    instance: models.Model,
    fields: Iterable[models.Field],
    *,
    update_fields: Iterable[str] | None = None,
) -> dict[str, tuple[object, object]]:
    """``{attname: (old, new)}`` for tracked fields whose value differs from the snapshot.

    A field that was deferred when loaded counts as changed when it now has a value: we cannot
    prove it did not change, and a spurious job is cheaper than a missed one. With
    ``update_fields`` only those fields reached the database, so only those are compared.
    """
    snapshot = instance.__dict__.get(_SNAPSHOT_ATTR, {})
    only = None if update_fields is None else set(update_fields)
    changes: dict[str, tuple[object, object]] = {}
    for field in fields:
        if only is not None and field.name not in only and field.attname not in only:
            continue
        new = instance.__dict__.get(field.attname, _MISSING)
        if new is _MISSING:
            continue  # still deferred: not written by this save
        old = snapshot.get(field.attname, _MISSING)
        if old is _MISSING or _normalized(field, old) != _normalized(field, new):
            changes[field.attname] = (None if old is _MISSING else old, new)
    return changes


def tracked_fields(model: type[models.Model], names: Iterable[str]) -> tuple[models.Field, ...]:
    return tuple(cast(models.Field, model._meta.get_field(name)) for name in names)
