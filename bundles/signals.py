"""Receivers that turn catalog changes into jobs. Filled in by the jobs work (issue 3)."""


def connect() -> None:
    """Connect the receivers (with dispatch_uid); called from BundlesConfig.ready()."""
