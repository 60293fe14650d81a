"""GraphQL limits, checked on the parsed document before validation and execution.

A document is refused (``QUERY_TOO_COMPLEX``, the limit named in ``extensions.limit``) when it
has too many tokens, operations, field selections or aliases, nests deeper than allowed, or
its estimated cost exceeds the budget. Every limit is a Django setting (``GRAPHQL_*``, below).

Cost model: every field resolved costs 1, times how often it runs. A field taking ``first``
runs its selections once per page row (the literal, else the argument's default, else the
largest page); the ``edges`` list of a connection adds nothing more; any other list field
multiplies by ``GRAPHQL_LIST_SIZE_ESTIMATE``. Fragments are costed once and reused, so a
"fragment bomb" costs its real size without being expanded. Introspection fields (``__*``)
are free and don't count towards depth: GraphiQL's own schema query must always pass.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    VariableNode,
    get_named_type,
    get_nullable_type,
    is_list_type,
    parse,
)
from graphql.language import Visitor, visit

from api.errors import QUERY_TOO_COMPLEX
from api.graphql_utils import MAX_PAGE_SIZE

DEFAULTS = {
    "GRAPHQL_MAX_TOKENS": 20_000,
    "GRAPHQL_MAX_OPERATIONS": 20,
    "GRAPHQL_MAX_FIELDS": 1_000,
    "GRAPHQL_MAX_ALIASES": 30,
    "GRAPHQL_MAX_DEPTH": 8,
    "GRAPHQL_MAX_COST": 50_000,
    "GRAPHQL_LIST_SIZE_ESTIMATE": 20,
}


def limit(name: str) -> int:
    """The configured value of one limit (its default when the setting is absent)."""
    return int(getattr(settings, name, DEFAULTS[name]))


class QueryTooComplex(GraphQLError):
    def __init__(self, message: str, *, limit_name: str, value: int, maximum: int) -> None:
        super().__init__(
            message,
            extensions={
                "code": QUERY_TOO_COMPLEX,
                "limit": limit_name,
                "value": value,
                "maximum": maximum,
            },
        )


def parse_limited(query: str) -> DocumentNode:
    """Parse with the token limit (graphql-core stops reading past it)."""
    # No locations: the limits errors point at the whole document, and parsing is faster.
    return parse(query, no_location=True, max_tokens=limit("GRAPHQL_MAX_TOKENS"))


class _Counter(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.fields = 0
        self.aliases = 0
        self.operations = 0

    def enter_field(self, node: FieldNode, *_args) -> None:
        self.fields += 1
        if node.alias is not None:
            self.aliases += 1

    def enter_operation_definition(self, *_args) -> None:
        self.operations += 1


@dataclass
class _Size:
    cost: int
    depth: int


class _Estimator:
    """Cost and depth of selection sets, per unit of the multiplier above them."""

    def __init__(
        self, schema: GraphQLSchema, document: DocumentNode, variables: dict | None
    ) -> None:
        self.schema = schema
        self.variables = variables if isinstance(variables, dict) else {}
        self.fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        self.memo: dict[tuple[str, str], _Size] = {}
        self.active: set[str] = set()  # fragment cycles are a validation error, not a hang
        self.list_size = limit("GRAPHQL_LIST_SIZE_ESTIMATE")

    def selection_set(self, node: SelectionSetNode | None, type_) -> _Size:
        total = _Size(0, 0)
        if node is None or type_ is None:
            return total
        for selection in node.selections:
            if isinstance(selection, FieldNode):
                size = self.field(selection, type_)
            elif isinstance(selection, InlineFragmentNode):
                cond = selection.type_condition
                inner = self.schema.get_type(cond.name.value) if cond else type_
                size = self.selection_set(selection.selection_set, inner)
            elif isinstance(selection, FragmentSpreadNode):
                size = self.spread(selection.name.value)
            else:  # pragma: no cover - the grammar has no other selections
                continue
            total.cost += size.cost
            total.depth = max(total.depth, size.depth)
        return total

    def spread(self, name: str) -> _Size:
        fragment = self.fragments.get(name)
        if fragment is None or name in self.active:
            return _Size(0, 0)
        key = (name, fragment.type_condition.name.value)
        if key not in self.memo:
            self.active.add(name)
            type_ = self.schema.get_type(fragment.type_condition.name.value)
            self.memo[key] = self.selection_set(fragment.selection_set, type_)
            self.active.discard(name)
        return self.memo[key]

    def field(self, node: FieldNode, parent_type) -> _Size:
        name = node.name.value
        if name.startswith("__"):
            return _Size(0, 0)
        parent = get_named_type(parent_type)
        field_def = parent.fields.get(name) if isinstance(parent, GraphQLObjectType) else None
        if field_def is None:  # unknown field: validation reports it
            return _Size(1, 1)
        times = 1
        if "first" in field_def.args:
            times = self._page_size(node, field_def.args["first"].default_value)
        elif is_list_type(get_nullable_type(field_def.type)) and not _is_connection(parent):
            times = self.list_size
        inner = self.selection_set(node.selection_set, get_named_type(field_def.type))
        return _Size(1 + times * inner.cost, 1 + inner.depth)

    def _page_size(self, node: FieldNode, default) -> int:
        for argument in node.arguments or ():
            if argument.name.value != "first":
                continue
            value = argument.value
            if isinstance(value, VariableNode):
                value = self.variables.get(value.name.value)
            elif isinstance(value, IntValueNode):
                value = value.value
            try:
                return max(1, min(int(value), MAX_PAGE_SIZE))
            except (TypeError, ValueError):
                break  # null or not a number: the resolver refuses it; estimate the largest
        # No argument: its default if there is one, else the largest page.
        return default if isinstance(default, int) and default > 0 else MAX_PAGE_SIZE


def _is_connection(type_) -> bool:
    return isinstance(type_, GraphQLObjectType) and {"edges", "pageInfo"} <= set(type_.fields)


def _root_type(schema: GraphQLSchema, operation: OperationDefinitionNode):
    if operation.operation == OperationType.MUTATION:
        return schema.mutation_type
    if operation.operation == OperationType.SUBSCRIPTION:
        return schema.subscription_type
    return schema.query_type


def check_limits(
    schema: GraphQLSchema, document: DocumentNode, variables: dict | None = None
) -> list[GraphQLError]:
    """The limits this document exceeds, as typed errors (empty when it is within them).

    ``variables`` (the request's) give page sizes passed as ``first: $var``."""
    counter = _Counter()
    visit(document, counter)
    for value, name, noun in (
        (counter.operations, "GRAPHQL_MAX_OPERATIONS", "operations"),
        (counter.aliases, "GRAPHQL_MAX_ALIASES", "aliases"),
        (counter.fields, "GRAPHQL_MAX_FIELDS", "field selections"),
    ):
        maximum = limit(name)
        if value > maximum:
            return [
                QueryTooComplex(
                    f"The document has {value:,} {noun}; at most {maximum:,} are allowed ({name}).",
                    limit_name=name,
                    value=value,
                    maximum=maximum,
                )
            ]
    estimator = _Estimator(schema, document, variables)
    max_depth, max_cost = limit("GRAPHQL_MAX_DEPTH"), limit("GRAPHQL_MAX_COST")
    for operation in document.definitions:
        if not isinstance(operation, OperationDefinitionNode):
            continue
        size = estimator.selection_set(operation.selection_set, _root_type(schema, operation))
        label = f"Operation '{operation.name.value}'" if operation.name else "The operation"
        if size.depth > max_depth:
            return [
                QueryTooComplex(
                    f"{label} nests {size.depth} levels deep; at most {max_depth} are allowed "
                    "(GRAPHQL_MAX_DEPTH).",
                    limit_name="GRAPHQL_MAX_DEPTH",
                    value=size.depth,
                    maximum=max_depth,
                )
            ]
        if size.cost > max_cost:
            return [
                QueryTooComplex(
                    f"{label} would resolve about {size.cost:,} fields; the budget is "
                    f"{max_cost:,} (GRAPHQL_MAX_COST). Ask for smaller pages or fewer nested "
                    "lists.",
                    limit_name="GRAPHQL_MAX_COST",
                    value=size.cost,
                    maximum=max_cost,
                )
            ]
    return []
