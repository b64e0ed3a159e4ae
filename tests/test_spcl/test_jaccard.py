"""Sparse k-reciprocal Jaccard distance against a direct dense implementation of the reference algorithm."""

import numpy as np
import pytest
import torch

from mmssod.models.reid.jaccard import jaccard_distance, knn_rank, sparse_to_scipy
from mmssod.models.reid.jaccard_cpu import knn_symmetric, numba_available


def dense_reference(feats: np.ndarray, k1: int, k2: int) -> np.ndarray:
    """Re-ranking Jaccard distance written directly from the algorithm, with dense N x N arrays."""
    n = feats.shape[0]
    sim = feats @ feats.T
    rank = np.argsort(-sim, axis=1, kind='stable')[:, :k1]

    def recip(i, k):
        fwd = rank[i, : k + 1]
        return np.array([j for j in fwd if i in rank[j, : k + 1]], dtype=np.int64)

    r_full = [recip(i, k1) for i in range(n)]
    r_half = [recip(i, int(round(k1 / 2))) for i in range(n)]
    v = np.zeros((n, n), dtype=np.float64)
    for i in range(n):
        exp = list(r_full[i])
        for c in r_full[i]:
            hc = r_half[c]
            if len(np.intersect1d(hc, r_full[i])) > 2 / 3 * len(hc):
                exp.extend(hc)
        exp = np.unique(np.array(exp, dtype=np.int64))
        dist = 2 - 2 * sim[i, exp]
        w = np.exp(-dist - (-dist).max())
        v[i, exp] = w / w.sum()
    if k2 > 1:
        v = np.stack([v[rank[i, :k2]].mean(0) for i in range(n)])
    jac = np.zeros((n, n))
    for i in range(n):
        s = np.minimum(v[i][None, :], v).sum(1)
        jac[i] = 1 - s / (2 - s)
    return np.clip(jac, 0, None)


def clustered_features(n_clusters=8, per=12, dim=16, noise=0.35, seed=0):
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(n_clusters, dim, generator=g)
    x = centers.repeat_interleave(per, 0) + noise * torch.randn(n_clusters * per, dim, generator=g)
    return torch.nn.functional.normalize(x, dim=1)


BACKENDS = [
    'torch',
    pytest.param('cpu', marks=pytest.mark.skipif(not numba_available(), reason='needs numba')),
]


@pytest.mark.parametrize('backend', BACKENDS)
@pytest.mark.parametrize('k1, k2', [(30, 6), (10, 1), (8, 3)])
def test_sparse_jaccard_equals_dense_reference(k1, k2, backend):
    feats = clustered_features()
    ref = dense_reference(feats.double().numpy(), k1, k2)
    dist = jaccard_distance(feats, k1=k1, k2=k2, backend=backend)
    assert dist.is_sparse
    dense = dist.to_dense().numpy()
    stored = np.zeros(dense.shape, dtype=bool)
    idx = dist.indices().numpy()
    stored[idx[0], idx[1]] = True
    dense[~stored] = 1.0  # absent = 1.0
    np.testing.assert_allclose(dense, ref, atol=2e-5)
    assert (~stored).any(), 'pairs without shared support must be left out'
    assert np.allclose(np.diag(dense), 0, atol=1e-5)


@pytest.mark.parametrize('backend', BACKENDS)
def test_max_distance_drops_only_larger_entries(backend):
    feats = clustered_features(seed=1)
    full = jaccard_distance(feats, backend=backend)
    cut = jaccard_distance(feats, max_distance=0.62, backend=backend)
    fv = full.values()
    assert cut.values().numel() == int((fv <= 0.62).sum()) < fv.numel()
    assert (cut.values() <= 0.62).all()


@pytest.mark.parametrize('backend', BACKENDS)
def test_k_clipped_to_small_n_and_scipy_conversion_keeps_zero_diagonal(backend):
    feats = clustered_features(n_clusters=2, per=3)  # N = 6 < k1
    csr = sparse_to_scipy(jaccard_distance(feats, k1=30, k2=6, backend=backend))
    assert csr.shape == (6, 6)
    assert all(csr[i].indices.tolist().count(i) == 1 for i in range(6)), 'diagonal must be stored'
    assert knn_rank(feats, 3)[:, 0].tolist() == list(range(6))


def test_bad_shape_and_backend_are_rejected(monkeypatch):
    with pytest.raises(ValueError, match='N, D'):
        jaccard_distance(torch.zeros(0, 4))
    with pytest.raises(ValueError, match='backend'):
        jaccard_distance(torch.zeros(3, 4), backend='faiss')
    from mmssod.models.reid import jaccard_cpu

    monkeypatch.setattr(jaccard_cpu, 'numba_available', lambda: False)
    with pytest.raises(ValueError, match='numba'):
        jaccard_distance(clustered_features(), backend='cpu')
    assert jaccard_distance(clustered_features()).is_sparse  # auto falls back to the torch path


def test_chunked_computation_equals_single_chunk(monkeypatch):
    from mmssod.models.reid import jaccard as jac

    feats = clustered_features(n_clusters=7, per=11, seed=3)  # N = 77: chunk edges fall inside the data
    whole = jaccard_distance(feats, backend='torch').to_dense()
    monkeypatch.setattr(jac, '_CHUNK_ELEMENTS', 3000)
    monkeypatch.setattr(jac, '_PAIR_CHUNK', 500)
    chunked = jaccard_distance(feats, backend='torch').to_dense()
    torch.testing.assert_close(chunked, whole, atol=1e-6, rtol=0)


def test_symmetric_blocked_knn_equals_full_topk(monkeypatch):
    from mmssod.models.reid import jaccard_cpu

    feats = clustered_features(n_clusters=7, per=11, seed=4)  # N = 77
    full = (feats @ feats.t()).topk(12, dim=1)
    for block in (77 * 12, 77 * 20, 1 << 24):  # blocks of 12 and 20 rows (edges inside the data), one block
        monkeypatch.setattr(jaccard_cpu, '_BLOCK_ELEMENTS', block)
        vals, idx = knn_symmetric(feats, 12)
        torch.testing.assert_close(vals, full.values, atol=1e-6, rtol=0)
        assert torch.equal(idx, full.indices)


@pytest.mark.skipif(not numba_available(), reason='needs numba')
def test_cpu_and_torch_backends_agree_on_a_larger_set():
    feats = clustered_features(n_clusters=40, per=9, dim=64, noise=0.6, seed=5)  # N = 360 > k1 everywhere
    a = jaccard_distance(feats, backend='torch', max_distance=0.62)
    b = jaccard_distance(feats, backend='cpu', max_distance=0.62)
    assert torch.equal(a.indices(), b.indices())
    torch.testing.assert_close(a.values(), b.values(), atol=1e-5, rtol=0)


@pytest.mark.skipif(not numba_available(), reason='needs numba')
@pytest.mark.parametrize('n_clusters, noise', [(40, 0.6), (100, 0.1)])
def test_cpu_backend_full_matrix_is_row_major_like_the_torch_path(n_clusters, noise):
    # full matrix (no max_distance); noisy clusters: most rows share support with most later rows (their
    # columns laid out by a dense scan), tight clusters: most rows with few (their columns sorted as a list)
    feats = clustered_features(n_clusters=n_clusters, per=9, dim=64, noise=noise, seed=5)
    a = jaccard_distance(feats, backend='torch')
    b = jaccard_distance(feats, backend='cpu')
    assert b.is_coalesced()
    assert torch.equal(a.indices(), b.indices())
    torch.testing.assert_close(a.values(), b.values(), atol=1e-5, rtol=0)
