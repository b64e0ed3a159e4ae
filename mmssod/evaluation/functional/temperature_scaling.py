"""Post-hoc temperature scaling of sigmoid detection scores: the calibration baseline Cal-DETR compares to.

A detector's sigmoid score ``s = sigmoid(z)`` becomes ``sigmoid(z / T)``; ``T`` is fit on a held-out set by
minimising the binary cross-entropy between the scaled scores and the detections' true-positive flags. The
ranking of detections (so box AP) does not change.
"""

from __future__ import annotations

import numpy as np

_EPS = 1e-6

__all__ = ['apply_temperature', 'temperature_nll', 'fit_temperature', 'cross_fit_temperature']


def apply_temperature(scores: np.ndarray, temperature: float) -> np.ndarray:
    """Rescale sigmoid scores with a temperature.

    Args:
        scores (np.ndarray): Sigmoid scores in [0, 1], any shape.
        temperature (float): T > 0; T > 1 softens (lowers confidence), T < 1 sharpens.

    Returns:
        np.ndarray: ``sigmoid(logit(scores) / T)``, same shape.
    """
    if not temperature > 0:
        raise ValueError(f'temperature must be > 0, got {temperature!r}')
    s = np.clip(np.asarray(scores, dtype=np.float64), _EPS, 1 - _EPS)
    return 1.0 / (1.0 + np.exp(-np.log(s / (1 - s)) / temperature))


def temperature_nll(scores: np.ndarray, is_tp: np.ndarray, temperature: float) -> float:
    """Mean binary cross-entropy of temperature-scaled scores against true-positive flags.

    Args:
        scores (np.ndarray): Sigmoid scores, shape (N,).
        is_tp (np.ndarray): True-positive flags, shape (N,).
        temperature (float): T > 0.

    Returns:
        float: the mean negative log-likelihood.
    """
    p = np.clip(apply_temperature(scores, temperature), _EPS, 1 - _EPS)
    y = np.asarray(is_tp, dtype=np.float64)
    return float(-(y * np.log(p) + (1 - y) * np.log(1 - p)).mean())


def fit_temperature(scores: np.ndarray, is_tp: np.ndarray, bounds: tuple = (0.05, 20.0)) -> float:
    """Temperature minimising the held-out NLL (bounded 1-D search over log T).

    Args:
        scores (np.ndarray): Held-out detection scores, shape (N,), N >= 1.
        is_tp (np.ndarray): Their true-positive flags, shape (N,).
        bounds (tuple): Search range of T. Defaults to (0.05, 20.0).

    Returns:
        float: the fitted temperature.
    """
    from scipy.optimize import minimize_scalar

    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if scores.size == 0:
        raise ValueError('cannot fit a temperature without held-out detections (none above the threshold?)')
    lo, hi = np.log(bounds[0]), np.log(bounds[1])
    res = minimize_scalar(
        lambda log_t: temperature_nll(scores, is_tp, float(np.exp(log_t))),
        bounds=(lo, hi),
        method='bounded',
        options=dict(xatol=1e-5),
    )
    return float(np.exp(res.x))


def cross_fit_temperature(scores: np.ndarray, is_tp: np.ndarray, folds: np.ndarray) -> tuple:
    """Temperature scaling without a separate held-out set: each fold is scaled with a T fit on the others.

    Used when the only labelled evaluation data is the test set itself (e.g. by image: fold = image id % 2):
    no detection is rescaled with a temperature fit on its own fold, and the evaluated set stays the whole
    set (the detections and their flags are unchanged; only confidences move).

    Args:
        scores (np.ndarray): Detection scores (the evaluated set, e.g. raw score >= 0.3), shape (N,).
        is_tp (np.ndarray): Their true-positive flags, shape (N,).
        folds (np.ndarray): Fold id of each detection (detections of one image share a fold), shape (N,);
            at least 2 distinct folds.

    Returns:
        tuple: the scaled scores, shape (N,), and a dict fold id -> the temperature applied to that fold.
    """
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    is_tp = np.asarray(is_tp, dtype=bool).reshape(-1)
    folds = np.asarray(folds).reshape(-1)
    if not scores.shape == is_tp.shape == folds.shape:
        raise ValueError(
            f'scores {scores.shape}, is_tp {is_tp.shape} and folds {folds.shape} differ in shape'
        )
    fold_ids = np.unique(folds)
    if fold_ids.size < 2:
        raise ValueError(f'cross-fitting needs detections in at least 2 folds, got folds {fold_ids.tolist()}')
    scaled, temperatures = scores.copy(), {}
    for f in fold_ids.tolist():
        here = folds == f
        t = fit_temperature(scores[~here], is_tp[~here])
        scaled[here] = apply_temperature(scores[here], t)
        temperatures[f] = t
    return scaled, temperatures
