"""The README's "Developing" section is true: its commands exist, its imports resolve, its markers
are registered, and the collection hook marks real-process tests ``slow`` by itself."""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import _process_helpers, _starts_a_process
from tests.support import ROOT


def developing_section() -> str:
    readme = (ROOT / "README.md").read_text()
    match = re.search(r"^## Developing\n(.*?)^## ", readme, flags=re.S | re.M)
    assert match, "README.md has no '## Developing' section"
    return match.group(1)


def test_the_section_names_the_fast_subset_the_checks_and_the_benchmarks():
    text = developing_section()
    for command in ('./bin/test -m "not slow"', "./bin/test -m slow", "bin/check", "bin/bench"):
        assert command in text, command
    for script in ("bin/test", "bin/check", "bin/bench", ".ci/run"):
        path = ROOT / script
        assert path.is_file() and os.access(path, os.X_OK), f"{script} is not an executable"
    # CI runs the checks before the suites.
    assert "bin/check" in (ROOT / ".ci/run").read_text()


def test_every_import_in_the_section_resolves():
    imports = re.findall(r"^from ([\w.]+) import ([\w, ]+)$", developing_section(), flags=re.M)
    assert imports, "no imports in the Developing section"
    names = set()
    for module_name, listed in imports:
        module = importlib.import_module(module_name)
        for name in (n.strip() for n in listed.split(",")):
            assert hasattr(module, name), f"{module_name} has no {name}"
            names.add(name)
    assert {"job_kind", "register_target", "register_request"} <= names


def test_the_markers_it_names_are_registered(pytestconfig):
    registered = {line.split(":")[0].strip() for line in pytestconfig.getini("markers")}
    named = set(re.findall(r"`(slow|browser|e2e|redis)`", developing_section()))
    assert named == {"slow", "browser", "e2e", "redis"}
    assert named <= registered


def test_code_that_starts_a_process_is_found_through_the_modules_helpers(tmp_path):
    # Spelled in pieces, or this very test would count as starting a process.
    spawn, popen = "subprocess" + ".", "Popen"
    module = tmp_path / "test_sample.py"
    module.write_text(
        "import subprocess\n"
        f"def launch():\n    return {spawn}{popen}(['true'])\n"
        "class Runner:\n    def go(self):\n        return launch()\n"
        "def plain():\n    return 1\n"
    )
    assert _process_helpers(str(module)) == {"launch", "Runner"}
    assert _starts_a_process("def test_x():\n    Runner().go()\n", str(module))
    assert _starts_a_process(f"def test_y():\n    {spawn}run(['true'])\n", str(module))
    assert not _starts_a_process("def test_z():\n    assert plain() == 1\n", str(module))


def _collected(*args: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode in (0, 5), done.stdout + done.stderr  # 5: nothing collected
    return [line for line in done.stdout.splitlines() if "::" in line]


def test_browser_and_e2e_tests_are_left_out_of_the_fast_subset():
    # The README's own commands and the demo supervisor's tests start bin/run: slow.
    assert _collected("-m", "not slow", "tests/e2e", "tests/browser") == []
    slow = _collected("-m", "slow and e2e", "tests/e2e")
    assert any(Path(item.split("::")[0]).name == "test_readme_commands.py" for item in slow)
    assert any(Path(item.split("::")[0]).name == "test_demo_supervisor.py" for item in slow)
    assert _collected("-m", "browser and not slow", "tests/browser") == []


def test_the_process_fixtures_exist():
    # A renamed fixture would silently stop marking its tests slow.
    from pytest_django import fixtures

    from tests.conftest import PROCESS_FIXTURES

    conftests = "".join(p.read_text() for p in (ROOT / "tests").rglob("conftest.py"))
    for name in PROCESS_FIXTURES - {"live_server"}:
        assert re.search(rf"^def {name}\(", conftests, flags=re.M), name
    assert hasattr(fixtures, "live_server")


def test_every_test_named_slow_by_name_still_exists():
    from tests.conftest import SLOW_BY_NAME

    sources = "".join(p.read_text() for p in (ROOT / "tests").rglob("test_*.py"))
    for name in SLOW_BY_NAME:
        assert re.search(rf"^def {name}\(", sources, flags=re.M), f"{name} is gone: update the set"
