"""Paging without COUNT(*) over the whole ledger: the job list's paginator."""

from __future__ import annotations

import json
from typing import Any

from django.core.paginator import Paginator
from django.db import connection
from django.utils.functional import cached_property


class EstimatedCountPaginator(Paginator):
    """Counts at most ``cap`` + 1 rows; beyond that it asks PostgreSQL's planner for an
    estimate (SQLite: shows "more than cap"). A page never costs a full ``COUNT(*)``."""

    cap = 10_000

    @cached_property
    def count(self) -> int:
        qs: Any = self.object_list  # the changelist's queryset
        exact = qs.order_by()[: self.cap + 1].count()
        self.is_estimate = exact > self.cap
        if not self.is_estimate:
            self.display_count = f"{exact:,}"
            return exact
        estimate = _planner_estimate(qs)
        if estimate and estimate > self.cap:
            self.display_count = f"about {estimate:,}"
            return estimate
        self.display_count = f"more than {self.cap:,}"
        return exact

    is_estimate = False
    display_count = ""


def _planner_estimate(qs) -> int | None:
    if connection.vendor != "postgresql":
        return None
    sql, params = qs.order_by().query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        plan = cursor.fetchone()[0]
    if isinstance(plan, str):
        plan = json.loads(plan)
    return int(plan[0]["Plan"]["Plan Rows"])
