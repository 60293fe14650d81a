"""The fingerprint of a failure: which error, raised from where in the project's own code.

Exception class + the frames of the project's own code (not site-packages, not the standard
library, not the jobs machinery that ran the handler), each as ``path:function`` — no line
numbers, so an edit elsewhere in a file keeps its group — plus the exception's message with
numbers, ids, addresses and quoted values masked. Hashed to a short hex key stored on the row.

Pure text in, text out: it reads a stored traceback, so the migration's backfill and the
runner give the same key for the same failure. It lives beside the runner (the lowest layer),
not in ``jobs.error_groups``, because the runner imports it and that package sits above the
job services it calls.
"""

from __future__ import annotations

import hashlib
import re
import sysconfig
from pathlib import Path

from django.conf import settings

# Length of the stored key (hex digits of a SHA-256): 64 bits, no collision at ledger sizes.
FINGERPRINT_LENGTH = 16

_FRAME = re.compile(r'^\s*File "(?P<path>[^"]+)", line \d+, in (?P<func>.+?)\s*$')
_CHAIN_MARKERS = (
    "During handling of the above exception, another exception occurred:",
    "The above exception was direct cause of the following exception:",
    "The above exception was the direct cause of the following exception:",
)
_EXC_LINE = re.compile(r"^(?P<cls>[A-Za-z_][\w.]*)(?::\s?(?P<msg>.*))?$")
# Masked in messages, most specific first: they vary between failures of the same kind.
_MASKS = (
    (re.compile(r"0x[0-9a-fA-F]+"), "<addr>"),
    (
        re.compile(
            r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"
        ),
        "<uuid>",
    ),
    (re.compile(r"\b[0-9a-fA-F]{16,}\b"), "<hex>"),
    (re.compile(r"'[^']*'|\"[^\"]*\""), "<str>"),
    (re.compile(r"\d+(?:\.\d+)?"), "<n>"),
)
_NOT_PROJECT = ("site-packages", "dist-packages", "<frozen", "<string>")
_JOBS_DIR = str(Path(__file__).resolve().parent)  # the ledger machinery: jobs/
_JOBS_PACKAGE = Path(_JOBS_DIR).name
_STDLIB_PATH = re.compile(r"/lib/python\d+(?:\.\d+)?/")  # any interpreter's standard library
_STDLIB = tuple(
    p for p in {sysconfig.get_paths().get("stdlib"), sysconfig.get_paths().get("platstdlib")} if p
)


def fingerprint(text: str, *, root: str | None = None) -> str:
    """The group key of a failed attempt, from its traceback text (or its message alone).

    ``root`` is the project's directory (``settings.BASE_DIR`` when None); frames under it are
    named relative to it, so checkouts in different places give the same key.
    """
    exc_class, message, frames = parse_failure(text, root=root)
    material = "\n".join([exc_class, *frames, normalise_message(message)])
    return hashlib.sha256(material.encode()).hexdigest()[:FINGERPRINT_LENGTH]


def parse_failure(text: str, *, root: str | None = None) -> tuple[str, str, list[str]]:
    """(exception class, message, project frames) of the last exception in ``text``."""
    text = text or ""
    for marker in _CHAIN_MARKERS:  # a chained traceback: the exception raised last counts
        if marker in text:
            text = text.rsplit(marker, 1)[1]
    lines = [line for line in text.strip().splitlines() if line.strip()]
    base = _project_root(root)
    frames = []
    for line in lines:
        match = _FRAME.match(line)
        if match and _is_project_frame(match["path"], base):
            frames.append(f"{_relative(match['path'], base)}:{match['func']}")
    exc_class, message = _exception_line(lines)
    return exc_class, message, frames


def normalise_message(message: str) -> str:
    """The message with what varies between failures of one kind masked (ids, numbers...)."""
    message = message.strip().splitlines()[0] if message.strip() else ""
    for pattern, mask in _MASKS:
        message = pattern.sub(mask, message)
    return message[:200]


def _exception_line(lines: list[str]) -> tuple[str, str]:
    # The last line that is not a frame or source line: "pkg.ExcType: message" or "ExcType".
    for line in reversed(lines):
        if line.startswith((" ", "\t", "Traceback ")):
            continue
        match = _EXC_LINE.match(line.split(": ", 1)[0])
        if match:
            cls = match["cls"].rsplit(".", 1)[-1]
            message = line.split(": ", 1)[1] if ": " in line else ""
            return cls, message
        return "Error", line  # a message with no class ("Worker died", say)
    return "Error", ""


def _is_project_frame(path: str, root: str) -> bool:
    """Under the project's directory (when known), and not an installed package, the standard
    library or the jobs machinery itself (the same frames in every failure, and they move when
    the runner is reshaped)."""
    if any(part in path for part in _NOT_PROJECT) or _STDLIB_PATH.search(path):
        return False
    if path.startswith(_STDLIB) or path.startswith(_JOBS_DIR + "/"):
        return False
    if root:
        inside = path.startswith(root.rstrip("/") + "/")
        return inside and not _relative(path, root).startswith(_JOBS_PACKAGE + "/")
    return True


def _project_root(root: str | None) -> str:
    if root is not None:
        return root
    try:
        return str(getattr(settings, "BASE_DIR", "") or "")
    except Exception:  # settings not configured (a script): name frames by file and folder
        return ""


def _relative(path: str, root: str) -> str:
    if root and path.startswith(root.rstrip("/") + "/"):
        return path[len(root.rstrip("/")) + 1 :]
    return "/".join(Path(path).parts[-2:])  # outside the project: the file and its folder
