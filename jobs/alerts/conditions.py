"""The registry of alert conditions: what a rule can measure.

The jobs app registers its own (``jobs.alerts.builtin``); a consumer registers conditions over
its own data from its ``AppConfig.ready()``, like job kinds and target types::

    register_condition(
        "bundle_staleness",
        label="Bundle staleness",
        unit="seconds",
        subjects=("",),             # subject types it accepts ("": everything)
        measure=measure_staleness,  # (rule, now) -> Measurement
    )

A measure makes a few indexed queries and returns a value (None: nothing to measure, which
counts as "not over the threshold") and a sentence for the operator.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from jobs.alerts.models import AlertRule


@dataclass(frozen=True)
class Measurement:
    value: float | None
    message: str


Measure = Callable[["AlertRule", datetime], Measurement]


@dataclass(frozen=True)
class Condition:
    name: str
    label: str
    measure: Measure
    unit: str = ""
    # Subject types a rule of this condition may name ("" = everything, "kind", "queue",
    # "schedule").
    subjects: tuple[str, ...] = ("",)
    description: str = ""


class UnknownCondition(LookupError):
    def __init__(self, name: str) -> None:
        self.name = name
        known = ", ".join(sorted(_REGISTRY)) or "none"
        super().__init__(f"Unknown alert condition {name!r} (known: {known})")


_REGISTRY: dict[str, Condition] = {}


def register_condition(
    name: str,
    *,
    label: str,
    measure: Measure,
    unit: str = "",
    subjects: Sequence[str] = ("",),
    description: str = "",
) -> Condition:
    """Make ``name`` measurable by alert rules. Registering the same function again (autoreload,
    tests) is fine; another function under a taken name is refused."""
    existing = _REGISTRY.get(name)
    if existing and existing.measure.__qualname__ != measure.__qualname__:
        raise ValueError(f"Alert condition {name!r} is already registered")
    condition = Condition(
        name=name,
        label=label,
        measure=measure,
        unit=unit,
        subjects=tuple(subjects),
        description=description or (measure.__doc__ or "").strip().split("\n")[0],
    )
    _REGISTRY[name] = condition
    return condition


def get_condition(name: str) -> Condition:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownCondition(name) from None


def all_conditions() -> list[Condition]:
    return sorted(_REGISTRY.values(), key=lambda c: c.name)
