"""The search box: a term matched against ids, targets, dedup keys, errors and messages, fast
at any ledger size on PostgreSQL."""

from __future__ import annotations

import contextlib
import uuid

from django.db.models import Exists, OuterRef, Q, QuerySet
from django.db.models.functions import Coalesce

from jobs.models import Job, JobTarget
from jobs.selectors.ids import id_prefix_range
from jobs.target_types import matching_target_ids

# How many linked jobs a search term may match before the search uses EXISTS instead of ids.
SEARCH_TARGET_JOBS_MAX = 5000


def job_search_q(*, term: str) -> Q:
    """The filter for a search box: job id (full or its first 8 characters), a target (its
    label, or whatever its registered type's search matches, e.g. a bundle's name or SKU),
    dedup key, error text or stage message."""
    term = term.strip()
    q = (
        Q(target_label__icontains=term)
        | Q(dedup_key__icontains=term)
        | Q(errors__icontains=term)
        | Q(progress_message__icontains=term)
    )
    with contextlib.suppress(ValueError):
        q |= Q(pk=uuid.UUID(term))
    hex_part = term.replace("-", "").lower()
    if 4 <= len(hex_part) <= 12 and all(c in "0123456789abcdef" for c in hex_part):
        # The list shows the first 8 characters of the id: let people paste those. A range on
        # the primary key (not LIKE on its text) so PostgreSQL answers it from the index.
        low, high = id_prefix_range(hex_part)
        q |= Q(pk__gte=low, pk__lte=high)
    for target_type, ids in matching_target_ids(term).items():
        links = JobTarget.objects.filter(target_type=target_type, target_id__in=ids)
        # A short id list ORs with the indexed LIKEs above (PostgreSQL bitmap-ORs them); an
        # EXISTS in an OR makes it read every row. Past the cap, EXISTS: slower, still right.
        job_ids = list(links.values_list("job_id", flat=True)[: SEARCH_TARGET_JOBS_MAX + 1])
        if len(job_ids) <= SEARCH_TARGET_JOBS_MAX:
            q |= Q(pk__in=job_ids)
        else:
            q |= Q(Exists(links.filter(job=OuterRef("pk"))))
    return q


# A search matching at most this many jobs is listed by their ids (see job_search_filter).
SEARCH_IDS_MAX = 2000


def job_search_filter(qs: QuerySet[Job], *, term: str) -> QuerySet[Job]:
    """``qs`` narrowed by the search box, fast at any ledger size on PostgreSQL.

    A term that matches few jobs spread over the whole ledger (one bundle's jobs) is the
    planner's trap: it walks the created_at index newest first, expecting a match soon, and
    reads 100,000s of rows. So the matching ids (at most :data:`SEARCH_IDS_MAX`) are fetched
    first, from the trigram and link-table indexes, and those rows are sorted by an expression
    equal to ``created_at`` that its index cannot produce (``ORDER BY created_at + 0``, the
    classic way to keep PostgreSQL off that walk). A term that matches more is dense enough
    for the newest-first walk to find a page quickly. ``qs``' ordering is kept.
    """
    q = job_search_q(term=term)
    ids = list(qs.filter(q).order_by().values_list("pk", flat=True)[: SEARCH_IDS_MAX + 1])
    if len(ids) > SEARCH_IDS_MAX:
        return qs.filter(q)
    unindexed = {
        "created_at": Coalesce("created_at", "created_at").asc(),
        "-created_at": Coalesce("created_at", "created_at").desc(),
    }
    ordering = [unindexed.get(o, o) if isinstance(o, str) else o for o in qs.query.order_by]
    return qs.filter(pk__in=ids).order_by(*ordering)
