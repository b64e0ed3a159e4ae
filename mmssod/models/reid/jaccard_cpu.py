"""CPU kernels of the sparse k-reciprocal Jaccard distance (numba), same algorithm as :mod:`.jaccard`.

The torch formulation in :mod:`.jaccard` pads every set to the widest one and gathers feature rows for
batched dot products; on a CPU the set logic is cheaper as plain loops over the actual members. Here:

* the neighbour lists come from a *symmetric* blocked ``X @ X^T`` (each block pair once, its transpose
  feeds the other rows' running top-k), half the multiply-adds of the full product; its k1 + 10 best
  candidates per row are re-ranked by float64 inner products (so near-ties at the set boundaries are
  ordered as a float64 reference orders them) and the k1 best kept with their similarities;
* steps 1-5 of :mod:`.jaccard` (k-reciprocal sets, expansion, softmax weights, query expansion, min-sum
  over shared support) are compiled loops over CSR rows, with O(N) scratch arrays; the similarities of the
  expanded sets are read from the kept top-k values when the pair is in it, else one dot product.

Every temporary is O(N * k1) or a row block of the product (``_BLOCK_ELEMENTS``), never N x N. Requires
numba (:func:`numba_available`); :func:`mmssod.models.reid.jaccard.jaccard_distance` falls back to the
torch path without it and always uses the torch path on GPUs.
"""

from __future__ import annotations

from typing import Optional, Tuple

import numpy as np
import torch
from torch import Tensor

_BLOCK_ELEMENTS = 1 << 24  # elements of one (rows x N) block of the similarity product (64 MB in fp32)
_RANK_MARGIN = 10  # extra fp32 candidates per row re-ranked in float64


def numba_available() -> bool:
    """Whether numba can be imported (the CPU kernels need it)."""
    try:
        import numba  # noqa: F401
    except ImportError:
        return False
    return True


@torch.no_grad()
def knn_symmetric(feats: Tensor, k: int) -> Tuple[Tensor, Tensor]:
    """The k largest inner products of every row (itself included), from half of ``X @ X^T``.

    Row blocks I are multiplied with the columns from I on (``X_I @ X_{I:}^T``); the block's rows update
    their running top-k along its columns, and its transpose updates the running top-k of the later rows.

    Args:
        feats (Tensor): (N, D) L2-normalised features.
        k (int): Neighbours per row (<= N).

    Returns:
        tuple[Tensor, Tensor]: (N, k) similarities (descending) and their int64 column indexes.
    """
    n = feats.size(0)
    best_v = feats.new_full((n, k), float('-inf'))
    best_i = torch.zeros(n, k, dtype=torch.long, device=feats.device)

    def merge(rows: slice, vals: Tensor, idx: Tensor) -> None:
        v = torch.cat([best_v[rows], vals], 1)
        i = torch.cat([best_i[rows], idx], 1)
        top = v.topk(k, dim=1)
        best_v[rows] = top.values
        best_i[rows] = i.gather(1, top.indices)

    step = max(k, min(512, _BLOCK_ELEMENTS // max(n, 1)))  # several blocks: the saving is the triangle
    for s in range(0, n, step):
        e = min(n, s + step)
        sim = feats[s:e] @ feats[s:].t()  # (b, n - s): this block against itself and every later row
        kk = min(k, sim.size(1))
        top = sim.topk(kk, dim=1)
        merge(slice(s, e), top.values, top.indices + s)
        if e < n:
            later = sim[:, e - s :].t().contiguous()  # (n - e, b): the later rows against this block
            kb = min(k, later.size(1))
            top = later.topk(kb, dim=1)
            merge(slice(e, n), top.values, top.indices + s)
    return best_v, best_i


def _kernels():
    """The compiled loops (imported lazily so numba stays optional)."""
    from . import numba_kernels

    return numba_kernels


@torch.no_grad()
def jaccard_distance_cpu(feats: Tensor, k1: int, k2: int, max_distance: Optional[float] = None) -> Tensor:
    """k-reciprocal Jaccard distance on the CPU with the numba kernels (see the module docstring).

    Args:
        feats (Tensor): (N, D) L2-normalised fp32 CPU features.
        k1 (int): k1 (already clipped to N).
        k2 (int): Query-expansion neighbours (already clipped to N).
        max_distance (float, optional): Drop larger distances. Defaults to None.

    Returns:
        Tensor: Sparse COO (N, N) fp32 distances, coalesced; absent entries mean 1.0.
    """
    kern = _kernels()
    n = feats.size(0)
    x = feats.contiguous().numpy()
    # fp32 product for candidates (k1 + margin), then the k1 best by float64 inner products: the lists
    # then follow the exact similarity order, as a float64 reference ranks them, also at near-ties at
    # the set boundaries (k2, k1 / 2 + 1, k1) where fp32 rounding could swap two neighbours
    _, cand = knn_symmetric(feats, min(n, k1 + _RANK_MARGIN))
    rank_np, topv = kern.refine_knn(x, cand.numpy(), k1)
    rfull, rsize = kern.reciprocal_sets(rank_np, min(k1 + 1, rank_np.shape[1]))
    half = int(round(k1 / 2))
    rhalf, hsize = kern.reciprocal_sets(rank_np, min(half + 1, rank_np.shape[1]))
    indptr, cols, vals = kern.expanded_weights(x, rank_np, topv, rfull, rsize, rhalf, hsize)
    if k2 > 1:
        indptr, cols, vals = kern.query_expansion(indptr, cols, vals, rank_np, k2)
    limit = np.inf if max_distance is None else float(max_distance)
    idx, dd = kern.jaccard_pairs(indptr, cols, vals, limit)  # row-major, columns sorted in each row
    return torch.sparse_coo_tensor(
        torch.from_numpy(idx), torch.from_numpy(dd), (n, n), is_coalesced=True, check_invariants=False
    )
