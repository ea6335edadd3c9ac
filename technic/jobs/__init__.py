"""The jobs: what the ``technic`` CLI, the Prefect flows and the HTTP API call.

* :mod:`technic.jobs.ingest` — providers → validated bars → the store;
* :mod:`technic.jobs.refresh` — bars → ``features_daily``: full, backfill, incremental, and
  where each runs (this process, a local Dask cluster, ``TECHNIC_DASK_ADDRESS``);
* :mod:`technic.jobs.scan` — the feature store → universe filter → scores → ranked results;
* :mod:`technic.jobs.evaluate` — point-in-time replays of the scan's scores against forward
  returns;
* :mod:`technic.jobs.browse` — one symbol's bars with chart overlays, features and ranks
  (``technic serve``).

The CLI, the flows and the API only parse arguments and present results; everything they
run is here. Layers (docs/architecture.md): jobs may import the store, providers, compute,
features, scoring and kernels; nothing below imports a job.
"""
