"""Every command the README shows, typed in a "second terminal" while the demo runs.

The demo starts as ``bin/run`` starts it (``python -m config.demo``, default 240 bundles, its
own embedded Redis, a temporary VAR_DIR). Each command then runs in a fresh process whose
environment has no ``SECRET_KEY``, ``REDIS_URL`` or ``DATABASE_URL`` — only the VAR_DIR the
demo got, as a terminal in the same checkout would have it — and must reach the demo's
database, Redis and workers with the exit code and output the README implies.

The commands are read from the README itself, so a changed README is tested as written. One
order differs from the page: ``api_token revoke 1`` runs after the curl examples that use the
token (the README lists it with its siblings; revoking first would make them fail).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from config.embedded_redis import free_port
from tests.e2e.test_demo import stop_demo, wait_for

BASE_DIR = Path(__file__).resolve().parents[2]
README = (BASE_DIR / "README.md").read_text()
LONG_RUNNING = ("run_worker", "run_scheduler")


def readme_block(after: str, fence: str) -> str:
    """The first ``fence`` code block after the text ``after``."""
    start = README.index(f"```{fence}\n", README.index(after)) + len(fence) + 4
    return README[start : README.index("```", start)]


def readme_manage_commands() -> list[str]:
    """The ``python manage.py ...`` lines of the Commands list, without their comments."""
    block = readme_block("**Commands**", "sh")
    return [line.split("  #")[0].strip() for line in block.splitlines() if line.strip()]


def console_commands(block: str) -> list[tuple[str, str]]:
    """(command, expected output) pairs from a ``console`` block: ``$ `` lines, with ``\\``
    continuation lines joined, and the lines up to the next ``$ `` as their output."""
    pairs: list[tuple[str, str]] = []
    lines = block.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.startswith("$ "):
            i += 1
            continue
        command = line[2:]
        while command.endswith("\\"):
            i += 1
            command = command[:-1] + " " + lines[i].strip()
        i += 1
        output = []
        while i < len(lines) and not lines[i].startswith("$ "):
            output.append(lines[i])
            i += 1
        pairs.append((command, "\n".join(output)))
    return pairs


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("readme-demo")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "DATABASE_URL"}}
    env.update(VAR_DIR=str(tmp_path / "var"), DEMO_TEST_MARKER=str(tmp_path))
    env.pop("SECRET_KEY", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "config.demo", "--port", str(port)],
        cwd=BASE_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True).start()
    try:
        wait_for(
            lambda: any("Login:" in ln for ln in lines),
            timeout=300,
            what="the demo to print its login",
        )
        yield {"port": port, "var": tmp_path / "var", "lines": lines}
    finally:
        stop_demo(proc, str(tmp_path))


def terminal_env(var_dir: Path) -> dict[str, str]:
    """A second terminal in this checkout: none of our settings, the demo's VAR_DIR."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"SECRET_KEY", "REDIS_URL", "DATABASE_URL", "DEBUG", "ALLOW_INSECURE_KEY"}
        and not k.startswith("TEST_")
    }
    env["VAR_DIR"] = str(var_dir)
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"  # `python` = the venv's
    return env


def run(command: str, env: dict[str, str], timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", "-c", command],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_the_login_box_comes_after_the_workers_start_up_lines(demo):
    lines = list(demo["lines"])
    login = next(i for i, ln in enumerate(lines) if "Login:" in ln)
    listening = [i for i, ln in enumerate(lines) if "Listening on" in ln]
    assert len(listening) == 6, lines  # four queues, two bulk and two recompute workers
    assert max(listening) < login
    assert not any("Traceback" in ln or "!!" in ln for ln in lines[:login]), lines


def test_readme_commands_work_as_typed_next_to_the_demo(demo):
    env = terminal_env(demo["var"])
    commands = {shlex.split(c)[2]: c for c in readme_manage_commands()}
    assert set(commands) >= {
        "recompute_bundles",
        "reindex_bundles",
        "check_bundles",
        "jobs",
        "seed_demo",
        *LONG_RUNNING,
    }

    # recompute_bundles 12 13 --reason "supplier fix": queued for the demo's workers
    done = run(commands["recompute_bundles"], env)
    assert done.returncode == 0, done.stderr
    assert "Enqueued" in done.stdout and "Traceback" not in done.stderr
    job_id = re.search(r"jobs show ([0-9a-f-]{36})", done.stdout).group(1)
    shown = wait_for(
        lambda: (
            (r := run(f"python manage.py jobs show {job_id}", env)).returncode == 0
            and "completed" in r.stdout
            and r
        ),
        timeout=120,
        what="the recompute to complete in the demo's workers",
    )
    assert "supplier fix" in shown.stdout

    # reindex_bundles --all --wait: the bar moves, the job completes
    done = run(commands["reindex_bundles"], env)
    assert done.returncode == 0, done.stderr
    assert "completed." in done.stdout

    # check_bundles --scope broken --fix --notify
    done = run(commands["check_bundles"], env)
    assert done.returncode == 0, done.stderr
    assert "Enqueued" in done.stdout

    # jobs list --state failed
    done = run(commands["jobs"], env)
    assert done.returncode == 0, done.stderr

    # run_worker and run_scheduler start against the demo's Redis and stop on SIGTERM
    for name, ready in (("run_worker", "Listening on"), ("run_scheduler", "nightly-consistency")):
        proc = subprocess.Popen(
            ["bash", "-c", f"exec {commands[name]}"],
            cwd=BASE_DIR,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        out: list[str] = []
        threading.Thread(target=lambda p=proc, o=out: o.extend(p.stdout), daemon=True).start()
        try:
            wait_for(lambda o=out, r=ready: any(r in ln for ln in o), timeout=120, what=name)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
        assert not any("Traceback" in ln for ln in out), "".join(out)


def test_readme_graphql_examples_answer_as_shown(demo):
    env = terminal_env(demo["var"])
    token_block = console_commands(readme_block("Scripts use a per-user API token", "console"))
    curl_block = console_commands(readme_block(token_block[-1][0], "console"))
    (create, create_out), (listing, _), (revoke, _) = token_block
    readme_token = create_out.splitlines()[-1]

    # api_token create: the first token of a fresh demo is number 1, as shown
    done = run(create, env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[:2] == create_out.splitlines()[:2]
    token = done.stdout.splitlines()[2].strip()
    assert token.startswith("bj_") and token != readme_token
    done = run(listing, env)
    assert done.returncode == 0 and "README example" in done.stdout and token not in done.stdout

    # The curl examples, with this demo's token, port and job id in place of the README's
    (set_token, _), (mutation, mutation_out), (query, query_out) = curl_block
    readme_job_id = json.loads(mutation_out)["data"]["recomputeBundle"]["jobId"]
    prefix = set_token.replace(readme_token, token) + "; "
    to_port = lambda cmd: cmd.replace("127.0.0.1:8000", f"127.0.0.1:{demo['port']}")  # noqa: E731
    done = run(prefix + to_port(mutation), env)
    answer = json.loads(done.stdout)
    job_id = answer["data"]["recomputeBundle"]["jobId"]
    expected = json.loads(mutation_out)
    expected["data"]["recomputeBundle"]["jobId"] = job_id
    assert answer == expected

    def completed():
        reply = json.loads(run(prefix + to_port(query.replace(readme_job_id, job_id)), env).stdout)
        return reply["data"]["job"]["state"] == "completed" and reply

    reply = wait_for(completed, timeout=120, what="the GraphQL recompute to complete")
    assert reply == json.loads(query_out)  # bundle 1 of the default demo, as the README shows

    # /health/ as the Health section shows it: every part up
    ((health, health_out),) = console_commands(readme_block("## Health", "console"))
    reply = wait_for(
        lambda: (r := run(to_port(health), env)).stdout and json.loads(r.stdout),
        timeout=60,
        what="/health/ to answer",
    )
    assert reply == json.loads(health_out)

    # api_token revoke 1: the token no longer opens GraphQL
    done = run(revoke, env)
    assert done.returncode == 0, done.stderr
    refused = json.loads(run(prefix + to_port(mutation), env).stdout)
    assert refused["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


def test_seed_reset_from_the_readme_keeps_the_example_ids(demo):
    env = terminal_env(demo["var"])
    command = next(c for c in readme_manage_commands() if " seed_demo " in c)
    done = run(command, env, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "Seeded 1000 bundles" in done.stdout
    shown = run("python manage.py recompute_bundles 1 12 13 --wait", env)
    assert shown.returncode == 0, shown.stderr


def test_outside_the_demo_a_command_fails_in_one_line(tmp_path):
    var = tmp_path / "var"
    var.mkdir()
    # a file left behind by a demo that is gone is not trusted
    (var / "demo-env.json").write_text(json.dumps({"pid": 2**22 + 1, "env": {"X": "1"}}))
    done = run("python manage.py jobs list", terminal_env(var), timeout=120)
    assert done.returncode == 1
    assert done.stdout == ""
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert done.stderr.startswith("manage.py: Set SECRET_KEY")
    assert "./bin/run" in done.stderr
