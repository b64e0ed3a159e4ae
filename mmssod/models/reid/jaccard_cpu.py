"""CPU kernels of the sparse k-reciprocal Jaccard distance (numba), same algorithm as :mod:`.jaccard`.

The torch formulation in :mod:`.jaccard` pads every set to the widest one and gathers feature rows for
batched dot products; on a CPU the set logic is cheaper as plain loops over the actual members. Here:

* the neighbour lists come from a *symmetric* blocked ``X @ X^T`` (each block pair once, its transpose
  feeds the other rows' running top-k), half the multiply-adds of the full product, with the top-k
  similarities kept;
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
    """Compile (or load from numba's cache) the loops; imported lazily so numba stays optional."""
    global _KERNELS
    if _KERNELS is not None:
        return _KERNELS
    import numba

    njit = numba.njit(cache=True, nogil=True, fastmath=False)

    @njit
    def reciprocal_sets(rank, w):
        """(N, w) members of R(i, k) with w = k + 1 (-1 padded, candidate order) and their counts."""
        n = rank.shape[0]
        out = np.full((n, w), -1, np.int64)
        size = np.zeros(n, np.int64)
        for i in range(n):
            c = 0
            for t in range(w):
                j = rank[i, t]
                for u in range(w):
                    if rank[j, u] == i:
                        out[i, c] = j
                        c += 1
                        break
            size[i] = c
        return out, size

    @numba.njit(cache=True, nogil=True, fastmath=True)
    def dot(a, b):
        acc = np.float32(0.0)
        for q in range(a.shape[0]):
            acc += a[q] * b[q]
        return acc

    @njit
    def grow(a, need):
        if need <= a.shape[0]:
            return a
        b = np.empty(max(need, 2 * a.shape[0]), a.dtype)
        b[: a.shape[0]] = a
        return b

    @njit
    def expanded_weights(feats, rank, topv, rfull, rsize, rhalf, hsize):
        """CSR (indptr, cols, vals) of V: softmax(-(2 - 2 sim)) over the expanded k-reciprocal set."""
        n, kk = rank.shape
        mark = np.full(n, -1, np.int64)  # R(i) membership
        seen = np.full(n, -1, np.int64)  # E(i) membership
        known = np.full(n, -1, np.int64)  # pairs whose similarity the top-k kept
        simval = np.zeros(n, np.float32)
        indptr = np.zeros(n + 1, np.int64)
        cols = np.empty(n * (kk + 1), np.int64)
        vals = np.empty(n * (kk + 1), np.float64)
        members = np.empty(n, np.int64)
        nnz = 0
        for i in range(n):
            for t in range(kk):
                known[rank[i, t]] = i
                simval[rank[i, t]] = topv[i, t]
            m = 0
            for t in range(rsize[i]):
                j = rfull[i, t]
                mark[j] = i
                if seen[j] != i:
                    seen[j] = i
                    members[m] = j
                    m += 1
            for t in range(rsize[i]):
                c = rfull[i, t]
                hs = hsize[c]
                overlap = 0
                for u in range(hs):
                    if mark[rhalf[c, u]] == i:
                        overlap += 1
                if 3 * overlap > 2 * hs:  # |H(c) cap R(i)| > 2/3 |H(c)|
                    for u in range(hs):
                        j = rhalf[c, u]
                        if seen[j] != i:
                            seen[j] = i
                            members[m] = j
                            m += 1
            row = np.sort(members[:m])
            cols = grow(cols, nnz + m)
            vals = grow(vals, nnz + m)
            top = -np.inf
            for t in range(m):
                j = row[t]
                if known[j] == i:
                    s = np.float64(simval[j])
                else:
                    s = np.float64(dot(feats[i], feats[j]))
                neg = -(2.0 - 2.0 * s)
                vals[nnz + t] = neg
                cols[nnz + t] = j
                if neg > top:
                    top = neg
            total = 0.0
            for t in range(m):
                e = np.exp(vals[nnz + t] - top)
                vals[nnz + t] = e
                total += e
            for t in range(m):
                vals[nnz + t] /= total
            nnz += m
            indptr[i + 1] = nnz
        return indptr, cols[:nnz], vals[:nnz]

    @njit
    def query_expansion(indptr, cols, vals, rank, k2):
        """CSR of ``V_qe[i] = sum of V[j] over j in rank[i, :k2], divided by k2`` (columns sorted)."""
        n = indptr.shape[0] - 1
        use = min(k2, rank.shape[1])
        acc = np.zeros(n, np.float64)
        seen = np.full(n, -1, np.int64)
        touched = np.empty(n, np.int64)
        out_ptr = np.zeros(n + 1, np.int64)
        out_cols = np.empty(cols.shape[0] * 2, np.int64)
        out_vals = np.empty(cols.shape[0] * 2, np.float64)
        nnz = 0
        for i in range(n):
            m = 0
            for t in range(use):
                j = rank[i, t]
                for e in range(indptr[j], indptr[j + 1]):
                    c = cols[e]
                    if seen[c] != i:
                        seen[c] = i
                        acc[c] = 0.0
                        touched[m] = c
                        m += 1
                    acc[c] += vals[e]
            row = np.sort(touched[:m])
            out_cols = grow(out_cols, nnz + m)
            out_vals = grow(out_vals, nnz + m)
            for t in range(m):
                out_cols[nnz + t] = row[t]
                out_vals[nnz + t] = acc[row[t]] / k2
            nnz += m
            out_ptr[i + 1] = nnz
        return out_ptr, out_cols[:nnz], out_vals[:nnz]

    @njit
    def jaccard_pairs(indptr, cols, vals, max_distance):
        """COO (rows, cols, values) of ``1 - s / (2 - s)``, s = sum_k min(V_ik, V_jk), for pairs with s > 0.

        s is symmetric, so each pair is accumulated once (j > i, through the part of each column's
        inverted list after row i) and written for (i, j) and (j, i); unsorted.
        """
        n = indptr.shape[0] - 1
        nnz = cols.shape[0]
        colptr = np.zeros(n + 1, np.int64)  # inverted (column) index of V, rows ascending in each column
        for e in range(nnz):
            colptr[cols[e] + 1] += 1
        for c in range(n):
            colptr[c + 1] += colptr[c]
        cur = colptr[:-1].copy()
        crow = np.empty(nnz, np.int64)
        cval = np.empty(nnz, np.float64)
        for i in range(n):
            for e in range(indptr[i], indptr[i + 1]):
                p = cur[cols[e]]
                crow[p] = i
                cval[p] = vals[e]
                cur[cols[e]] = p + 1
        cur[:] = colptr[:-1]  # cur[c] = position of the row being processed in column c
        acc = np.zeros(n, np.float64)
        touched = np.empty(n, np.int64)
        out_i = np.empty(4 * n, np.int64)
        out_j = np.empty(4 * n, np.int64)
        out_v = np.empty(4 * n, np.float32)
        out = 0
        for i in range(n):
            m = 0
            diag = 0.0
            for e in range(indptr[i], indptr[i + 1]):
                c = cols[e]
                v = vals[e]
                diag += v
                start = cur[c] + 1  # skip row i itself and the rows before it
                cur[c] = start
                for p in range(start, colptr[c + 1]):
                    j = crow[p]
                    w = cval[p]
                    a = acc[j]
                    if a == 0.0:
                        touched[m] = j
                        m += 1
                    acc[j] = a + (v if v < w else w)
            out_i = grow(out_i, out + 2 * m + 1)
            out_j = grow(out_j, out + 2 * m + 1)
            out_v = grow(out_v, out + 2 * m + 1)
            for t in range(m + 1):
                if t < m:
                    j = touched[t]
                    s = acc[j]
                    acc[j] = 0.0
                else:
                    j = i
                    s = diag
                if s <= 0.0:
                    continue
                dist = 1.0 - s / (2.0 - s)
                if dist < 0.0:
                    dist = 0.0
                if dist <= max_distance:
                    out_i[out] = i
                    out_j[out] = j
                    out_v[out] = dist
                    out += 1
                    if j != i:
                        out_i[out] = j
                        out_j[out] = i
                        out_v[out] = dist
                        out += 1
        return out_i[:out], out_j[:out], out_v[:out]

    _KERNELS = dict(
        reciprocal_sets=reciprocal_sets,
        expanded_weights=expanded_weights,
        query_expansion=query_expansion,
        jaccard_pairs=jaccard_pairs,
    )
    return _KERNELS


_KERNELS = None


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
    topv, rank = knn_symmetric(feats, k1)
    x = feats.contiguous().numpy()
    rank_np = rank.numpy()
    rfull, rsize = kern['reciprocal_sets'](rank_np, min(k1 + 1, rank_np.shape[1]))
    half = int(round(k1 / 2))
    rhalf, hsize = kern['reciprocal_sets'](rank_np, min(half + 1, rank_np.shape[1]))
    indptr, cols, vals = kern['expanded_weights'](x, rank_np, topv.numpy(), rfull, rsize, rhalf, hsize)
    if k2 > 1:
        indptr, cols, vals = kern['query_expansion'](indptr, cols, vals, rank_np, k2)
    limit = np.inf if max_distance is None else float(max_distance)
    ii, jj, dd = kern['jaccard_pairs'](indptr, cols, vals, limit)
    order = np.argsort(ii * n + jj, kind='stable')  # row-major, as a coalesced COO tensor
    idx = torch.from_numpy(np.stack([ii[order], jj[order]]))
    return torch.sparse_coo_tensor(
        idx, torch.from_numpy(dd[order]), (n, n), is_coalesced=True, check_invariants=False
    )
