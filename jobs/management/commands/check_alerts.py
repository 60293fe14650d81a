"""``manage.py check_alerts``: evaluate every enabled alert rule once and print the states.

Transitions are told as in the maintenance pass (email, webhook job). ``--json`` prints one
object per rule. The maintenance pass's once-per-interval gate does not apply: an operator
asking gets an evaluation.
"""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand

from jobs.alerts.evaluation import evaluate_alerts
from jobs.alerts.models import AlertRule


class Command(BaseCommand):
    help = "Evaluate the alert rules once and print each rule's state"

    def add_arguments(self, parser) -> None:
        parser.add_argument("--json", action="store_true", help="One JSON object per rule")

    def handle(self, *args, **options) -> None:
        outcomes = evaluate_alerts()
        thresholds = dict(AlertRule.objects.values_list("name", "threshold"))
        if options["json"]:
            for o in outcomes:
                row = {**o.__dict__, "threshold": thresholds.get(o.rule)}
                self.stdout.write(json.dumps(row, sort_keys=True))
            return
        if not outcomes:
            self.stdout.write("No enabled alert rules.")
        for o in outcomes:
            value = "-" if o.value is None else f"{o.value:g}"
            event = f"  [{o.event.upper()}]" if o.event else ""
            self.stdout.write(
                f"{o.rule:<24} {o.state:<7} {value:>10} / {thresholds.get(o.rule):g}"
                f"{event}  {o.message}"
            )
        firing = sum(o.state == "firing" for o in outcomes)
        self.stdout.write(f"{len(outcomes)} rule(s) evaluated, {firing} firing.")
