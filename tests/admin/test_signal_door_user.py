"""A save in the admin or over GraphQL records who saved on the jobs it causes, and the admin
says what it queued, with a link; a link to many jobs is a short filter, not every id."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from jobs.admin.links import jobs_queued_message
from jobs.enqueue import enqueue
from jobs.models import Job
from tests.factories import make_bundle

pytestmark = [pytest.mark.django_db]


def test_an_admin_save_records_the_user_and_links_to_the_jobs_it_queued(client):
    # Given a bundle using a variant, and an operator
    bundle = make_bundle(name="Door kit")
    variant = bundle.components.first().variant
    Job.objects.all().delete()
    operator = User.objects.create_superuser("door-op", "op@example.com", "pw")
    client.force_login(operator)
    # When they change the variant's price in the admin
    url = f"/admin/bundles/productvariant/{variant.pk}/change/"
    form = client.get(url).context["adminform"].form
    data = {name: form[name].value() for name in form.fields if form[name].value() is not None}
    data = {k: ("on" if v is True else v) for k, v in data.items() if v is not False}
    data["price"] = "99.99"
    response = client.post(url, data, follow=True)
    # Then the fan-out it caused names them, and the message links to it
    assert response.status_code == 200
    job = Job.objects.get(kind="fanout")
    assert job.requested_by == operator
    texts = [str(m) for m in response.context["messages"]]
    assert any("1 job queued (fanout: " in t and f"caused_by={job.pk}" in t for t in texts), texts


def test_a_graphql_mutation_records_the_caller_on_its_job(client):
    # Given a GraphQL caller (session); the same request context the signal door reads
    bundle = make_bundle(name="Api kit")
    caller = User.objects.create_superuser("api-op", "api@example.com", "pw")
    client.force_login(caller)
    # When
    body = client.post(
        "/graphql/",
        data=json.dumps(
            {"query": f'mutation {{ recomputeBundle(bundleId: "{bundle.pk}") {{ jobId }} }}'}
        ),
        content_type="application/json",
    )
    # Then
    job_id = json.loads(body.content)["data"]["recomputeBundle"]["jobId"]
    assert Job.objects.get(pk=job_id).requested_by == caller


def test_a_link_to_100_jobs_is_a_short_filter_that_lists_exactly_them(client):
    # Given 100 jobs queued by one request, and older jobs that are not theirs
    old = enqueue("reindex", payload={"bundle_ids": [1]}, trigger="signal")
    Job.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(hours=1))
    jobs = [enqueue("reindex", payload={"bundle_ids": [i]}, trigger="admin") for i in range(100)]
    # When
    message = str(jobs_queued_message(jobs, what="Reindex"))
    # Then the link is short and the list it opens holds exactly those 100
    href = message.split('href="')[1].split('"')[0].replace("&amp;", "&")
    assert len(href) < 300 and "id__in" not in href
    client.force_login(User.objects.create_superuser("links", "l@example.com", "pw"))
    page = client.get(href + "&all=")
    assert page.status_code == 200
    cl = page.context["cl"]
    assert set(cl.queryset.values_list("pk", flat=True)) == {j.pk for j in jobs}
