"""``{% probe_pills %}``: the strip's pills registered by other apps (``jobs.probes``)."""

from __future__ import annotations

from django import template
from django.utils import timezone

from jobs.probes import StripFigure, strip_figures

register = template.Library()


@register.inclusion_tag("admin/jobs/job/probe_pills.html")
def probe_pills() -> dict[str, list[StripFigure]]:
    return {"figures": strip_figures(now=timezone.now())}
