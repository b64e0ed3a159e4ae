"""Market-1501 evaluation protocol for re-ID: mAP and CMC with same-identity-same-camera filtering."""

from __future__ import annotations

from typing import Dict, List, Sequence, Tuple

import numpy as np

#: Bytes held per (query, gallery) pair while one chunk of queries is ranked: distances (8), argsort (8),
#: ranked pids (8), ranked cameras (8), match / remove masks (1 + 1).
BYTES_PER_PAIR = 34
#: Default bound of the per-chunk temporaries (bytes).
DEFAULT_CHUNK_BYTES = 256 * 2**20


def queries_per_chunk(num_gallery: int, chunk_bytes: int = DEFAULT_CHUNK_BYTES) -> int:
    """Number of queries ranked at once so that the chunk's temporaries stay under ``chunk_bytes``."""
    return max(1, int(chunk_bytes // (BYTES_PER_PAIR * max(1, num_gallery))))


def rank_queries(
    distmat: np.ndarray,
    q_pids: np.ndarray,
    g_pids: np.ndarray,
    q_camids: np.ndarray,
    g_camids: np.ndarray,
) -> Tuple[List[float], List[int]]:
    """Per-query AP and rank of the first true match for a block of queries (Market-1501 protocol).

    Args:
        distmat (np.ndarray): (Q', G) distances of a block of queries.
        q_pids, q_camids (np.ndarray): (Q',) query identities and cameras.
        g_pids, g_camids (np.ndarray): (G,) gallery identities (0 distractor, -1 junk) and cameras.

    Returns:
        tuple[list[float], list[int]]: AP and first-hit rank (0-based) of every query with a true match.
    """
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
        aps.append(float(precision.mean()))
        first_hits.append(int(hits[0]))
    return aps, first_hits


def summarize(aps: Sequence[float], first_hits: Sequence[int], topk: Sequence[int]) -> Dict[str, float]:
    """mAP, CMC top-k and the number of valid queries from per-query results."""
    if not aps:
        raise ValueError('no query has a true match in the gallery (same-camera matches are removed)')
    first = np.asarray(first_hits)
    out = {'mAP': float(np.mean(aps))}
    for k in topk:
        out[f'top{k}'] = float(np.mean(first < k))
    out['num_valid_queries'] = float(len(aps))
    return out


def market_reid_eval(
    distmat: np.ndarray,
    q_pids: np.ndarray,
    g_pids: np.ndarray,
    q_camids: np.ndarray,
    g_camids: np.ndarray,
    topk: Sequence[int] = (1, 5, 10),
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
) -> Dict[str, float]:
    """mAP and CMC top-k under the Market-1501 protocol.

    For each query the gallery is ranked by distance (stable for ties); gallery entries with the query's
    identity AND camera, and junk entries (pid -1), are removed; queries without any remaining true match
    are skipped. AP is the mean precision at the ranks of the true matches; CMC counts a query as a hit at
    rank r when its first true match is within the top r (first-match-break). Queries are ranked in chunks
    (:func:`queries_per_chunk`), which bounds the temporaries; the result does not depend on the chunking.

    Args:
        distmat (np.ndarray): (Q, G) distances (smaller = more similar).
        q_pids (np.ndarray): (Q,) query identities.
        g_pids (np.ndarray): (G,) gallery identities (0 = distractor, -1 = junk).
        q_camids (np.ndarray): (Q,) query cameras.
        g_camids (np.ndarray): (G,) gallery cameras.
        topk (Sequence[int]): CMC ranks. Defaults to (1, 5, 10).
        chunk_bytes (int): Bound of the per-chunk temporaries. Defaults to 256 MiB.

    Returns:
        dict[str, float]: ``mAP``, ``top1``, ``top5``, ... in [0, 1] and ``num_valid_queries``.

    Raises:
        ValueError: When no query has a true match in the gallery.
    """
    q_pids, g_pids, q_camids, g_camids = (np.asarray(a) for a in (q_pids, g_pids, q_camids, g_camids))
    step = queries_per_chunk(len(g_pids), chunk_bytes)
    aps, first_hits = [], []
    for s in range(0, len(q_pids), step):
        block = np.asarray(distmat[s : s + step], dtype=np.float64)
        a, f = rank_queries(block, q_pids[s : s + step], g_pids, q_camids[s : s + step], g_camids)
        aps += a
        first_hits += f
    return summarize(aps, first_hits, topk)


def market_reid_eval_features(
    query: np.ndarray,
    gallery: np.ndarray,
    q_pids: np.ndarray,
    g_pids: np.ndarray,
    q_camids: np.ndarray,
    g_camids: np.ndarray,
    topk: Sequence[int] = (1, 5, 10),
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
) -> Dict[str, float]:
    """:func:`market_reid_eval` on squared Euclidean distances computed one chunk of queries at a time.

    Never holds the (Q, G) matrix: peak memory is the features (the gallery once in float64) plus
    ``chunk_bytes`` of temporaries. Each query's distances are computed exactly as
    :func:`squared_euclidean` computes them for the whole matrix.

    Args:
        query (np.ndarray): (Q, D) query features.
        gallery (np.ndarray): (G, D) gallery features.
        q_pids, g_pids, q_camids, g_camids, topk, chunk_bytes: As :func:`market_reid_eval`.

    Returns:
        dict[str, float]: As :func:`market_reid_eval`.
    """
    q_pids, g_pids, q_camids, g_camids = (np.asarray(a) for a in (q_pids, g_pids, q_camids, g_camids))
    g = np.asarray(gallery, dtype=np.float64)
    g_sq = (g * g).sum(1)
    step = queries_per_chunk(len(g_pids), chunk_bytes)
    aps, first_hits = [], []
    for s in range(0, len(q_pids), step):
        block = squared_euclidean(query[s : s + step], g, g_sq)
        a, f = rank_queries(block, q_pids[s : s + step], g_pids, q_camids[s : s + step], g_camids)
        del block
        aps += a
        first_hits += f
    return summarize(aps, first_hits, topk)


def squared_euclidean(
    query: np.ndarray, gallery: np.ndarray, gallery_sq: np.ndarray | None = None
) -> np.ndarray:
    """(Q, G) squared Euclidean distances between (Q, D) and (G, D) features.

    Args:
        query (np.ndarray): (Q, D).
        gallery (np.ndarray): (G, D).
        gallery_sq (np.ndarray, optional): (G,) squared norms of the float64 gallery, when already known.

    Returns:
        np.ndarray: (Q, G) float64.
    """
    q = np.asarray(query, dtype=np.float64)
    g = np.asarray(gallery, dtype=np.float64)
    g_sq = (g * g).sum(1) if gallery_sq is None else gallery_sq
    d = (q * q).sum(1)[:, None] + g_sq[None, :] - 2.0 * q @ g.T
    return np.maximum(d, 0.0, out=d)
