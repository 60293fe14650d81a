"""The import contracts in pyproject.toml ([tool.importlinter]) hold: jobs knows nothing of
bundles or config, api sits below the domains, and jobs' and bundles' own modules form layers."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXPECTED_CONTRACTS = {
    "jobs is a reusable app: it imports neither bundles nor config",
    "api is the GraphQL plumbing below the domains: it imports neither jobs nor bundles",
    "only the domains' graphql packages import api",
    "jobs' modules form layers (no cycles): doors over services over the ledger core",
    "the runner's steps form layers: entry points over the handover over one attempt's steps",
    "bundles' modules form layers: doors over handlers over services over requests over the "
    "engine over the pure rules over models",
}


def test_the_import_contracts_are_all_configured():
    # Removing a contract is not how the check passes.
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    names = {c["name"] for c in config["tool"]["importlinter"]["contracts"]}
    assert names == EXPECTED_CONTRACTS


def test_lint_imports_passes():
    lint_imports = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run(
        [str(lint_imports), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert f"Contracts: {len(EXPECTED_CONTRACTS)} kept, 0 broken." in done.stdout


def test_every_module_of_jobs_has_a_layer():
    # A module left out of the layers contract is unchecked: a cycle through it would pass.
    layered = _layered("jobs")
    # A package split across layers ("scheduling.loop", …) is layered module by module: each
    # of its modules must be named.
    split = {name.split(".")[0] for name in layered if "." in name}
    for package in split:
        named = {name.split(".", 1)[1] for name in layered if name.startswith(f"{package}.")}
        inside = {p.stem for p in (ROOT / "jobs" / package).glob("*.py") if p.stem != "__init__"}
        assert inside - named == set(), package
    assert _modules(ROOT / "jobs") - layered - split == set()


def test_every_module_of_bundles_has_a_layer():
    assert _modules(ROOT / "bundles") - _layered("bundles") == set()


def test_every_module_of_the_runner_has_a_layer():
    assert _modules(ROOT / "jobs" / "runner") - _layered("jobs.runner") == set()


def _layered(container: str) -> set[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    [layers] = [
        c["layers"]
        for c in config["tool"]["importlinter"]["contracts"]
        if c["type"] == "layers" and c["containers"] == [container]
    ]
    return {name.strip() for layer in layers for name in layer.split("|")}


def _modules(package: Path) -> set[str]:
    return {
        p.stem if p.is_file() else p.name
        for p in package.iterdir()
        if (p.suffix == ".py" and p.stem != "__init__")
        or (p.is_dir() and (p / "__init__.py").exists() and p.name not in {"migrations"})
    }
