"""The job page names the targets a job linked without a label (a batch's bundles) through
their target type: a bundle's name and SKU, not "bundle 30"."""

from __future__ import annotations

import pytest
from django.urls import reverse

from jobs.models import JobTarget
from tests.admin.conftest import make_job
from tests.factories import make_bundle

pytestmark = pytest.mark.django_db


def test_unlabeled_bundle_links_read_as_name_and_sku(superuser_client):
    # Given a batch job linked to a bundle by id only, and to a type with no describe
    bundle = make_bundle(name="Weekend camping kit")
    job = make_job(kind="recompute_batch", target_type="", target_id="", target_label="Batch")
    JobTarget.objects.create(job=job, target_type="bundle", target_id=str(bundle.pk))
    JobTarget.objects.create(job=job, target_type="scope", target_id="active")
    # When its page is opened
    html = superuser_client.get(reverse("admin:jobs_job_change", args=[job.pk])).content.decode()
    # Then the bundle reads as its name and SKU, the other as its type's label and id
    linked = html.split("field-linked_targets")[1].split("field-")[0]
    assert f"Weekend camping kit ({bundle.shell_variant.sku})" in linked
    assert "Scope active" in linked
    assert f"bundle {bundle.pk}" not in linked
