"""Self-paced clustering: O(N) reliability on constructed label sets, DBSCAN on sparse Jaccard, bad inputs."""

import numpy as np
import pytest
import torch
from scipy import sparse
from sklearn.metrics import adjusted_rand_score

from mmssod.models.reid.clustering import (
    assign_outliers,
    clustered_purity,
    independence_threshold,
    label_iou,
    reliable_labels,
    self_paced_clustering,
)
from mmssod.models.reid.jaccard import jaccard_distance, sparse_to_scipy


def dense_iou(a, b):
    """The official dense N x N formulation."""
    sa = a[:, None] == a[None, :]
    sb = b[:, None] == b[None, :]
    return np.minimum(sa, sb).sum(1) / np.maximum(sa, sb).sum(1)


def test_label_iou_equals_dense_formulation():
    rng = np.random.default_rng(0)
    for _ in range(5):
        a, b = rng.integers(0, 6, 40), rng.integers(0, 9, 40)
        np.testing.assert_allclose(label_iou(a, b), dense_iou(a, b))


def test_assign_outliers_gives_new_singleton_ids():
    assert assign_outliers(np.array([-1, 0, 1, -1, 0])).tolist() == [2, 0, 1, 3, 0]
    assert assign_outliers(np.array([-1, -1])).tolist() == [0, 1]


def test_reliability_rule_on_constructed_label_sets():
    # normal clusters: A = {0..4}, B = {5..9}, C = {10, 11}, singleton {12}
    normal = np.array([0] * 5 + [1] * 5 + [2, 2, 3])
    # tight: A splits {0,1,2,3} + {4}; B stays; C stays
    tight = np.array([0, 0, 0, 0, 1] + [2] * 5 + [3, 3, 4])
    # loose: A stays; B merges with C; 12 stays alone
    loose = np.array([0] * 5 + [1] * 5 + [1, 1, 2])
    r_comp = 1 - label_iou(normal, tight)
    r_indep = 1 - label_iou(normal, loose)
    np.testing.assert_allclose(r_comp[:5], [1 - 4 / 5] * 4 + [1 - 1 / 5])
    np.testing.assert_allclose(r_indep[5:12], [1 - 5 / 7] * 5 + [1 - 2 / 7] * 2)
    # threshold over multi-member clusters A, B, C: R_indep = [0, 2/7, 5/7] -> sorted[round(0.9 * 3) = 3 -> 2]
    labels, thr, info = reliable_labels(normal, tight, loose, quantile=0.9)
    assert thr == pytest.approx(5 / 7)
    # A: sample 4 has R_comp 0.8 > cluster minimum 0.2 -> becomes its own class; B, C pass (R_indep <= 5/7)
    assert info['kept'].tolist() == [True] * 4 + [False] + [True] * 8
    sizes = np.bincount(labels)
    assert sorted(sizes.tolist()) == [1, 1, 2, 4, 5]
    assert len(set(labels[:4])) == 1 and labels[4] not in labels[:4]
    # a fixed (stricter) threshold from an earlier epoch rejects B and C entirely
    labels, thr, info = reliable_labels(normal, tight, loose, indep_threshold=0.1)
    assert thr == 0.1
    assert not info['kept'][5:12].any()
    assert sorted(np.bincount(labels).tolist()) == [1] * 9 + [4]


def test_threshold_undefined_without_multi_member_clusters():
    assert independence_threshold(np.array([0.0, 0.5]), np.array([1, 1])) is None
    labels, thr, info = reliable_labels(np.arange(4), np.arange(4), np.arange(4))
    assert thr is None and info['kept'].all() and labels.tolist() == [0, 1, 2, 3]


def blobs(n_per=10, centers=3, dim=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    c = torch.randn(centers, dim, generator=g) * 3
    return c.repeat_interleave(n_per, 0) + 0.2 * torch.randn(centers * n_per, dim, generator=g)


def test_self_paced_clustering_finds_blobs_on_sparse_jaccard_like_dense():
    feats = blobs()
    dist = jaccard_distance(feats, k1=10, k2=3)
    csr = sparse_to_scipy(dist)
    dense = np.ones(csr.shape)
    coo = csr.tocoo()
    dense[coo.row, coo.col] = coo.data
    labels_sparse, thr_s, stats = self_paced_clustering(csr, eps=0.6, min_samples=4)
    labels_dense, thr_d, _ = self_paced_clustering(dense, eps=0.6, min_samples=4)
    assert np.array_equal(labels_sparse, labels_dense) and thr_s == thr_d
    assert stats['num_dbscan_clusters'] == 3
    truth = np.repeat(np.arange(3), 10)
    for k in range(3):  # every kept cluster lies inside one blob
        members = labels_sparse == k
        if members.sum() > 1:
            assert len(set(truth[members])) == 1


def test_all_outliers_keeps_going_and_too_few_images_is_a_clear_error():
    far = sparse.csr_matrix(np.eye(6) * 0.0 + (1 - np.eye(6)) * 0.99)
    labels, thr, stats = self_paced_clustering(far, eps=0.6, min_samples=4)
    assert stats['num_clusters'] == 0 and stats['num_outliers'] == 6 and thr is None
    assert sorted(labels.tolist()) == list(range(6))
    with pytest.raises(ValueError, match='min_samples=4'):
        self_paced_clustering(np.zeros((3, 3)), min_samples=4)


def test_clustered_purity_scores_only_the_images_in_clusters():
    truth = np.array([0, 0, 0, 1, 1, 2])
    labels = np.array([5, 5, 7, 7, 8, 9])  # two clusters of two; 8 and 9 are un-clustered
    out = clustered_purity(truth, labels)
    assert out['clustered'] == pytest.approx(4 / 6)
    assert out['pairwise_precision'] == pytest.approx(0.5)  # (0, 1) right, (2, 3) wrong
    assert out['ari_clustered'] == pytest.approx(adjusted_rand_score([0, 0, 0, 1], [5, 5, 7, 7]))
    # leaving every image out is not purity: nothing is scored
    none = clustered_purity(truth, np.arange(6))
    assert none['clustered'] == 0 and np.isnan(none['pairwise_precision'])
