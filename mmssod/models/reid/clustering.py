"""SpCL's self-paced clustering: DBSCAN at eps and eps -/+ gap, and the cluster reliability criterion.

Each sample has three label sets (the samples sharing its label at eps, eps - gap (tight) and
eps + gap (loose)); with I, I_tight, I_loose those sets:

* compactness ``R_comp = 1 - |I cap I_tight| / |I cup I_tight|``,
* independence ``R_indep = 1 - |I cap I_loose| / |I cup I_loose|``.

Both intersections are the number of samples that share *both* labels with it, so every IoU comes from
label-pair counts in O(N) (:func:`label_iou`) instead of dense N x N label-similarity matrices.
A sample keeps its cluster only if its cluster's (member-minimum) R_indep is at most the independence
threshold (the 0.9 quantile over multi-member clusters at the first clustering, then kept fixed) and its
own R_comp is at most its cluster's minimum R_comp; every other sample becomes its own class.
"""

from __future__ import annotations

from typing import Dict, Optional, Tuple

import numpy as np


def assign_outliers(labels: np.ndarray) -> np.ndarray:
    """Give every DBSCAN outlier (-1) its own new class id, after the cluster ids, in sample order.

    Args:
        labels (np.ndarray): (N,) int labels, -1 = outlier.

    Returns:
        np.ndarray: (N,) int64 labels >= 0.
    """
    labels = np.asarray(labels, dtype=np.int64).copy()
    out = labels < 0
    labels[out] = labels.max(initial=-1) + 1 + np.arange(int(out.sum()))
    return labels


def label_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-sample IoU of the sets of samples that share its label under two labelings, in O(N).

    Args:
        a (np.ndarray): (N,) int64 labels >= 0.
        b (np.ndarray): (N,) int64 labels >= 0.

    Returns:
        np.ndarray: (N,) float64 ``|A_i cap B_i| / |A_i cup B_i|``.
    """
    n_a = np.bincount(a)[a]
    n_b = np.bincount(b)[b]
    _, pair, n_pair = np.unique(a * (int(b.max()) + 1) + b, return_inverse=True, return_counts=True)
    n_ab = n_pair[pair.reshape(-1)]
    return n_ab / (n_a + n_b - n_ab)


def independence_threshold(
    cluster_indep: np.ndarray, sizes: np.ndarray, quantile: float = 0.9
) -> float | None:
    """The value at position round(quantile * n) of the sorted R_indep of the n multi-member clusters.

    Args:
        cluster_indep (np.ndarray): (K,) per-cluster R_indep (member minimum).
        sizes (np.ndarray): (K,) cluster sizes.
        quantile (float): Defaults to 0.9.

    Returns:
        float | None: The threshold, None when no cluster has more than one member.
    """
    vals = np.sort(cluster_indep[sizes > 1])
    if vals.size == 0:
        return None
    return float(vals[min(vals.size - 1, int(np.round(vals.size * quantile)))])


def reliable_labels(
    labels: np.ndarray,
    tight: np.ndarray,
    loose: np.ndarray,
    indep_threshold: Optional[float] = None,
    quantile: float = 0.9,
) -> Tuple[np.ndarray, Optional[float], Dict[str, np.ndarray]]:
    """Apply SpCL's reliability criterion.

    Args:
        labels (np.ndarray): (N,) labels at eps, outliers already singletons (:func:`assign_outliers`).
        tight (np.ndarray): (N,) labels at eps - gap, same convention.
        loose (np.ndarray): (N,) labels at eps + gap, same convention.
        indep_threshold (float, optional): Fixed independence threshold; None computes it from these
            clusters (the first clustering). Defaults to None.
        quantile (float): Quantile that defines the threshold. Defaults to 0.9.

    Returns:
        tuple: (N,) contiguous int64 labels (unreliable samples are new singleton classes), the threshold
        (None when it could not be defined yet) and a dict with the per-sample ``r_comp``, ``r_indep`` and
        the bool ``kept``.
    """
    labels, tight, loose = (np.asarray(x, dtype=np.int64) for x in (labels, tight, loose))
    r_comp = 1.0 - label_iou(labels, tight)
    r_indep = 1.0 - label_iou(labels, loose)
    k = int(labels.max()) + 1
    cluster_comp = np.full(k, np.inf)
    np.minimum.at(cluster_comp, labels, r_comp)
    cluster_indep = np.full(k, np.inf)
    np.minimum.at(cluster_indep, labels, r_indep)
    sizes = np.bincount(labels, minlength=k)
    if indep_threshold is None:
        indep_threshold = independence_threshold(cluster_indep, sizes, quantile)
    if indep_threshold is None:
        kept = np.ones(labels.size, dtype=bool)
    else:
        kept = (cluster_indep[labels] <= indep_threshold) & (r_comp <= cluster_comp[labels])
    new = np.where(kept, labels, -1)
    new = np.unique(assign_outliers(new), return_inverse=True)[1].reshape(-1)
    return new.astype(np.int64), indep_threshold, dict(r_comp=r_comp, r_indep=r_indep, kept=kept)


def dbscan_labels(dist, eps: float, min_samples: int = 4) -> np.ndarray:
    """DBSCAN on a precomputed (sparse or dense) distance matrix.

    Args:
        dist (scipy.sparse.spmatrix | np.ndarray): (N, N) distances; for a sparse matrix absent pairs are
            not neighbours (they are 1.0 for the Jaccard distance, above any eps used).
        eps (float): Neighbourhood radius.
        min_samples (int): Core point size (the point included). Defaults to 4.

    Returns:
        np.ndarray: (N,) int64 labels, -1 = outlier.
    """
    from sklearn.cluster import DBSCAN

    return DBSCAN(eps=eps, min_samples=min_samples, metric='precomputed', n_jobs=1).fit_predict(dist)


def self_paced_clustering(
    dist,
    eps: float = 0.6,
    eps_gap: float = 0.02,
    min_samples: int = 4,
    indep_threshold: Optional[float] = None,
    quantile: float = 0.9,
) -> Tuple[np.ndarray, Optional[float], Dict[str, float]]:
    """DBSCAN at eps and eps -/+ gap, outliers as singletons, then the reliability criterion.

    Args:
        dist (scipy.sparse.spmatrix | np.ndarray): (N, N) precomputed distances (e.g. Jaccard).
        eps (float): Defaults to 0.6.
        eps_gap (float): Defaults to 0.02.
        min_samples (int): Defaults to 4.
        indep_threshold (float, optional): Fixed threshold from the first clustering. Defaults to None.
        quantile (float): Defaults to 0.9.

    Returns:
        tuple: (N,) int64 pseudo labels (contiguous; every outlier / unreliable sample is its own class),
        the independence threshold (None while undefined), and statistics ``num_clusters`` (classes with
        more than one member), ``num_outliers`` (singleton classes), ``num_dbscan_clusters``.

    Raises:
        ValueError: With fewer samples than ``min_samples``.
    """
    n = dist.shape[0]
    if n < min_samples:
        raise ValueError(
            f'self-paced clustering got {n} target images, fewer than min_samples={min_samples}: DBSCAN '
            'cannot form any cluster. Use a larger target training set or lower min_samples.'
        )
    normal = dbscan_labels(dist, eps, min_samples)
    tight = dbscan_labels(dist, eps - eps_gap, min_samples)
    loose = dbscan_labels(dist, eps + eps_gap, min_samples)
    num_dbscan = int(normal.max(initial=-1)) + 1
    labels, thr, _ = reliable_labels(
        assign_outliers(normal), assign_outliers(tight), assign_outliers(loose), indep_threshold, quantile
    )
    sizes = np.bincount(labels)
    stats = dict(
        num_clusters=int((sizes > 1).sum()),
        num_outliers=int((sizes == 1).sum()),
        num_dbscan_clusters=num_dbscan,
    )
    return labels, thr, stats


def clustered_purity(truth: np.ndarray, labels: np.ndarray) -> Dict[str, float]:
    """Quality of the pseudo labels on the images they put in a cluster (singletons left out).

    Counting every un-clustered image as its own class rewards leaving images out; these numbers score only
    what the clustering kept.

    Args:
        truth (np.ndarray): (N,) true identities.
        labels (np.ndarray): (N,) pseudo labels; a label held by one image is an un-clustered image.

    Returns:
        dict: ``clustered`` (fraction of the N images in a cluster of >= 2), ``ari_clustered`` (adjusted Rand
        index over the clustered images), ``pairwise_precision`` (of the pairs of clustered images sharing a
        pseudo label, the fraction sharing the true identity); the last two are NaN with nothing clustered.
    """
    from sklearn.metrics import adjusted_rand_score

    truth, labels = np.asarray(truth).reshape(-1), np.asarray(labels).reshape(-1)
    _, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    keep = counts[inverse.reshape(-1)] > 1
    out = dict(clustered=float(keep.mean()) if keep.size else 0.0, ari_clustered=float('nan'))
    out['pairwise_precision'] = float('nan')
    if not keep.any():
        return out
    t, c = truth[keep], labels[keep]
    out['ari_clustered'] = float(adjusted_rand_score(t, c))
    _, cell = np.unique(np.stack([c, t]), axis=1, return_counts=True)
    _, size = np.unique(c, return_counts=True)
    out['pairwise_precision'] = float((cell * (cell - 1)).sum() / (size * (size - 1)).sum())
    return out
