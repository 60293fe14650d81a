"""Hostile input to every admin URL of the project: never a server error.

The URLs come from the admin site's URLconf and registry at test time, so pages added later
are covered without touching this file. Each URL pattern gets hypothesis-drawn path values
(real ids, junk, huge and negative numbers, malformed UUIDs, NUL bytes, unicode, SQL and HTML
fragments), query parameters (search, ordering, pagination, every list filter's parameters)
and, for POST, form data including changelist actions with junk selected ids.
"""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest
from django.contrib import admin
from django.contrib.admin import SimpleListFilter
from django.test import Client
from django.urls import URLPattern, URLResolver
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.admin.conftest import failed_job, make_job
from tests.factories import make_bundle

HYPOTHESIS = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

HOSTILE = st.one_of(
    st.sampled_from(
        [
            "",
            " ",
            "\x00",
            "a\x00b",
            "zzz",
            "0",
            "-1",
            "99999999999999999999999999",
            "-9223372036854775809",
            "1e309",
            "NaN",
            "00000000-0000-0000-0000-00000000000g",
            "00000000-0000-0000-0000-000000000000",
            "' OR 1=1 --",
            "1; DROP TABLE jobs_job; --",
            '"><script>alert(1)</script>',
            "%00",
            "../../etc/passwd",
            "💥ünï",
            "\ud7ff\ue000",
            "a" * 5000,
            "2026-13-45",
            "True",
            "[]",
            "{}",
        ]
    ),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.uuids().map(str),
    st.text(max_size=20),
)

COMMON_PARAMS = [
    "q",
    "o",
    "p",
    "e",
    "all",
    "_facets",
    "_to_field",
    "_popup",
    "_changelist_filters",
    "ids",
    "next",
    "app_label",
    "model_name",
    "field_name",
    "term",
    "page",
    "id__in",
    "state",
    "queue",
    "kind",
    "trigger",
    "stale",
]


def _walk(patterns, prefix=""):
    for p in patterns:
        if isinstance(p, URLResolver):
            yield from _walk(p.url_patterns, prefix + str(p.pattern))
        elif isinstance(p, URLPattern):
            yield prefix + str(p.pattern), p


def admin_patterns() -> list[str]:
    return sorted({route for route, _ in _walk(admin.site.urls[0])})


def model_admin_for(route: str):
    for model, model_admin in admin.site._registry.items():
        if route.startswith(f"{model._meta.app_label}/{model._meta.model_name}/"):
            return model_admin
    return None


def filter_params(model_admin) -> list[str]:
    names = []
    for spec in model_admin.get_list_filter(None) if model_admin else ():
        if isinstance(spec, type) and issubclass(spec, SimpleListFilter):
            names.append(spec.parameter_name)
            continue
        field = spec[0] if isinstance(spec, tuple) else spec
        names += [
            field,
            f"{field}__exact",
            f"{field}__isnull",
            f"{field}__gte",
            f"{field}__lt",
            f"{field}__id__exact",
            f"{field}__in",
        ]
    return names


_SEGMENT = re.compile(r"<(?:(\w+):)?(\w+)>|\(\?P<(\w+)>([^)]*)\)")


def fill(route: str, draw, real_ids: list[str]) -> str:
    """The route with each converter or regex group replaced by a drawn value."""

    def value(match) -> str:
        choice = draw(st.one_of(st.sampled_from(real_ids), HOSTILE))
        if match.group(3) and "|" in match.group(4):  # app_label alternatives
            choice = draw(
                st.one_of(st.sampled_from(match.group(4).strip("^$").split("|")), HOSTILE)
            )
        return quote(choice, safe="")

    path = _SEGMENT.sub(value, route)
    return "/admin/" + path.replace("^", "").replace("$", "")


@pytest.fixture
def world(db):
    bundle = make_bundle(name="Fuzz kit")
    job = make_job()
    failed = failed_job()
    child = make_job(parent=job)
    return [
        str(bundle.pk),
        str(bundle.shell_variant_id) if hasattr(bundle, "shell_variant_id") else "1",
        str(job.pk),
        str(failed.pk),
        str(child.pk),
        "1",
        "nightly-consistency-check",
    ]


@pytest.fixture
def superuser_client(db, django_user_model):
    def login() -> tuple[Client, object]:
        # Again per example: an earlier one may have logged out or deleted this very user.
        user, _ = django_user_model.objects.get_or_create(
            username="fuzzer", defaults={"is_staff": True, "is_superuser": True}
        )
        client = Client(raise_request_exception=True)
        client.force_login(user)
        return client, user

    return login


ROUTES = admin_patterns()


def test_every_admin_route_is_covered():
    # The enumeration sees the project's own pages (a guard against an empty parametrize).
    assert any("jobs/job/" in r for r in ROUTES) and any("bundles/bundle/" in r for r in ROUTES)


@pytest.mark.parametrize("route", ROUTES)
@HYPOTHESIS
@given(data=st.data())
def test_admin_route_never_answers_a_server_error(route, world, superuser_client, data):
    client, user = superuser_client()
    model_admin = model_admin_for(route)
    path = fill(route, data.draw, world)
    names = st.sampled_from(COMMON_PARAMS + filter_params(model_admin))
    params = data.draw(st.dictionaries(st.one_of(names, HOSTILE), HOSTILE, max_size=4))
    method = data.draw(st.sampled_from(["get", "post"]))
    if method == "post":
        actions = list(model_admin.get_actions(_request(user)).keys()) if model_admin else []
        form = dict(params)
        if actions and data.draw(st.booleans()):
            form["action"] = data.draw(st.one_of(st.sampled_from(actions), HOSTILE))
            form["index"] = "0"
            form["_selected_action"] = data.draw(
                st.lists(st.one_of(st.sampled_from(world), HOSTILE), min_size=1, max_size=3)
            )
            if data.draw(st.booleans()):
                form["post"] = "yes"  # past a confirmation page
        response = client.post(path, form)
    else:
        response = client.get(path, params)
    assert response.status_code < 500, (path, params, response.status_code)


def _request(user):
    from django.test import RequestFactory

    request = RequestFactory().get("/admin/")
    request.user = user
    return request
