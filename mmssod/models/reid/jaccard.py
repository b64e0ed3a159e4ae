"""Sparse k-reciprocal Jaccard distance (Zhong et al., CVPR 2017 re-ranking), as SpCL clusters with.

For L2-normalised features, with neighbour lists ``rank[i]`` = the k1 nearest samples by inner product
(the sample itself first):

1. k-reciprocal set ``R(i, k) = {j in rank[i, :k+1] : i in rank[j, :k+1]}``, for k = k1 and round(k1 / 2).
2. Expansion: ``E(i) = R(i, k1)`` plus ``R(c, k1/2)`` of every ``c in R(i, k1)`` whose half set overlaps
   ``R(i, k1)`` in more than 2/3 of its members.
3. ``V[i, j] = softmax_j(-(2 - 2 <x_i, x_j>))`` over ``j in E(i)``, 0 elsewhere.
4. Query expansion: ``V[i] <- mean of V[j] over j in rank[i, :k2]``.
5. ``d(i, j) = 1 - s / (2 - s)`` with ``s = sum_k min(V[i, k], V[j, k])``, clamped at 0.

Pairs without shared support have ``d = 1`` exactly, so the result is returned sparse (absent = 1.0) and
is computed without any dense N x N intermediate: rows are processed in chunks whose buffers are bounded
(``chunk x N`` at most), which is what makes N = 50,000 fit in a few GB.
"""

from __future__ import annotations

from typing import Optional, Tuple

import torch
from torch import Tensor

_CHUNK_ELEMENTS = 1 << 25  # bound of the dense chunked temporaries (elements, ~128 MB in fp32)
_PAIR_CHUNK = 1 << 22  # candidate (i, j) pairs per step of the min-sum (each pair needs ~40 bytes)


def knn_rank(feats: Tensor, k: int) -> Tensor:
    """Indexes of the k nearest samples by inner product, nearest first (the sample itself normally first).

    Args:
        feats (Tensor): (N, D) L2-normalised features.
        k (int): Neighbours per sample (<= N).

    Returns:
        Tensor: (N, k) int64.
    """
    n = feats.size(0)
    rows = max(1, _CHUNK_ELEMENTS // max(n, 1))
    out = []
    for s in range(0, n, rows):
        sim = feats[s : s + rows] @ feats.t()
        out.append(sim.topk(k, dim=1).indices)
    return torch.cat(out)


def k_reciprocal_sets(rank: Tensor, k: int) -> Tuple[Tensor, Tensor]:
    """k-reciprocal neighbour sets as padded lists.

    Args:
        rank (Tensor): (N, K) neighbour lists from :func:`knn_rank`.
        k (int): Uses ``rank[:, :k + 1]`` (at most K columns).

    Returns:
        tuple[Tensor, Tensor]: (N, k') candidates ``rank[:, :k+1]`` and the (N, k') bool mask of the
        reciprocal ones.
    """
    fwd = rank[:, : k + 1]
    n, w = fwd.shape
    mask = torch.empty(n, w, dtype=torch.bool, device=rank.device)
    rows = max(1, _CHUNK_ELEMENTS // (w * w))
    for s in range(0, n, rows):
        f = fwd[s : s + rows]
        back = fwd[f]  # (c, w, w): the lists of each candidate
        me = torch.arange(s, s + f.size(0), device=rank.device).view(-1, 1, 1)
        mask[s : s + rows] = (back == me).any(-1)
    return fwd, mask


def _dedupe_rows(cand: Tensor, sentinel: int) -> Tensor:
    """Sort each row, replace repeated values by ``sentinel`` and move them to the end."""
    srt = cand.sort(dim=1).values
    dup = torch.zeros_like(srt, dtype=torch.bool)
    dup[:, 1:] = srt[:, 1:] == srt[:, :-1]
    return srt.masked_fill(dup, sentinel).sort(dim=1).values


def expanded_weights(feats: Tensor, rank: Tensor, k1: int) -> Tuple[Tensor, Tensor, Tensor]:
    """Steps 1-3: the expanded k-reciprocal sets and their softmax weights, as COO entries.

    Args:
        feats (Tensor): (N, D) L2-normalised features.
        rank (Tensor): (N, K) neighbour lists, K >= k1 columns used.
        k1 (int): k1.

    Returns:
        tuple[Tensor, Tensor, Tensor]: rows, cols (int64, sorted by row then col) and fp32 values of V.
    """
    n = feats.size(0)
    cand, recip = k_reciprocal_sets(rank, k1)
    half_cand, half_recip = k_reciprocal_sets(rank, int(round(k1 / 2)))
    half = half_cand.masked_fill(~half_recip, -1)  # (N, h) reciprocal half sets, -1 = absent
    half_size = half_recip.sum(1)
    r_sets = cand.masked_fill(~recip, -2)  # (N, w); -2 never equals a member of a half set
    w, h = r_sets.size(1), half.size(1)
    rows_out, cols_out, vals_out = [], [], []
    step = max(1, _CHUNK_ELEMENTS // (w * h * w))
    for s in range(0, n, step):
        r = r_sets[s : s + step]  # (c, w)
        c = r.size(0)
        member = r >= 0
        safe = r.clamp(min=0)
        hs = half[safe]  # (c, w, h): half set of every candidate
        overlap = ((hs.unsqueeze(-1) == r.view(c, 1, 1, w)) & (hs >= 0).unsqueeze(-1)).sum((-1, -2))
        accept = member & (overlap.float() > 2.0 / 3.0 * half_size[safe].float())
        hs = hs.masked_fill(~accept.unsqueeze(-1), -1)
        allc = torch.cat([r.masked_fill(~member, -1), hs.view(c, w * h)], dim=1)
        allc = _dedupe_rows(allc.masked_fill(allc < 0, n), n)
        width = int((allc < n).sum(1).max())
        allc = allc[:, :width]
        valid = allc < n
        dot = torch.empty(c, width, device=feats.device)
        sub = max(1, _CHUNK_ELEMENTS // (width * feats.size(1)))
        for a in range(0, c, sub):  # gather only the needed rows: (sub, width, D) at a time
            b = min(a + sub, c)
            nb = feats[allc[a:b].clamp(max=n - 1)]
            dot[a:b] = torch.bmm(nb, feats[s + a : s + b].unsqueeze(-1)).squeeze(-1)
        dist = 2.0 - 2.0 * dot
        weight = torch.softmax((-dist).masked_fill(~valid, float('-inf')), dim=1)
        rr = torch.arange(s, s + c, device=feats.device).unsqueeze(1).expand_as(allc)
        rows_out.append(rr[valid])
        cols_out.append(allc[valid])
        vals_out.append(weight[valid].float())
    return torch.cat(rows_out), torch.cat(cols_out), torch.cat(vals_out)


def query_expansion(
    rows: Tensor, cols: Tensor, vals: Tensor, rank: Tensor, k2: int, n: int
) -> Tuple[Tensor, Tensor, Tensor]:
    """Step 4: ``V_qe[i] = mean of V[j], j in rank[i, :k2]``, sparse.

    Args:
        rows, cols, vals (Tensor): COO entries of V sorted by row.
        rank (Tensor): (N, K) neighbour lists.
        k2 (int): Rows averaged (the sample itself included); 1 = no expansion.
        n (int): N.

    Returns:
        tuple[Tensor, Tensor, Tensor]: COO entries of V_qe, sorted by row then column.
    """
    if k2 <= 1:
        return rows, cols, vals
    rowlen = torch.bincount(rows, minlength=n)
    rowptr = torch.zeros(n + 1, dtype=torch.long, device=rows.device)
    rowptr[1:] = rowlen.cumsum(0)
    nbrs = rank[:, :k2].reshape(-1)  # (N * k2,) source rows, grouped by target row
    target = torch.arange(n, device=rows.device).repeat_interleave(rank[:, :k2].size(1))
    lens = rowlen[nbrs]
    tgt = target.repeat_interleave(lens)
    seg_start = torch.repeat_interleave(rowptr[nbrs], lens)
    offset = torch.arange(int(lens.sum()), device=rows.device) - torch.repeat_interleave(
        lens.cumsum(0) - lens, lens
    )
    src = seg_start + offset
    qe = torch.sparse_coo_tensor(
        torch.stack([tgt, cols[src]]), vals[src], (n, n), check_invariants=False
    ).coalesce()
    idx = qe.indices()
    return idx[0], idx[1], qe.values() / k2


def jaccard_from_weights(
    rows: Tensor, cols: Tensor, vals: Tensor, n: int, max_distance: Optional[float] = None
) -> Tensor:
    """Step 5: pairwise Jaccard distance from the sparse weights, by an inverted (column) index.

    Args:
        rows, cols, vals (Tensor): COO entries of V_qe sorted by row.
        n (int): N.
        max_distance (float, optional): Drop entries with a larger distance (they read as 1.0); None keeps
            every pair with shared support. Defaults to None.

    Returns:
        Tensor: Sparse COO (N, N) fp32 distances, coalesced; absent entries mean 1.0.
    """
    device = rows.device
    order = torch.sort(cols, stable=True).indices  # column-major copy = inverted index
    c_rows, c_vals = rows[order], vals[order]
    collen = torch.bincount(cols, minlength=n)
    colptr = torch.zeros(n + 1, dtype=torch.long, device=device)
    colptr[1:] = collen.cumsum(0)
    rowlen = torch.bincount(rows, minlength=n)
    rowptr = torch.zeros(n + 1, dtype=torch.long, device=device)
    rowptr[1:] = rowlen.cumsum(0)
    pairs_per_entry = collen[cols]
    pairs_per_row = torch.zeros(n, dtype=torch.long, device=device).index_add_(0, rows, pairs_per_entry)
    max_rows = max(1, _CHUNK_ELEMENTS // n)
    out_i, out_j, out_v = [], [], []
    start = 0
    cum = pairs_per_row.cumsum(0).cpu()
    while start < n:
        base = int(cum[start - 1]) if start else 0
        end = int(torch.searchsorted(cum, base + _PAIR_CHUNK, right=True))
        end = min(max(end, start + 1), start + max_rows, n)
        e0, e1 = int(rowptr[start]), int(rowptr[end])
        ei, ek, ev = rows[e0:e1], cols[e0:e1], vals[e0:e1]
        cnt = collen[ek]
        pi = torch.repeat_interleave(ei - start, cnt)
        pv = torch.repeat_interleave(ev, cnt)
        off = torch.arange(int(cnt.sum()), device=device) - torch.repeat_interleave(cnt.cumsum(0) - cnt, cnt)
        src = torch.repeat_interleave(colptr[ek], cnt) + off
        pj = c_rows[src]
        acc = torch.zeros((end - start) * n, dtype=torch.float32, device=device)
        acc.index_add_(0, pi * n + pj, torch.minimum(pv, c_vals[src]))
        nz = acc.nonzero().squeeze(1)
        s = acc[nz]
        d = (1.0 - s / (2.0 - s)).clamp(min=0.0)
        if max_distance is not None:
            keep = d <= max_distance
            nz, d = nz[keep], d[keep]
        out_i.append(nz // n + start)
        out_j.append(nz % n)
        out_v.append(d)
        start = end
    idx = torch.stack([torch.cat(out_i), torch.cat(out_j)])
    return torch.sparse_coo_tensor(idx, torch.cat(out_v), (n, n), is_coalesced=True, check_invariants=False)


JACCARD_BACKENDS = ('auto', 'torch', 'cpu')


@torch.no_grad()
def jaccard_distance(
    feats: Tensor, k1: int = 30, k2: int = 6, max_distance: Optional[float] = None, backend: str = 'auto'
) -> Tensor:
    """k-reciprocal Jaccard distance of L2-normalised features, sparse, on the features' device.

    Args:
        feats (Tensor): (N, D) features (normalised here; fp16 inputs are computed in fp32).
        k1 (int): k1 of the k-reciprocal sets (clipped to N). Defaults to 30.
        k2 (int): Query-expansion neighbours (clipped to N). Defaults to 6.
        max_distance (float, optional): Drop larger distances from the output (exact for any consumer
            that only looks at distances <= it, e.g. DBSCAN with eps <= it). Defaults to None.
        backend (str): ``'torch'`` (this module, any device), ``'cpu'`` (compiled loops of
            :mod:`.jaccard_cpu`, needs numba, CPU tensors) or ``'auto'`` (``'cpu'`` for CPU tensors when
            numba is installed, else ``'torch'``). Same output up to float rounding. Defaults to 'auto'.

    Returns:
        Tensor: Sparse COO (N, N) fp32 distance, coalesced; entries not stored are exactly 1.0; the
        diagonal is stored (0).
    """
    from .jaccard_cpu import jaccard_distance_cpu, numba_available

    if feats.dim() != 2 or feats.size(0) < 1:
        raise ValueError(f'jaccard_distance expects (N, D) features with N >= 1, got {tuple(feats.shape)}')
    if backend not in JACCARD_BACKENDS:
        raise ValueError(f'jaccard_distance backend must be one of {JACCARD_BACKENDS}, got {backend!r}')
    if backend == 'auto':
        backend = 'cpu' if feats.device.type == 'cpu' and numba_available() else 'torch'
    elif backend == 'cpu' and (feats.device.type != 'cpu' or not numba_available()):
        raise ValueError(
            "jaccard_distance backend='cpu' needs CPU features and numba (pip install numba); got "
            f'{feats.device.type} features, numba {"installed" if numba_available() else "missing"}. '
            "Use backend='torch' or 'auto'."
        )
    feats = torch.nn.functional.normalize(feats.float(), dim=1)
    n = feats.size(0)
    k1, k2 = min(k1, n), min(k2, n)
    if backend == 'cpu':
        return jaccard_distance_cpu(feats, k1, k2, max_distance)
    rank = knn_rank(feats, k1)
    rows, cols, vals = expanded_weights(feats, rank, k1)
    rows, cols, vals = query_expansion(rows, cols, vals, rank, k2, n)
    return jaccard_from_weights(rows, cols, vals, n, max_distance)


def sparse_to_scipy(dist: Tensor):
    """A sparse torch distance matrix as a scipy CSR matrix (explicit zeros kept).

    Args:
        dist (Tensor): Sparse COO (N, N) tensor.

    Returns:
        scipy.sparse.csr_matrix: Same entries, float64.
    """
    from scipy import sparse

    dist = dist.coalesce().cpu()
    idx = dist.indices().numpy()
    return sparse.csr_matrix((dist.values().double().numpy(), (idx[0], idx[1])), shape=tuple(dist.shape))
