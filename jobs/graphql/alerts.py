"""GraphQL for alerts: the ``alertRules`` query and the ``updateAlertRule`` mutation.

Reading needs staff with ``jobs.view_alertrule``; editing ``jobs.change_alertrule``, through
the same service as the admin (``jobs.alerts.services``: validation, audit entry). Each rule
lists the channel problems that keep it from being heard (``channelWarnings``) and its last
events, fetched for all rules in one prefetch (no query per rule).
"""

from __future__ import annotations

import graphene
from django.db.models import Prefetch
from graphene.types.generic import GenericScalar

from api.errors import BadUserInput, Forbidden, NotFound
from api.graphql_utils import clean_text
from api.permissions import require_staff
from jobs.alerts.channels import channel_problems
from jobs.alerts.conditions import UnknownCondition, get_condition
from jobs.alerts.models import AlertEvent as AlertEventModel
from jobs.alerts.models import AlertRule as AlertRuleModel
from jobs.alerts.models import AlertState
from jobs.alerts.services import (
    CHANGE_PERMISSION,
    VIEW_PERMISSION,
    AlertRuleInvalid,
    AlertRuleNotFound,
    alert_rule_update,
)
from jobs.errors import JobPermissionDenied

RECENT_EVENTS = 5


class AlertEvent(graphene.ObjectType):
    """One transition of a rule, and what each channel did with it."""

    kind = graphene.String(required=True, description="fired or resolved")
    value = graphene.Float()
    message = graphene.String(required=True)
    at = graphene.DateTime(required=True)
    channels = GenericScalar(required=True, description='e.g. {"email": "sent", ...}')


class AlertRule(graphene.ObjectType):
    """A stored alert rule (System → Alerts) and its state."""

    name = graphene.ID(required=True)
    description = graphene.String(required=True)
    condition = graphene.String(required=True)
    condition_label = graphene.String(required=True)
    unit = graphene.String(required=True)
    subject_type = graphene.String(required=True, description='"", kind, queue or schedule')
    subject = graphene.String(required=True)
    threshold = graphene.Float(required=True)
    min_count = graphene.Int(required=True)
    window_seconds = graphene.Int(required=True)
    cooldown_seconds = graphene.Int(required=True)
    enabled = graphene.Boolean(required=True)
    email = graphene.Boolean(required=True)
    webhook = graphene.Boolean(required=True)
    state = graphene.String(required=True, description="ok or firing")
    state_since = graphene.DateTime()
    last_value = graphene.Float()
    last_message = graphene.String(required=True)
    last_evaluated_at = graphene.DateTime()
    last_fired_at = graphene.DateTime()
    last_resolved_at = graphene.DateTime()
    channel_warnings = graphene.List(
        graphene.NonNull(graphene.String),
        required=True,
        description="Why a channel the rule uses cannot deliver (empty: all can)",
    )
    recent_events = graphene.List(
        graphene.NonNull(AlertEvent), required=True, description="The last 5, newest first"
    )

    @staticmethod
    def resolve_condition_label(rule, info) -> str:
        try:
            return get_condition(rule.condition).label
        except UnknownCondition:
            return f"{rule.condition} (not registered)"

    @staticmethod
    def resolve_unit(rule, info) -> str:
        try:
            return get_condition(rule.condition).unit
        except UnknownCondition:
            return ""

    @staticmethod
    def resolve_channel_warnings(rule, info) -> list[str]:
        return channel_problems(rule)

    @staticmethod
    def resolve_recent_events(rule, info):
        return rule.recent  # prefetched (to_attr) by the query


def alert_rules_with_events():
    recent = AlertEventModel.objects.order_by("-at", "-id")[:RECENT_EVENTS]
    return AlertRuleModel.objects.prefetch_related(
        Prefetch("events", queryset=recent, to_attr="recent")
    )


class AlertsQuery(graphene.ObjectType):
    alert_rules = graphene.List(
        graphene.NonNull(AlertRule),
        required=True,
        state=graphene.String(description="ok or firing"),
        description="Alert rules with their state (jobs.view_alertrule)",
    )

    @staticmethod
    def resolve_alert_rules(root, info, state=None):
        require_staff(info, VIEW_PERMISSION)
        rules = alert_rules_with_events()
        if state:
            if state not in AlertState.values:
                raise BadUserInput(
                    f"state must be one of {', '.join(AlertState.values)}.", field="state"
                )
            rules = rules.filter(state=state)
        return list(rules)


class UpdateAlertRule(graphene.Mutation):
    """Edit a rule like the admin's form (jobs.change_alertrule); audited."""

    class Arguments:
        name = graphene.ID(required=True)
        description = graphene.String()
        subject_type = graphene.String()
        subject = graphene.String()
        threshold = graphene.Float()
        min_count = graphene.Int()
        window_seconds = graphene.Int()
        cooldown_seconds = graphene.Int()
        enabled = graphene.Boolean()
        email = graphene.Boolean()
        webhook = graphene.Boolean()

    alert_rule = graphene.Field(AlertRule, required=True)
    message = graphene.String(required=True)

    @staticmethod
    def mutate(root, info, name, **changes):
        user = require_staff(info, CHANGE_PERMISSION)
        # Text is checked here (NUL, length) so a hostile value is BAD_USER_INPUT, not a
        # database error (PostgreSQL refuses NUL in text).
        name = clean_text(str(name), field="name", max_length=_max_length("name"))
        for field, value in changes.items():
            if isinstance(value, str):
                changes[field] = clean_text(
                    value, field=_camel(field), max_length=_max_length(field)
                )
        try:
            updated = alert_rule_update(rule_id=name, user=user, **changes)
        except JobPermissionDenied as exc:
            raise Forbidden(exc.message) from None
        except AlertRuleNotFound as exc:
            raise NotFound(exc.message, ids=[str(name)]) from None
        except AlertRuleInvalid as exc:
            raise BadUserInput(exc.message, field=_camel(exc.field)) from None
        rule = alert_rules_with_events().get(pk=updated.pk)
        return UpdateAlertRule(alert_rule=rule, message=f"Alert rule {name} saved.")


def _max_length(field: str) -> int:
    return AlertRuleModel._meta.get_field(field).max_length or 255  # type: ignore[union-attr]


def _camel(field: str) -> str:
    head, *rest = field.split("_")
    return head + "".join(part.title() for part in rest)


class AlertsMutation(graphene.ObjectType):
    update_alert_rule = UpdateAlertRule.Field()
