"""The jobs list's filters: fixed choices (no DISTINCT over a million rows to build them)."""

from __future__ import annotations

import uuid

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.db.models import Q

from jobs import selectors
from jobs.registry import all_kinds, is_filterable_kind
from jobs.target_types import get_target_type


class QueueFilter(admin.SimpleListFilter):
    title = "queue"
    parameter_name = "queue"

    def lookups(self, request, model_admin):
        return [(q, q) for q in selectors.queue_names()]

    def queryset(self, request, queryset):
        return queryset.filter(queue=self.value()) if self.value() else queryset


class KindFilter(admin.SimpleListFilter):
    title = "kind"
    parameter_name = "kind"

    def lookups(self, request, model_admin):
        kinds = [k.name for k in all_kinds()]
        # A Django task's kind is its dotted path, known only once used: offer the chosen one.
        chosen = self.value()
        if chosen and chosen not in kinds and is_filterable_kind(chosen):
            kinds.append(chosen)
        return [(name, name) for name in kinds]

    def queryset(self, request, queryset):
        value = self.value()
        if value and is_filterable_kind(value):
            return queryset.filter(kind=value)
        return queryset


class TargetFilter(admin.ListFilter):
    """``?target_type=bundle&target_id=12``: every job linked to that object (through the
    link table, so a batch job touching it is found too). Shown in the sidebar only while in
    use (the target's own page links here), with a way back to all jobs."""

    title = "target"
    parameter_names = ("target_type", "target_id")

    def __init__(self, request, params, model, model_admin):
        super().__init__(request, params, model, model_admin)
        self.values: dict[str, str] = {}
        for name in self.parameter_names:
            if name in params:
                value = params.pop(name)
                self.values[name] = value[-1] if isinstance(value, list) else value

    def has_output(self) -> bool:
        # Django applies only the filters that have output: in use, it shows itself.
        return bool(self.values)

    def choices(self, changelist):
        target_type = self.values.get("target_type", "")
        target_id = self.values.get("target_id", "")
        registered = get_target_type(target_type)
        label = registered.label if registered else target_type
        yield {
            "selected": False,
            "query_string": changelist.get_query_string(remove=list(self.parameter_names)),
            "display": "All",
        }
        yield {
            "selected": True,
            "query_string": changelist.get_query_string(),
            "display": f"{label} {target_id}".strip(),
        }

    def expected_parameters(self) -> list[str | None]:
        return list(self.parameter_names)

    def queryset(self, request, queryset):
        return selectors.filter_by_target(
            queryset,
            target_type=self.values.get("target_type") or None,
            target_id=self.values.get("target_id") or None,
        )


class StaleFilter(admin.SimpleListFilter):
    title = "health"
    parameter_name = "stale"

    def lookups(self, request, model_admin):
        return [("yes", "Stale (running, no heartbeat)")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(pk__in=selectors.stale_jobs().values("pk"))
        return queryset


class CausedByFilter(admin.ListFilter):
    """``?caused_by=<job id>[,<job id>…]``: those jobs and the jobs they queued (their
    children: a fan-out's recompute batches, a bulk job's batches). What "N jobs queued"
    links to — a short address, whatever the jobs go on to queue. Shown while in use."""

    title = "caused by"
    parameter_name = "caused_by"
    MAX_JOBS = 10

    def __init__(self, request, params, model, model_admin):
        super().__init__(request, params, model, model_admin)
        value = params.pop(self.parameter_name, None)
        value = value[-1] if isinstance(value, list) else value
        self.ids: list[uuid.UUID] = []
        if value is not None:
            try:
                self.ids = [uuid.UUID(part) for part in value.split(",")][: self.MAX_JOBS]
            except ValueError as exc:  # the list answers ?e=1, as for any junk filter
                raise IncorrectLookupParameters(f"caused_by: not job ids: {value!r}") from exc

    def has_output(self) -> bool:
        return bool(self.ids)

    def choices(self, changelist):
        yield {
            "selected": False,
            "query_string": changelist.get_query_string(remove=[self.parameter_name]),
            "display": "All",
        }
        shown = ", ".join(str(i)[:8] for i in self.ids)
        yield {
            "selected": True,
            "query_string": changelist.get_query_string(),
            "display": f"{shown} and the jobs {'it' if len(self.ids) == 1 else 'they'} queued",
        }

    def expected_parameters(self) -> list[str | None]:
        return [self.parameter_name]

    def queryset(self, request, queryset):
        return queryset.filter(Q(pk__in=self.ids) | Q(parent_id__in=self.ids))
