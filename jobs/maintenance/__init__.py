"""Housekeeping of the ledger, one small module per job (Oban's plugins are the model):

* ``relay``: re-send rows RQ never got or lost, and (``reconcile``) settle rows whose worker
  died; both under one Redis lock, every minute (``relay_and_reconcile``);
* ``prune``: delete settled jobs older than the retention age.
"""
