"""At most one alert evaluation per ``JOBS_ALERTS_INTERVAL`` across all workers.

Called from the maintenance pass (``jobs.maintenance.relay.relay_and_reconcile``), which runs
every few seconds in one live worker, every minute from the scheduler and from ``manage.py
jobs relay``. A Redis key set with NX for the interval picks the one caller that evaluates this
turn, on whatever machine; the others return at once. The pass already holds the reconcile
lock, so two evaluations never overlap either.
"""

from __future__ import annotations

import logging

from jobs import conf
from jobs.alerts.evaluation import RuleOutcome, evaluate_alerts

logger = logging.getLogger(__name__)

ALERTS_DUE_KEY = "jobs:alerts-due"


def evaluate_alerts_if_due(connection) -> list[RuleOutcome] | None:
    """Evaluate the rules if no one did this interval. Never raises (it runs unattended)."""
    if not conf.alerts_enabled():
        return None
    ttl_ms = max(1000, int(conf.alerts_interval() * 1000) - 250)
    try:
        if not connection.set(ALERTS_DUE_KEY, "1", nx=True, px=ttl_ms):
            return None
        outcomes = evaluate_alerts()
    except Exception:
        logger.exception("Alert evaluation failed")
        return None
    for outcome in outcomes:
        if outcome.event:
            logger.warning("Alert %s %s: %s", outcome.rule, outcome.event, outcome.message)
    return outcomes
