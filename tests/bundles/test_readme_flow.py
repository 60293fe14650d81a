"""The README's file-by-file path of a variant's price change is true: every ``file``
``function`` it names exists, it names at most ten files, and a real change (a save, then the
workers) calls those functions in that order."""

from __future__ import annotations

import importlib
import re
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from bundles.models import Bundle
from tests.bundles.jobs_support import run_burst_worker
from tests.factories import make_bundle, make_variant

ROOT = Path(__file__).resolve().parents[2]
PARAGRAPH_START = "How a variant's price change flows, file by file"
PAIR = re.compile(r"`([\w/]+\.py)`\s+`(\w+)`")


def readme_path() -> list[tuple[str, str]]:
    """The (file, function) pairs of the paragraph, in the order the README names them."""
    text = (ROOT / "README.md").read_text()
    start = text.index(PARAGRAPH_START)
    paragraph = text[start : text.index("\n\n", start)]
    return PAIR.findall(paragraph)


def test_the_readme_path_names_existing_functions_in_at_most_ten_files():
    path = readme_path()
    assert len(path) >= 10  # the paragraph was found and parsed
    assert len({file for file, _ in path}) <= 10
    for file, function in path:
        module = importlib.import_module(file.removesuffix(".py").replace("/", "."))
        assert callable(getattr(module, function, None)), f"{file} has no {function}"


@pytest.mark.django_db(transaction=True)
@pytest.mark.redis
def test_a_price_change_calls_the_readme_path_in_order(redis_conn, settings):
    settings.BUNDLES_FANOUT_DEBOUNCE_SECONDS = 0
    path = readme_path()
    wanted = set(path)
    # Given a bundle using a variant
    battery = make_variant(price="10.00")
    kit = make_bundle(components=[(battery, 2)])
    calls: list[tuple[str, str]] = []

    def record(frame, event, arg) -> None:
        if event == "call":
            code = frame.f_code
            try:
                file = Path(code.co_filename).resolve().relative_to(ROOT).as_posix()
            except ValueError:
                return
            if (file, code.co_name) in wanted:
                calls.append((file, code.co_name))

    # When its price changes through a save (what the admin's change form does) and the
    # workers run what it asked for
    sys.setprofile(record)
    try:
        battery.price = Decimal("12.50")
        battery.save()
        run_burst_worker()
    finally:
        sys.setprofile(None)

    # Then the bundle is right, and the README's functions ran in the README's order
    assert Bundle.objects.get(pk=kit.pk).computed_price == Decimal("25.00")
    position = 0
    for step in path:
        while position < len(calls) and calls[position] != step:
            position += 1
        assert position < len(calls), f"{step} not called after the steps before it: {calls}"
        position += 1
