"""/graphql/: graphene's view with token auth, CSRF for sessions, GraphiQL for staff only.

* ``Authorization: Bearer <key>`` → the token's user; such requests are CSRF-exempt (a browser
  never adds that header on its own, so a forged cross-site request cannot carry it).
* Otherwise the Django session; a session-authenticated POST must carry the CSRF token, as
  any Django form would (Django's own check, run the way DRF's SessionAuthentication runs it).
* GraphiQL (a browser asking for HTML) only for logged-in staff; others go to the login page.
* Schema introspection (``__schema``, ``__type``) only for active staff, by session or token:
  the schema is not advertised to anyone else. GraphiQL (staff) keeps its docs and completion.
"""

from __future__ import annotations

import json
from urllib.parse import urlencode

from django.conf import settings
from django.http import HttpResponse, HttpResponseBadRequest, HttpResponseRedirect
from django.middleware.csrf import CsrfViewMiddleware
from django.urls import reverse
from graphene_django.views import GraphQLView, HttpError
from graphql import (
    ExecutionResult,
    GraphQLError,
    get_named_type,
    is_introspection_type,
    specified_rules,
)
from graphql.validation import ValidationRule

from api import errors
from api.auth import authenticate_request
from api.limits import QueryTooComplex, check_limits, limit, parse_limited


class _CsrfCheck(CsrfViewMiddleware):
    def _reject(self, request, reason):
        return reason  # tell the caller why instead of rendering Django's 403 page


def csrf_failure_reason(request) -> str | None:
    """Why Django's CSRF check refuses this request, or None if it passes."""
    check = _CsrfCheck(lambda req: None)
    check.process_request(request)
    return check.process_view(request, None, (), {})


def _json_error(status: int, message: str, code: str) -> HttpResponse:
    body = {"errors": [{"message": message, "extensions": {"code": code}}]}
    return HttpResponse(json.dumps(body), status=status, content_type="application/json")


def _request_params(request, data) -> tuple[str | None, dict | None, str | None, object]:
    """graphene's (query, variables, operationName, id), each of the type GraphQL wants.

    A JSON body can put any JSON value in each of them; graphql-core assumes a string, an
    object and a string, and answered anything else with a TypeError (500). A wrong type is
    the client's input: a typed 400 naming the parameter. An empty value counts as absent.
    """
    query, variables, operation_name, id_ = GraphQLView.get_graphql_params(request, data)
    if query is not None and not isinstance(query, str):
        raise _bad_param("query", "a string (the GraphQL document)", query)
    if variables in (None, ""):
        variables = None  # also JSON null in the querystring, which graphene decodes
    elif not isinstance(variables, dict):
        raise _bad_param("variables", "a JSON object of variable values", variables)
    if operation_name in (None, ""):
        operation_name = None
    elif not isinstance(operation_name, str):
        raise _bad_param("operationName", "a string (the name of an operation)", operation_name)
    return query, variables, operation_name, id_


def _bad_param(name: str, wanted: str, value) -> HttpError:
    got = _JSON_TYPES.get(type(value), type(value).__name__)
    return HttpError(HttpResponseBadRequest(f"'{name}' must be {wanted}, not {got}."))


_JSON_TYPES = {
    bool: "a boolean",
    int: "a number",
    float: "a number",
    list: "a list",
    dict: "an object",
}


def _is_staff(user) -> bool:
    return bool(user and user.is_authenticated and user.is_active and user.is_staff)


def introspection_refused(code: str) -> type[ValidationRule]:
    """A validation rule refusing any field that returns an introspection type, with ``code``.

    (graphql-core's NoSchemaIntrospectionCustomRule, with a typed error code and one error per
    document instead of one per nested field.)"""

    class IntrospectionRefused(ValidationRule):
        reported = False

        def enter_field(self, node, *_args) -> None:
            type_ = get_named_type(self.context.get_type())
            if self.reported or not (type_ and is_introspection_type(type_)):
                return
            self.reported = True
            self.report_error(
                GraphQLError(
                    f"Schema introspection ('{node.name.value}') is for staff users only: "
                    "log in as staff or send a staff user's API token.",
                    node,
                    extensions={"code": code},
                )
            )

    return IntrospectionRefused


class ApiGraphQLView(GraphQLView):
    # Same page as graphene-django's, its assets served by us (offline, under our CSP).
    graphiql_template = "api/graphiql.html"

    def execute_graphql_request(self, request, *args, **kwargs):
        # One view instance per request, so the per-user rules can live on the instance.
        user = getattr(request, "user", None)
        if _is_staff(user):
            self.validation_rules = None  # graphql-core's standard rules
        else:
            code = errors.FORBIDDEN if user and user.is_authenticated else errors.UNAUTHENTICATED
            self.validation_rules = (*specified_rules, introspection_refused(code))
        # graphene calls this with (data, query, variables, operation_name, show_graphiql).
        query = args[1] if len(args) > 1 else kwargs.get("query")
        variables = args[2] if len(args) > 2 else kwargs.get("variables")
        if query:
            refused = self._over_limits(query, variables)
            if refused:
                return ExecutionResult(data=None, errors=refused)
        return super().execute_graphql_request(request, *args, **kwargs)

    def _over_limits(self, query: str, variables) -> list[GraphQLError]:
        """The limits (api/limits.py) this document breaks, before validation or execution."""
        try:
            document = parse_limited(query)
        except GraphQLError as exc:
            if "tokens" not in exc.message:
                return []  # a syntax error: graphene's own parse reports it
            maximum = limit("GRAPHQL_MAX_TOKENS")
            return [
                QueryTooComplex(
                    f"The document has more than {maximum:,} tokens (GRAPHQL_MAX_TOKENS).",
                    limit_name="GRAPHQL_MAX_TOKENS",
                    value=maximum + 1,
                    maximum=maximum,
                )
            ]
        return check_limits(self.schema.graphql_schema, document, variables)

    def dispatch(self, request, *args, **kwargs):
        token_auth = authenticate_request(request)
        if not token_auth and request.method == "POST" and request.user.is_authenticated:
            reason = csrf_failure_reason(request)
            if reason:
                return _json_error(
                    403,
                    f"CSRF check failed ({reason}). Send the X-CSRFToken header with session "
                    "requests, or use an API token.",
                    errors.FORBIDDEN,
                )
        wants_page = self.request_wants_html(request) and "raw" not in request.GET
        if request.method == "GET" and wants_page:
            user = request.user
            if not user.is_authenticated:
                login = reverse("admin:login")
                return HttpResponseRedirect(f"{login}?{urlencode({'next': request.path})}")
            if not (user.is_active and user.is_staff):
                return HttpResponse("GraphiQL is for staff users only.", status=403)
        return super().dispatch(request, *args, **kwargs)

    def render_graphiql(self, request, **data):
        # The page seeds GraphiQL's editor with this when the browser has no query of its own.
        data["default_query"] = getattr(settings, "GRAPHIQL_DEFAULT_QUERY", "")
        return super().render_graphiql(request, **data)

    @classmethod
    def can_display_graphiql(cls, request, data):
        return _is_staff(getattr(request, "user", None)) and super().can_display_graphiql(
            request, data
        )

    @staticmethod
    def get_graphql_params(request, data):
        return _request_params(request, data)

    def format_error(self, error):
        return errors.format_error(error)
