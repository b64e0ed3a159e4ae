"""Compiled (numba) CPU kernels of SpCL: the sparse Jaccard distance's set loops and the memory update.

Module-level functions so that numba's on-disk cache (``cache=True``, in ``__pycache__``) is reused by every
later process: only the first run after an install compiles them. Importing this module needs numba;
:mod:`.jaccard_cpu` and :mod:`.hybrid_memory` import it lazily and fall back to torch without it.
"""

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
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


@njit(cache=True, nogil=True, fastmath=True)
def dot(a, b):
    """Inner product of two fp32 vectors accumulated in float64."""
    acc = 0.0
    for q in range(a.shape[0]):
        acc += np.float64(a[q]) * np.float64(b[q])
    return acc


@njit(cache=True, nogil=True)
def refine_knn(feats, cand, k):
    """Re-rank each row's fp32 candidates by float64 inner products; keep the k best.

    Args:
        feats: (N, D) fp32 features.
        cand: (N, C) int64 candidates (C >= k) from the fp32 product.
        k: neighbours kept.

    Returns:
        (N, k) int64 neighbours (descending float64 similarity, ties in candidate order) and their (N, k)
        float64 similarities.
    """
    n, c = cand.shape
    rank = np.empty((n, k), np.int64)
    sims = np.empty((n, k), np.float64)
    s = np.empty(c, np.float64)
    for i in range(n):
        for t in range(c):
            s[t] = -dot(feats[i], feats[cand[i, t]])
        order = np.argsort(s, kind='mergesort')
        for t in range(k):
            rank[i, t] = cand[i, order[t]]
            sims[i, t] = -s[order[t]]
    return rank, sims


@njit(cache=True, nogil=True)
def grow(a, need):
    if need <= a.shape[0]:
        return a
    b = np.empty(max(need, 2 * a.shape[0]), a.dtype)
    b[: a.shape[0]] = a
    return b


@njit(cache=True, nogil=True)
def expanded_weights(feats, rank, topv, rfull, rsize, rhalf, hsize):
    """CSR (indptr, cols, vals) of V: softmax(-(2 - 2 sim)) over the expanded k-reciprocal set."""
    n, kk = rank.shape
    mark = np.full(n, -1, np.int64)  # R(i) membership
    seen = np.full(n, -1, np.int64)  # E(i) membership
    known = np.full(n, -1, np.int64)  # pairs whose similarity the top-k kept
    simval = np.zeros(n, np.float64)
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
                s = simval[j]
            else:
                s = dot(feats[i], feats[j])
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


@njit(cache=True, nogil=True)
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


@njit(cache=True, nogil=True)
def overlap_distance(s):
    """Jaccard distance ``1 - s / (2 - s)`` of a min-sum overlap ``s`` in (0, 1], clipped at 0 (rounding)."""
    dist = 1.0 - s / (2.0 - s)
    return dist if dist > 0.0 else 0.0


@njit(cache=True, nogil=True)
def jaccard_pairs(indptr, cols, vals, max_distance):
    """COO ((2, nnz) indexes, values) of ``1 - s / (2 - s)``, s = sum_k min(V_ik, V_jk), for pairs with s > 0.

    s is symmetric, so each pair is accumulated once (j > i, through the part of each column's
    inverted list after row i) into the upper triangle, whose rows are emitted with their columns sorted;
    the full matrix is then its transpose (rows ascending, so already sorted), the diagonal and itself,
    placed row by row: row-major and sorted, as a coalesced COO tensor needs, without a global sort.
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
    up_ptr = np.zeros(n + 1, np.int64)  # the upper triangle (j > i), CSR with sorted columns
    up_j = np.empty(2 * n, np.int64)
    up_v = np.empty(2 * n, np.float32)
    diag_v = np.zeros(n, np.float32)
    has_diag = np.zeros(n, np.bool_)
    low_cnt = np.zeros(n, np.int64)  # entries of each row below the diagonal (the transpose's)
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
        if diag > 0.0:
            dist = overlap_distance(diag)
            if dist <= max_distance:
                diag_v[i] = dist
                has_diag[i] = True
        if 8 * m > n - i:  # dense enough: the columns in order by one scan of acc[i + 1:]
            m = 0
            for j in range(i + 1, n):
                if acc[j] != 0.0:
                    touched[m] = j
                    m += 1
        else:
            touched[:m] = np.sort(touched[:m])
        up_j = grow(up_j, out + m)
        up_v = grow(up_v, out + m)
        for t in range(m):
            j = touched[t]
            s = acc[j]
            acc[j] = 0.0
            if s <= 0.0:
                continue
            dist = overlap_distance(s)
            if dist <= max_distance:
                up_j[out] = j
                up_v[out] = dist
                low_cnt[j] += 1
                out += 1
        up_ptr[i + 1] = out
    out_ptr = np.zeros(n + 1, np.int64)
    for i in range(n):
        out_ptr[i + 1] = out_ptr[i] + low_cnt[i] + has_diag[i] + (up_ptr[i + 1] - up_ptr[i])
    total = out_ptr[n]
    out_idx = np.empty((2, total), np.int64)
    out_j = out_idx[1]
    out_v = np.empty(total, np.float32)
    fill = out_ptr[:-1].copy()  # next free slot of each row's part below the diagonal
    for i in range(n):
        out_idx[0, out_ptr[i] : out_ptr[i + 1]] = i
        for e in range(up_ptr[i], up_ptr[i + 1]):
            j = up_j[e]
            out_j[fill[j]] = i
            out_v[fill[j]] = up_v[e]
            fill[j] += 1
    for i in range(n):
        p = out_ptr[i] + low_cnt[i]
        if has_diag[i]:
            out_j[p] = i
            out_v[p] = diag_v[i]
            p += 1
        for e in range(up_ptr[i], up_ptr[i + 1]):
            out_j[p] = up_j[e]
            out_v[p] = up_v[e]
            p += 1
    return out_idx, out_v


@njit(cache=True, nogil=True)
def sequential_update(memory, rows, feats, m):
    """In place, for each sample b in order (row y = rows[b]): ``f_y = m f_y + (1 - m) x_b``, normalised."""
    for b in range(rows.shape[0]):
        y = rows[b]
        sq = 0.0
        for q in range(memory.shape[1]):
            v = np.float32(m) * memory[y, q] + np.float32(1.0 - m) * feats[b, q]
            memory[y, q] = v
            sq += np.float64(v) * v
        inv = np.float32(1.0 / max(np.sqrt(sq), 1e-12))
        for q in range(memory.shape[1]):
            memory[y, q] *= inv
