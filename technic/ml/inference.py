"""Batch inference of the alpha models for one date's feature rows.

``alpha_<h>d`` is the model's predicted **excess forward return over the next h own bars,
relative to the median name of the date, as a fraction** (e.g. ``0.004`` = +0.4 %). Use it to
rank; its level is small and shrunk by regularisation (see models/MODEL_CARD.md).

Boosters are loaded once per (file, modification time, device) and cached. A missing or
unreadable model file never fails a scan: its column is NaN and a warning is logged.
"""

from __future__ import annotations

import logging
import threading
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from technic.ml.dataset import MODEL_FEATURES, model_features

log = logging.getLogger(__name__)

#: The repository's trained models.
DEFAULT_MODEL_DIR = Path(__file__).resolve().parents[2] / "models"
DEFAULT_HORIZONS: tuple[int, ...] = (5, 10)
_LOCK = threading.Lock()


@lru_cache(maxsize=16)
def _load(path: str, mtime_ns: int, device: str):
    import xgboost as xgb

    booster = xgb.Booster()
    booster.load_model(path)
    names = booster.feature_names
    if names is not None and tuple(names) != MODEL_FEATURES:
        raise ValueError(f"{path} expects features {names}, this code builds {MODEL_FEATURES}")
    booster.set_param({"device": device, "nthread": 2})
    return booster


def load_booster(path: str | Path, device: str = "cpu"):
    """The booster stored at ``path`` (cached until the file changes).

    Raises:
        FileNotFoundError: no file there.
        ValueError: the model expects other input features.
        xgboost.core.XGBoostError: the file is not a readable model.
    """
    p = Path(path)
    with _LOCK:
        return _load(str(p.resolve()), p.stat().st_mtime_ns, device)


def clear_cache() -> None:
    """Forget every loaded booster (tests; after retraining in-process)."""
    _load.cache_clear()


def predict_alpha(features: pd.DataFrame, model_dir: str | Path | None = None,
                  device: str = "cpu",
                  horizons: tuple[int, ...] = DEFAULT_HORIZONS,
                  files: dict[int, Path] | None = None) -> pd.DataFrame:
    """Predicted excess forward returns for a batch of stored feature rows.

    Args:
        features: rows of ``features_daily`` (as the scan reads them: at least
            :data:`technic.ml.dataset.RAW_INPUTS`); any number of rows, usually one date.
            A row's prediction depends on that row only.
        model_dir: folder with ``alpha_<h>d.json`` (default: the repository's ``models/``).
        device: ``"cpu"`` or ``"cuda"`` (``"cuda:<n>"``); the GPU needs an xgboost build with
            CUDA (the ``xgboost`` wheel, not ``xgboost-cpu``).
        horizons: which models to apply.
        files: ``{horizon: booster file}`` to use instead of ``<model_dir>/alpha_<h>d.json``
            (a walk-forward model of :func:`technic.ml.walkforward.choose_model`).

    Returns:
        Frame with the index of ``features`` and float64 columns ``alpha_<h>d`` (fraction;
        NaN where the model file is missing or unreadable — logged as a warning).

    Raises:
        KeyError: a raw input column is missing from ``features``.
        ValueError: ``device`` is neither cpu nor cuda.
    """
    if not (device == "cpu" or device.startswith("cuda")):
        raise ValueError(f"device must be 'cpu' or 'cuda[:n]', got {device!r}")
    folder = Path(model_dir) if model_dir is not None else DEFAULT_MODEL_DIR
    out = pd.DataFrame(index=features.index)
    x = model_features(features).to_numpy(np.float32) if len(features) else None
    for h in horizons:
        col = f"alpha_{h}d"
        path = files[h] if files and h in files else folder / f"{col}.json"
        try:
            booster = load_booster(path, device)
        except Exception as e:  # noqa: BLE001 - a scan must survive a missing/broken model
            log.warning("alpha model %s unavailable (%s: %s); %s is NaN", path,
                        type(e).__name__, e, col)
            out[col] = np.nan
            continue
        out[col] = booster.inplace_predict(x).astype(np.float64) if x is not None else \
            np.empty(0, dtype=np.float64)
    return out
