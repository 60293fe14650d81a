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


def _unlayered(package: str) -> set[str]:
    """The modules and packages of ``package`` that its layers contract leaves out."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    [layers] = [
        c["layers"]
        for c in config["tool"]["importlinter"]["contracts"]
        if c["type"] == "layers" and c["containers"] == [package]
    ]
    layered = {name.strip() for layer in layers for name in layer.split("|")}
    modules = {
        p.stem if p.is_file() else p.name
        for p in (ROOT / package).iterdir()
        if (p.suffix == ".py" and p.stem != "__init__")
        or (p.is_dir() and (p / "__init__.py").exists() and p.name not in {"migrations"})
    }
    return modules - layered


def test_every_module_of_jobs_has_a_layer():
    # A module left out of the layers contract is unchecked: a cycle through it would pass.
    assert _unlayered("jobs") == set()


def test_every_module_of_bundles_has_a_layer():
    assert _unlayered("bundles") == set()
