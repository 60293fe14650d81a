"""Housekeeping of the ledger, one small module per job (Oban's plugins are the model):

* ``relay``: re-send rows RQ never got or lost;
* ``reconcile``: settle rows whose worker died;
* ``ledger_pass``: both under one Redis lock (``relay_and_reconcile``), and who runs it when;
* ``rq_view``: what RQ says about the deliveries (read by relay and reconcile);
* ``prune``: delete settled jobs older than the retention age.
"""
