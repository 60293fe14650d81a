"""The jobs list's search (``selectors.job_search_filter``): few matches are listed by their
ids and sorted without the created_at index walk, many fall back to the plain filter; both
give the same rows in the same order as the plain filter."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from jobs import selectors
from jobs.models import Job

pytestmark = [pytest.mark.django_db]


@pytest.fixture
def ledger():
    now = timezone.now()
    Job.objects.bulk_create(
        Job(
            id=uuid.uuid4(),
            queue="bundle-recompute",
            kind="recompute",
            trigger="signal",
            target_type="bundle",
            target_id=str(i % 7),
            target_label=f"Bundle {i % 7}",
            created_at=now,
        )
        for i in range(70)
    )
    # Distinct creation times so the order is checkable (bulk_create stamps auto_now_add).
    for n, pk in enumerate(Job.objects.values_list("pk", flat=True)):
        Job.objects.filter(pk=pk).update(created_at=now - timedelta(minutes=n))


def plain(term: str) -> list:
    base = Job.objects.order_by("-created_at", "-pk")
    return list(base.filter(selectors.job_search_q(term=term)).values_list("pk", flat=True))


@pytest.mark.parametrize("cap", [2000, 5])  # by ids; too many for ids: the plain filter
def test_search_lists_the_same_jobs_newest_first_either_way(ledger, monkeypatch, cap):
    monkeypatch.setattr(selectors.search, "SEARCH_IDS_MAX", cap)
    base = Job.objects.order_by("-created_at", "-pk")
    found = selectors.job_search_filter(base, term="Bundle 3")
    assert list(found.values_list("pk", flat=True)) == plain("Bundle 3")
    assert found.count() == 10
    # by ids, the created_at ordering is an expression its index cannot serve
    assert ("COALESCE" in str(found.query)) is (cap == 2000)


def test_search_keeps_the_lists_chosen_order_and_filters(ledger):
    base = Job.objects.filter(target_id="3").order_by("created_at", "pk")
    found = selectors.job_search_filter(base, term="Bundle")
    expected = list(base.values_list("pk", flat=True))
    assert list(found.values_list("pk", flat=True)) == expected
