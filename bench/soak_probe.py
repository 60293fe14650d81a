"""Imported into the soak's workers (``run_worker --import bench.soak_probe``): every handler
run appends (job, attempt, pid, start, end) to the file ``SOAK_RUNS_FILE`` names, so the soak
can count double runs — two runs of one attempt — afterwards. A file, not Redis: the soak
empties Redis halfway. Benchmark-only; the project never imports it."""

from __future__ import annotations

import json
import os
import time

from jobs.runner import attempt

_run_handler = attempt.run_handler


def _recorded(job, rq_job):
    start = time.time()
    try:
        return _run_handler(job, rq_job)
    finally:
        line = json.dumps([str(job.pk), job.attempts, os.getpid(), start, time.time()]) + "\n"
        with open(os.environ["SOAK_RUNS_FILE"], "a", encoding="utf-8") as runs:
            runs.write(line)  # one write of a short line in append mode: not interleaved


attempt.run_handler = _recorded
