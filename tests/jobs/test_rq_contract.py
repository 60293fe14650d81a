"""RQ's internals the project relies on (``jobs.rq_compat``), checked against the installed RQ.

Each failure names the method or attribute that moved and what the door expected, so an RQ
upgrade that would break the worker silently breaks here loudly. A second check keeps every
such name inside the door: no other module of the repository names them in its code.
"""

from __future__ import annotations

import ast
import inspect
import io
import tokenize
from pathlib import Path

import pytest
from rq import worker_registration
from rq.worker import SimpleWorker, Worker

from jobs import rq_compat
from jobs.worker import JobsSimpleWorker, JobsWorker

ROOT = Path(__file__).resolve().parents[2]
DOOR = ROOT / "jobs" / "rq_compat.py"
# Code that may name RQ's internals: the door and this test.
ALLOWED = {DOOR, Path(__file__).resolve()}
SOURCE_DIRS = ("jobs", "bundles", "api", "config", "bench", "bin", "tests")

# RQ methods with common names that tests may call: only their *definition* (an override) is
# kept in the door.
OVERRIDE_ONLY = {"heartbeat", "unsubscribe", "register_death", "run_maintenance_tasks"}
# Names of RQ internals that only the door may use in code at all (comments and docstrings may
# mention them): the other overridden methods, private attributes, an internal module.
PRIVATE_NAMES = {
    *(rq_compat.OVERRIDDEN.keys() - OVERRIDE_ONLY),
    *rq_compat.PRIVATE_ATTRIBUTES,
    "worker_registration",
    "REDIS_WORKER_KEYS",
    "monitor_work_horse",
    "_horse_status",
}


@pytest.mark.parametrize("name", sorted(rq_compat.OVERRIDDEN))
def test_every_overridden_rq_method_keeps_the_signature_the_door_was_written_for(name):
    method = getattr(Worker, name, None)
    assert method is not None, (
        f"rq {_rq_version()} has no Worker.{name}: jobs.rq_compat overrides it "
        f"(checked against rq {', '.join(rq_compat.CHECKED_RQ_VERSIONS)})"
    )
    found = str(inspect.signature(method))
    assert found == rq_compat.OVERRIDDEN[name], (
        f"rq {_rq_version()} changed Worker.{name}: expected {name}"
        f"{rq_compat.OVERRIDDEN[name]}, found {name}{found} (jobs.rq_compat overrides it)"
    )


@pytest.mark.parametrize("worker_class", [Worker, SimpleWorker])
@pytest.mark.parametrize(
    "name", sorted({*rq_compat.PRIVATE_ATTRIBUTES, *rq_compat.PUBLIC_ATTRIBUTES})
)
def test_a_real_worker_has_every_attribute_the_door_reads(redis_conn, worker_class, name):
    worker = worker_class(["rq-contract"], connection=redis_conn)
    assert hasattr(worker, name), (
        f"rq {_rq_version()}: a {worker_class.__name__} no longer has the attribute {name!r} "
        "that jobs.rq_compat reads"
    )


def test_rqs_worker_registry_module_keeps_its_key_and_register_function():
    assert getattr(worker_registration, "REDIS_WORKER_KEYS", None) == "rq:workers", (
        "rq.worker_registration.REDIS_WORKER_KEYS moved or changed "
        "(jobs.rq_compat.WORKERS_REGISTRY_KEY is built on it)"
    )
    register = getattr(worker_registration, "register", None)
    assert register is not None, "rq.worker_registration.register is gone (jobs.rq_compat)"
    assert list(inspect.signature(register).parameters) == ["worker", "pipeline"], (
        f"rq.worker_registration.register{inspect.signature(register)}: expected "
        "register(worker, pipeline=None) (jobs.rq_compat._register_again)"
    )


def test_the_workers_go_through_the_door_for_every_override():
    for cls, door in (
        (JobsWorker, rq_compat.ForkingWorkerDoor),
        (JobsSimpleWorker, rq_compat.RegisteredWorkerDoor),
    ):
        for name in rq_compat.OVERRIDDEN:
            owner = next((k for k in cls.__mro__ if name in vars(k)), None)
            if owner is None:  # SimpleWorker forks no horse
                continue
            where = owner.__module__
            assert where == "jobs.rq_compat" or where.startswith("rq."), (
                f"{cls.__name__}.{name} is overridden in {where}, not in the door"
            )
        assert issubclass(cls, door)


def test_the_door_says_which_rq_versions_it_was_checked_against():
    for version in rq_compat.CHECKED_RQ_VERSIONS:
        assert version in (rq_compat.__doc__ or ""), version
    assert _rq_version() in rq_compat.CHECKED_RQ_VERSIONS, (
        f"rq {_rq_version()} is installed; jobs.rq_compat was checked against "
        f"{rq_compat.CHECKED_RQ_VERSIONS}: check it and add the version"
    )


def test_no_module_but_the_door_names_rqs_internals_in_its_code():
    offenders = []
    for path in _python_files():
        source = path.read_text(encoding="utf-8")
        for line, name in _names(source):
            if name in PRIVATE_NAMES:
                offenders.append(f"{path.relative_to(ROOT)}:{line}: {name}")
        for line, name in _methods(source):
            if name in OVERRIDE_ONLY:
                offenders.append(f"{path.relative_to(ROOT)}:{line}: def {name} (an override)")
    assert not offenders, "RQ internals outside jobs/rq_compat.py:\n" + "\n".join(offenders)


def _python_files():
    for folder in SOURCE_DIRS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            if path.resolve() not in ALLOWED and "migrations" not in path.parts:
                yield path


def _names(source: str):
    """(line, name) for every name in the code (comments and strings aside)."""
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.NAME:
            yield token.start[0], token.string


def _methods(source: str):
    """(line, name) of every method defined in a class built on a worker class."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ClassDef) and any("Worker" in ast.unparse(b) for b in node.bases):
            for item in node.body:
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                    yield item.lineno, item.name


def _rq_version() -> str:
    import rq

    return rq.__version__
