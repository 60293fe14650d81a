"""How long the GraphQL limits take to refuse hostile documents, next to a normal query.

    DEBUG=1 .venv/bin/python bench/bench_graphql_limits.py

Goes through the real view (token-free, a staff user object on the request), so the figures
include graphene's request handling; no database or Redis is touched by a refused document.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("SECRET_KEY", "bench-not-a-secret")


def main() -> None:
    import django

    django.setup()
    from django.test import RequestFactory

    from api.views import ApiGraphQLView
    from tests.api.test_limits import aliases, nested_jobs

    view = ApiGraphQLView.as_view()
    staff = SimpleNamespace(is_authenticated=True, is_active=True, is_staff=True, pk=1)
    factory = RequestFactory()

    def request_ms(document: str, repeat: int = 20) -> tuple[float, int, str]:
        times, status, code = [], 0, ""
        for _ in range(repeat):
            request = factory.post(
                "/graphql/", json.dumps({"query": document}), content_type="application/json"
            )
            request.user = staff
            request._dont_enforce_csrf_checks = True
            start = time.perf_counter()
            response = view(request)
            times.append((time.perf_counter() - start) * 1000)
            status = response.status_code
            errors = json.loads(response.content).get("errors") or [{}]
            code = errors[0].get("extensions", {}).get("code", "ok")
        return statistics.median(times), status, code

    cases = [
        ("{ ping } (baseline, executes)", "{ ping }"),
        ("1,000 aliases of jobs(first: 100)", aliases(1000)),
        ("1,000 aliases of schedules", aliases(1000, "schedules { id }")),
        ("10-level job/parent/children nesting", nested_jobs(10)),
        ("30-level nesting", nested_jobs(30)),
        ("fragment bomb (10^6 if expanded)", _fragment_bomb()),
    ]
    print(f"{'document':42} {'size':>9} {'median ms':>10} {'x baseline':>10}  answer")
    baseline = None
    for label, document in cases:
        ms, status, code = request_ms(document)
        baseline = baseline or ms
        print(f"{label:42} {len(document):>8}B {ms:>10.2f} {ms / baseline:>10.1f}  {status} {code}")


def _fragment_bomb() -> str:
    fragments = ["fragment F0 on Job { id }"]
    for i in range(1, 7):
        fragments.append(f"fragment F{i} on Job {{ " + f"...F{i - 1} " * 10 + "}")
    return '{ job(id: "1") { ...F6 } } ' + " ".join(fragments)


if __name__ == "__main__":
    main()
