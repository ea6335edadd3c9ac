"""XGBoost alpha models: point-in-time datasets, walk-forward training, batch inference.

* :mod:`technic.ml.dataset` — training frames from the feature store (no look-ahead).
* :mod:`technic.ml.train` — purged/embargoed walk-forward evaluation and the final models.
* :mod:`technic.ml.inference` — ``predict_alpha`` for one date's feature rows.
"""
