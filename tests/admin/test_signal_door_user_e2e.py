"""The signal door knows the user, end to end with real workers: what an admin save or a
GraphQL caller causes — the fan-out, the recompute batches it opens, the reindexes a rename
queues, the safety check a disabled component queues, a bulk job's batches — all record who
asked, and the save's message links to them with a short filter."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import User
from django.test import Client

from api.services import api_token_create
from bundles.models import Bundle
from jobs.models import SETTLED_STATES, Job, JobState
from tests.factories import make_bundle, make_variant
from tests.support import wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis]


@pytest.fixture(autouse=True)
def small_batches(settings, monkeypatch):
    """Two bundles a batch (in the worker too: it reads the environment), no debounce."""
    monkeypatch.setenv("BUNDLES_RECOMPUTE_BATCH_SIZE", "2")
    settings.BUNDLES_RECOMPUTE_BATCH_SIZE = 2
    settings.BUNDLES_FANOUT_DEBOUNCE_SECONDS = 0


def all_settled() -> bool:
    return Job.objects.exists() and not Job.objects.exclude(state__in=SETTLED_STATES).exists()


def save_variant(client: Client, variant, **changes):
    """Post the variant's admin form with ``changes``, as an operator would."""
    url = f"/admin/bundles/productvariant/{variant.pk}/change/"
    form = client.get(url).context["adminform"].form
    data = {name: form[name].value() for name in form.fields if form[name].value() is not None}
    data = {k: ("on" if v is True else v) for k, v in data.items() if v is not False}
    data.update(changes)
    data = {k: v for k, v in data.items() if v is not False}
    return client.post(url, data, follow=True)


def link_in(response) -> str:
    [text] = [str(m) for m in response.context["messages"] if "queued" in str(m)]
    return text.split('href="')[1].split('"')[0].replace("&amp;", "&")


def test_an_admin_save_names_the_user_on_every_job_it_causes(start_worker):
    # Given five bundles using a battery, an operator, and a worker
    battery = make_variant(price="10.00", sku="BATT-1")
    bundles = [make_bundle(components=[(battery, 1)], name=f"Kit {i}") for i in range(5)]
    Job.objects.all().delete()
    operator = User.objects.create_superuser("door-e2e", "op@example.com", "pw")
    client = Client()
    client.force_login(operator)
    start_worker("--logging-level", "WARNING")

    # When they raise its price in the admin
    response = save_variant(client, battery, price="12.00")
    # Then the fan-out and the three batches it opens (2 + 2 + 1 bundles) all name them
    wait_until(all_settled, timeout=60)
    fanout = Job.objects.get(kind="fanout")
    batches = list(Job.objects.filter(kind="recompute_batch"))
    assert len(batches) == 3
    assert {j.requested_by for j in [fanout, *batches]} == {operator}
    assert {b.parent_id for b in batches} == {fanout.pk}
    assert {j.state for j in [fanout, *batches]} == {JobState.COMPLETED}
    assert all(
        b.computed_price == 12 for b in Bundle.objects.filter(pk__in=[b.pk for b in bundles])
    )
    # And the save's message links, by a short filter, to the fan-out and its batches
    href = link_in(response)
    assert len(href) < 100 and "id__in" not in href and f"caused_by={fanout.pk}" in href
    listed = {str(j.pk) for j in client.get(href).context["cl"].result_list}
    assert listed == {str(fanout.pk), *(str(b.pk) for b in batches)}

    # When they rename its SKU and disable it: reindexes, a recompute and the safety check
    Job.objects.all().delete()
    response = save_variant(client, battery, sku="BATT-2", enabled=False)
    wait_until(all_settled, timeout=60)
    caused = list(Job.objects.all())
    kinds = sorted({j.kind for j in caused})
    assert kinds == ["consistency_check", "fanout", "recompute_batch"], kinds
    assert {j.requested_by for j in caused} == {operator}, [
        (j.kind, j.requested_by) for j in caused
    ]
    href = link_in(response)
    listed = {str(j.pk) for j in client.get(href).context["cl"].result_list}
    assert listed == {str(j.pk) for j in caused}

    # When only the name changes (search shows it, prices stand): one reindex per bundle
    Job.objects.all().delete()
    save_variant(client, battery, name="Battery, renamed")
    wait_until(all_settled, timeout=60)
    reindexes = list(Job.objects.filter(kind="reindex"))
    assert len(reindexes) == 5
    assert {j.requested_by for j in Job.objects.all()} == {operator}
    assert {j.parent_id for j in reindexes} == {Job.objects.get(kind="fanout").pk}


BULK = """
mutation { bulkRecomputeBundles(bundleIds: [%s], batchSize: 2) { jobIds bulkJobId batchCount } }
"""


def test_a_graphql_token_caller_is_named_on_the_bulk_job_and_every_batch(start_worker):
    # Given four bundles, a token user, and a worker
    bundles = [make_bundle(name=f"Api kit {i}") for i in range(4)]
    Job.objects.all().delete()
    caller = User.objects.create_superuser("api-e2e", "api@example.com", "pw")
    _, key = api_token_create(username=caller.username, name="e2e")
    start_worker("--logging-level", "WARNING")
    # When they ask for a bulk recompute over GraphQL
    ids = ", ".join(f'"{b.pk}"' for b in bundles)
    body = Client().post(
        "/graphql/",
        data=json.dumps({"query": BULK % ids}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {key}",
    )
    payload = json.loads(body.content)["data"]["bulkRecomputeBundles"]
    assert payload["batchCount"] == 2
    # Then the bulk job and both batches complete, each naming the caller
    wait_until(all_settled, timeout=60)
    caused = list(Job.objects.all())
    assert len(caused) == 3
    assert {j.requested_by for j in caused} == {caller}
    assert {j.state for j in caused} == {JobState.COMPLETED}
    assert {str(j.pk) for j in caused if j.parent_id} == set(payload["jobIds"])
