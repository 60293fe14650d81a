"""The fingerprint of a failure: exception class + the project's own frames, normalised."""

from __future__ import annotations

from jobs.error_fingerprint import fingerprint, normalise_message, parse_failure

ROOT = "/srv/shop"


def traceback_text(
    *, line: int, message: str, cls: str = "ValueError", func: str = "fanout"
) -> str:
    return (
        "Traceback (most recent call last):\n"
        f'  File "{ROOT}/jobs/runner.py", line 580, in _run_handler\n'
        "    result = kind.run(ctx, dict(job.payload or {}))\n"
        f'  File "{ROOT}/bundles/handlers.py", line {line}, in {func}\n'
        "    bundle_ids = find(ids)\n"
        '  File "/usr/lib/python3.11/json/decoder.py", line 337, in decode\n'
        "    obj, end = self.raw_decode(s, idx=_w(s, 0).end())\n"
        f'  File "{ROOT}/.venv/lib/python3.11/site-packages/redis/client.py", line 9, in get\n'
        "    return self.execute_command('GET', name)\n"
        f"{cls}: {message}\n"
    )


def test_line_numbers_ids_and_numbers_do_not_split_a_group():
    a = traceback_text(line=12, message="bundle 17 at 0x7f3a2b not found ('SKU-1')")
    b = traceback_text(line=40, message="bundle 9000 at 0x55aa01 not found ('SKU-22')")
    assert fingerprint(a, root=ROOT) == fingerprint(b, root=ROOT)


def test_another_exception_class_function_or_message_makes_another_group():
    base = fingerprint(traceback_text(line=1, message="x 1"), root=ROOT)
    assert fingerprint(traceback_text(line=1, message="x 1", cls="KeyError"), root=ROOT) != base
    assert fingerprint(traceback_text(line=1, message="x 1", func="recompute"), root=ROOT) != base
    assert fingerprint(traceback_text(line=1, message="y 1"), root=ROOT) != base


def test_only_the_projects_own_frames_count_and_the_checkout_path_does_not():
    cls, message, frames = parse_failure(traceback_text(line=3, message="m"), root=ROOT)
    # Neither the standard library, site-packages, nor the jobs machinery of this checkout.
    assert (cls, message) == ("ValueError", "m")
    assert frames == ["bundles/handlers.py:fanout"]
    elsewhere = traceback_text(line=3, message="m").replace(ROOT, "/home/ci/build")
    assert fingerprint(elsewhere, root="/home/ci/build") == fingerprint(
        traceback_text(line=3, message="m"), root=ROOT
    )


def test_a_chained_traceback_is_grouped_by_the_exception_raised_last():
    first = traceback_text(line=3, message="inner", cls="KeyError")
    chained = (
        first
        + "\nDuring handling of the above exception, another exception occurred:\n\n"
        + traceback_text(line=5, message="outer", cls="RuntimeError")
    )
    assert parse_failure(chained, root=ROOT)[:2] == ("RuntimeError", "outer")


def test_a_message_without_a_traceback_still_has_a_stable_key():
    assert fingerprint("Worker died (pid 4242)") == fingerprint("Worker died (pid 17)")
    assert normalise_message("job 3f2b1c2d-0000-4000-8000-00000000abcd gone") == "job <uuid> gone"
