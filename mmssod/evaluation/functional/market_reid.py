"""Market-1501 evaluation protocol for re-ID: mAP and CMC with same-identity-same-camera filtering."""

from __future__ import annotations

from typing import Dict, Sequence

import numpy as np


def market_reid_eval(
    distmat: np.ndarray,
    q_pids: np.ndarray,
    g_pids: np.ndarray,
    q_camids: np.ndarray,
    g_camids: np.ndarray,
    topk: Sequence[int] = (1, 5, 10),
) -> Dict[str, float]:
    """mAP and CMC top-k under the Market-1501 protocol.

    For each query the gallery is ranked by distance (stable for ties); gallery entries with the query's
    identity AND camera, and junk entries (pid -1), are removed; queries without any remaining true match
    are skipped. AP is the mean precision at the ranks of the true matches; CMC counts a query as a hit at
    rank r when its first true match is within the top r (first-match-break).

    Args:
        distmat (np.ndarray): (Q, G) distances (smaller = more similar).
        q_pids (np.ndarray): (Q,) query identities.
        g_pids (np.ndarray): (G,) gallery identities (0 = distractor, -1 = junk).
        q_camids (np.ndarray): (Q,) query cameras.
        g_camids (np.ndarray): (G,) gallery cameras.
        topk (Sequence[int]): CMC ranks. Defaults to (1, 5, 10).

    Returns:
        dict[str, float]: ``mAP``, ``top1``, ``top5``, ... in [0, 1] and ``num_valid_queries``.

    Raises:
        ValueError: When no query has a true match in the gallery.
    """
    distmat = np.asarray(distmat, dtype=np.float64)
    q_pids, g_pids, q_camids, g_camids = (np.asarray(a) for a in (q_pids, g_pids, q_camids, g_camids))
    order = np.argsort(distmat, axis=1, kind='stable')
    ranked_pids = g_pids[order]
    same_pid = ranked_pids == q_pids[:, None]
    remove = (same_pid & (g_camids[order] == q_camids[:, None])) | (ranked_pids == -1)
    aps, first_hits = [], []
    for matches, drop in zip(same_pid, remove):
        matches = matches[~drop]
        if not matches.any():
            continue
        hits = np.flatnonzero(matches)
        precision = np.arange(1, hits.size + 1) / (hits + 1)
        aps.append(precision.mean())
        first_hits.append(hits[0])
    if not aps:
        raise ValueError('no query has a true match in the gallery (same-camera matches are removed)')
    first_hits = np.asarray(first_hits)
    out = {'mAP': float(np.mean(aps))}
    for k in topk:
        out[f'top{k}'] = float(np.mean(first_hits < k))
    out['num_valid_queries'] = float(len(aps))
    return out


def squared_euclidean(query: np.ndarray, gallery: np.ndarray) -> np.ndarray:
    """(Q, G) squared Euclidean distances between (Q, D) and (G, D) features.

    Args:
        query (np.ndarray): (Q, D).
        gallery (np.ndarray): (G, D).

    Returns:
        np.ndarray: (Q, G) float64.
    """
    q = np.asarray(query, dtype=np.float64)
    g = np.asarray(gallery, dtype=np.float64)
    d = (q * q).sum(1)[:, None] + (g * g).sum(1)[None, :] - 2.0 * q @ g.T
    return np.maximum(d, 0.0)
