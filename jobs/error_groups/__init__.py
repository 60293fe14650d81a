"""Error groups: failed jobs grouped by a fingerprint of their last error.

``jobs.error_fingerprint`` makes the key (pure, in the lowest layer: the runner calls it when
it records a failed attempt); ``selectors`` read the groups; ``services`` retry or discard a
whole group through the job services (the same permissions and audit entries as one job);
``views`` are System → Jobs → Errors.
"""
