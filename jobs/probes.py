"""Figures another app adds to what the jobs app shows: ``/metrics``, ``/health/`` and the
System → Jobs strip.

The jobs app knows nothing of its consumers, yet a consumer's own figures (the bundles app's
staleness, say) belong next to the queues'. A consumer registers them from its
``AppConfig.ready()``, like job kinds and target types:

- ``register_metrics_collector(collector)``: a prometheus-client collector (an object with
  ``collect()`` yielding metric families), asked on every scrape of ``/metrics``;
- ``register_health_check(check_class)``: a django-health-check ``HealthCheck`` class run by
  ``/health/`` (a failure makes it 503 and is named under the check's ``repr``);
- ``register_strip_figure(figures)``: a function ``figures(now) -> list[StripFigure]`` whose
  figures the strip shows as pills.

A registration is kept once per object (re-running ``ready()`` adds nothing). A strip figure
that raises is logged and left out: a consumer's bug must not break the jobs dashboard.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StripFigure:
    """One pill on the strip: ``text`` shown, ``level`` one of ok / warn / bad (its colour)."""

    text: str
    level: str = "ok"
    title: str = ""
    url: str = ""


_collectors: list[Any] = []
_health_checks: list[type] = []
_strip_figures: list[Callable[[datetime], list[StripFigure]]] = []


def _add(registry: list, item: Any) -> None:
    if item not in registry:
        registry.append(item)


def register_metrics_collector(collector: Any) -> None:
    """Add a prometheus-client collector to every ``/metrics`` scrape."""
    _add(_collectors, collector)


def register_health_check(check_class: type) -> None:
    """Add a django-health-check ``HealthCheck`` class to ``/health/``."""
    _add(_health_checks, check_class)


def register_strip_figure(figures: Callable[[datetime], list[StripFigure]]) -> None:
    """Add a function of ``now`` returning the strip's pills."""
    _add(_strip_figures, figures)


def metrics_collectors() -> list[Any]:
    return list(_collectors)


def health_checks() -> list[type]:
    return list(_health_checks)


def strip_figures(*, now: datetime) -> list[StripFigure]:
    shown: list[StripFigure] = []
    for figures in _strip_figures:
        try:
            shown.extend(figures(now))
        except Exception:  # a consumer's bug: log it, keep the dashboard
            logger.exception("Strip figures of %r failed", figures)
    return shown
