"""SpCL benchmarks: clustering cost, memory-update speed-up, accuracy on the composited re-ID benchmark.

(a) ``clustering``: sparse k-reciprocal Jaccard distance + DBSCAN at eps, eps -/+ gap + O(N) reliability on
    synthetic clustered features (N x d), each size in a fresh subprocess so that its peak memory is its own
    (CPU: peak RSS; CUDA: peak allocated).
(b) ``update``: vectorised momentum update of a batch (default 256: 16 source classes x 4 images, i.e.
    duplicate rows, + 192 target instances) against the per-sample Python loop of the definition, as a
    ratio measured in the same run.
(c) ``accuracy``: on the composited two-domain re-ID benchmark ("composited from real images"), with the
    ImageNet-pretrained EfficientNet-Lite0 (``--backbone lite0``, default) or a random-init ResNet-18
    (``r18``), for each seed: the untrained start (evaluated as built), source-only, SpCL without the
    reliability criterion, SpCL (UDA), SpCL USL on the target alone and the target oracle (the source-only
    config and loss on the target train set with its true identities); reports target mAP / top-1 (Market
    protocol) per seed and mean +- sd, the goals (oracle - source-only >= ``--min-oracle-gap`` mAP, UDA -
    source-only > ``--min-gap-sd`` seed sd and > 0 on each seed, USL above the untrained start on each seed),
    and per epoch the number of clusters / un-clustered instances and the pseudo labels' ARI / NMI against
    the true target identities. ``--epochs`` / ``--iters`` / ``--batch`` scale it to CPUs; ``--eps`` sets
    the target domain's DBSCAN eps. After every epoch it also
    clusters the memory's target rows and a fresh eval-mode extraction the same way (Jaccard + DBSCAN +
    reliability, as the hook does) and records both ARI / NMI; ``--out`` writes the rows to a JSON file.
    ``--refresh-memory`` turns on ``SpCLClusterHook(refresh_memory=True)`` in every clustering arm.
(f) ``gate``: the memory-quality gate to pass before a multi-seed ``accuracy`` run: the UDA arm, seed 0,
    ``--epochs`` (default 1); passes when the clustered memory's ARI after epoch 0 is at least
    ``--gate-ratio`` (0.8) x the ARI of clustered fresh eval-mode features. Prints the result, writes the JSON
    (``--out``), exits with status 1 when it fails; ``accuracy`` with several seeds needs ``--gate-json`` of a
    passed gate with the same data and schedule (or ``--skip-gate``).
(f') ``gate-eps``: the gate with eps chosen for each feature source by one rule (:data:`GATE_EPS`): one
    epoch of the UDA arm, then the memory's target rows and fresh eval-mode features of the same weights
    clustered at every eps of the grid, each scored at its own best eps; ``--epochs`` is the schedule's (the
    learning-rate milestone), the run stops after its first epoch.
(g) ``domain-check``: source-only and target oracle only, one seed, ``--epochs`` (default 2), on
    ``--target-domain hard`` by default: whether the oracle - source-only gap reaches ``--min-oracle-gap``
    (10 mAP) before a multi-seed run; exits with status 1 when it does not.
(e) ``eps-sweep``: clusters / outliers / ARI / NMI of the target training images under the untrained model
    (ImageNet Lite0 by default) for several DBSCAN eps, to choose the target domain's eps.
(d) ``jaccard-compare``: the torch (old) and compiled CPU (new) Jaccard distance + clustering in one
    process, alternated, median of repeats, with their max |difference|.
(h) ``jaccard-official``: the official SpCL ``compute_jaccard_distance`` (faiss CPU kNN + dense re-ranking,
    run from a checkout given by ``--official-root``, with faiss importable) against mmssod's, alternated,
    median of repeats, their max |difference| on the full N x N matrix, and the floor set by the kNN matrix
    product (2 N^2 d flops at the rate of one measured fp32 ``torch.mm``).

``clustering``, ``update``, ``jaccard-compare`` and ``jaccard-official`` save their rows with ``--out``; the
docs' timing tables are rendered from those files (:data:`TIMING_TABLES`, by ``render_docs.py``).

``--target-domain hard`` (``accuracy``, ``gate``, ``domain-check``, ``eps-sweep``) uses the composited set
whose source and target identities come from disjoint Fashion-MNIST classes and share a small colour palette
(``data/composited_reid_hard`` unless ``--data-root`` is given); a missing data root is built with
``BENCH_DATA`` sizes, and a build of another target domain is refused.

Runs on CUDA when available (``--device auto``), else on CPU at the sizes given. Examples::

    python tools/benchmarks/spcl_bench.py clustering --sizes 12936 50000
    python tools/benchmarks/spcl_bench.py update --batch 256
    python tools/benchmarks/spcl_bench.py gate --data-root data/composited_reid --out gate.json
    python tools/benchmarks/spcl_bench.py accuracy --data-root data/composited_reid --epochs 20 \
        --seeds 0 1 2 --gate-json gate.json
    python tools/benchmarks/spcl_bench.py domain-check --target-domain hard --out domain_check.json
    python tools/benchmarks/spcl_bench.py jaccard-compare --sizes 5000 12936 --threads 1
    PYTHONPATH=FAISS_DIR python tools/benchmarks/spcl_bench.py jaccard-official --official-root SPCL_DIR \
        --sizes 5000 --threads 1 --out jaccard_official.json
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import os.path as osp
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Sequence

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, REPO)
from tools.benchmarks.determinism import add_determinism_args, randomness, run_env, run_record  # noqa: E402
from tools.benchmarks.stats import (  # noqa: E402
    is_effect,
    markdown_table,
    mean_sd,
    mean_sd_text,
    number,
    seeds_mean_sd_text,
)


def resolve_device(name: str) -> str:
    import torch

    if name == 'auto':
        return 'cuda' if torch.cuda.is_available() else 'cpu'
    return name


def synthetic_features(n: int, dim: int, seed: int = 0, per_id: int = 8, noise: float = 0.9):
    """Clustered L2-normalised features: n / per_id identities, each a centre plus Gaussian noise."""
    import torch

    g = torch.Generator().manual_seed(seed)
    ids = max(1, n // per_id)
    centers = torch.randn(ids, dim, generator=g)
    x = centers[torch.arange(n) % ids] + noise * torch.randn(n, dim, generator=g)
    return torch.nn.functional.normalize(x, dim=1)


def clustering_child(n: int, dim: int, device: str) -> dict:
    """One clustering measurement (runs in its own process)."""
    import torch

    from mmssod.models.reid.clustering import self_paced_clustering
    from mmssod.models.reid.jaccard import jaccard_distance, sparse_to_scipy
    from mmssod.models.reid.jaccard_cpu import numba_available

    feats = synthetic_features(n, dim).to(device)
    if device == 'cuda':
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    dist = jaccard_distance(feats, k1=30, k2=6, max_distance=0.62)
    if device == 'cuda':
        torch.cuda.synchronize()
    t1 = time.perf_counter()
    labels, thr, stats = self_paced_clustering(sparse_to_scipy(dist), eps=0.6, eps_gap=0.02, min_samples=4)
    t2 = time.perf_counter()
    out = dict(
        n=n,
        dim=dim,
        device=device,
        backend='cpu' if device == 'cpu' and numba_available() else 'torch',
        jaccard_s=round(t1 - t0, 3),
        dbscan_reliability_s=round(t2 - t1, 3),
        total_s=round(t2 - t0, 3),
        nnz=int(dist.values().numel()),
        peak_rss_gb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3),
        **stats,
    )
    if device == 'cuda':
        out['peak_cuda_gb'] = round(torch.cuda.max_memory_allocated() / 2**30, 3)
    return out


def exact_unit_features(feats):
    """(N, d) float64 features normalised in fp32 as ``jaccard_distance`` does, for exact arithmetic on them.

    As the dense reference of tests/test_spcl/test_jaccard.py: renormalising in float64 would move every
    similarity by ~1e-9, enough to reorder the 1e-8 near-ties of large N.
    """
    import torch

    return torch.nn.functional.normalize(feats.float(), dim=1).double()


def reference_float64(feats):
    """The torch path's algorithm with float64 features: neighbour lists ranked by exact similarities.

    The same steps as ``jaccard_distance(backend='torch')`` (which is tested equal to the dense
    reference implementation), with the kNN product and the expansion's dot products in float64.
    """
    from mmssod.models.reid import jaccard as jac

    f = exact_unit_features(feats)
    n = f.size(0)
    rank = jac.knn_rank(f, 30)
    rows, cols, vals = jac.expanded_weights(f, rank, 30)
    rows, cols, vals = jac.query_expansion(rows, cols, vals, rank, 6, n)
    return jac.jaccard_from_weights(rows, cols, vals, n)


def max_abs_difference(a, b) -> float:
    """Max |a - b| of two sparse distance matrices whose absent entries mean 1.0."""
    import torch

    def shifted(x):
        x = x.coalesce()
        return torch.sparse_coo_tensor(
            x.indices(), x.values().double() - 1.0, x.shape, check_invariants=False
        )

    return float((shifted(a) - shifted(b)).coalesce().values().abs().max())


def run_jaccard_compare(args) -> list:
    """Old (torch) vs new (compiled CPU) Jaccard + clustering in one process: alternated, median of repeats.

    Both compute the distance with ``max_distance = eps + gap`` and then the same DBSCAN x 3 +
    reliability (``self_paced_clustering``); the max |difference| of the two distance matrices and whether
    the labels agree are reported too, and, on the full (uncut) matrices, each path's max |difference| from
    the float64 reference (:func:`reference_float64`).
    """
    import torch

    from mmssod.models.reid.clustering import self_paced_clustering
    from mmssod.models.reid.jaccard import jaccard_distance, sparse_to_scipy

    torch.set_num_threads(args.threads)
    rows = []
    for n in args.sizes:
        feats = synthetic_features(n, args.dim)

        def run(backend, feats=feats):
            t = time.perf_counter()
            dist = jaccard_distance(feats, 30, 6, max_distance=0.62, backend=backend)
            labels = self_paced_clustering(sparse_to_scipy(dist), 0.6, 0.02, 4)[0]
            return time.perf_counter() - t, dist, labels

        t0 = time.perf_counter()
        run('cpu')  # compile (or load numba's cache) and warm up both
        first = time.perf_counter() - t0
        run('torch')
        times = {'torch': [], 'cpu': []}
        for _ in range(args.repeats):
            for backend in ('torch', 'cpu'):
                dt, dist, labels = run(backend)
                times[backend].append(dt)
                if backend == 'torch':
                    old_dist, old_labels = dist, labels
                else:
                    new_dist, new_labels = dist, labels
        same_pattern = torch.equal(old_dist.indices(), new_dist.indices())
        diff = float((old_dist.values() - new_dist.values()).abs().max()) if same_pattern else float('nan')
        # exactness, on the full (uncut) matrices: both paths against the float64 reference
        ref = reference_float64(feats)
        full_old = jaccard_distance(feats, 30, 6, backend='torch')
        full_new = jaccard_distance(feats, 30, 6, backend='cpu')
        old_t, new_t = statistics.median(times['torch']), statistics.median(times['cpu'])
        row = dict(
            n=n,
            dim=args.dim,
            threads=args.threads,
            repeats=args.repeats,
            old_torch_s=round(old_t, 3),
            new_cpu_s=round(new_t, 3),
            speedup=round(old_t / new_t, 2),
            old_runs_s=[round(x, 2) for x in times['torch']],
            new_runs_s=[round(x, 2) for x in times['cpu']],
            first_new_call_s=round(first, 2),
            same_stored_pairs=same_pattern,
            max_abs_diff=diff,
            max_abs_diff_old_vs_float64_reference=max_abs_difference(full_old, ref),
            max_abs_diff_new_vs_float64_reference=max_abs_difference(full_new, ref),
            same_labels=bool((old_labels == new_labels).all()),
            load_avg=os.getloadavg()[0],
        )
        rows.append(row)
        print(json.dumps(row), flush=True)
    save_run(args.out, rows)
    return rows


OFFICIAL_HINT = (
    'get the official SpCL code (a checkout of github.com/yxgeee/SpCL; --official-root is the folder that '
    'holds spcl/utils/faiss_rerank.py) and faiss for it (e.g. pip install --target DIR faiss-cpu, then '
    'PYTHONPATH=DIR); neither is a dependency of mmssod'
)


def load_official_jaccard(root: str):
    """The official ``compute_jaccard_distance`` from a SpCL checkout, without running ``spcl/__init__.py``.

    ``spcl/__init__.py`` imports the official datasets, models and trainers; only
    ``spcl/utils/faiss_rerank.py`` and its ``faiss_utils`` are needed, so they are imported under a private
    package name whose search path is the checkout's ``spcl/utils``.

    Args:
        root (str): Folder holding ``spcl/utils/faiss_rerank.py``.

    Returns:
        callable: ``compute_jaccard_distance(target_features, k1, k2, print_flag, search_option,
        use_float16)``.

    Raises:
        SystemExit: The file or faiss is missing (the message says how to get them).
    """
    import importlib
    import types

    path = osp.join(root or '', 'spcl', 'utils', 'faiss_rerank.py')
    if not root or not osp.isfile(path):
        raise SystemExit(f'--official-root {root!r}: {path} does not exist; {OFFICIAL_HINT}')
    try:
        import faiss  # noqa: F401
    except ImportError as err:
        raise SystemExit(
            f'--official-root {root!r}: faiss is not importable ({err}); {OFFICIAL_HINT}'
        ) from err
    pkg = '_spcl_official'
    for name, sub in ((pkg, 'spcl'), (f'{pkg}.utils', osp.join('spcl', 'utils'))):
        if name not in sys.modules:
            mod = types.ModuleType(name)
            mod.__path__ = [osp.join(root, sub)]
            sys.modules[name] = mod
    return importlib.import_module(f'{pkg}.utils.faiss_rerank').compute_jaccard_distance


def gemm_floor_seconds(n: int, dim: int, flops_per_s: float, symmetric: bool = False) -> float:
    """Time of the kNN matrix product ``X @ X^T`` of (n, dim) features at a measured flop rate.

    The full product is n^2 * dim multiply-adds = 2 n^2 dim flops; the symmetric (triangle) product needs
    half.

    Args:
        n (int): Samples N.
        dim (int): Feature dimension d.
        flops_per_s (float): Measured fp32 rate (flop/s, one multiply-add = 2 flops).
        symmetric (bool): Only one triangle of the product. Defaults to False.

    Returns:
        float: Seconds.
    """
    if flops_per_s <= 0:
        raise ValueError(f'gemm_floor_seconds needs a positive flop rate, got {flops_per_s}')
    flops = 2.0 * n * n * dim
    return (flops / 2 if symmetric else flops) / flops_per_s


def dense_from_sparse_distance(dist):
    """(N, N) float32 numpy matrix of a sparse distance whose absent entries mean 1.0."""
    import numpy as np

    dist = dist.coalesce()
    out = np.ones(tuple(dist.shape), dtype=np.float32)
    idx = dist.indices().numpy()
    out[idx[0], idx[1]] = dist.values().numpy()
    return out


def official_with_exact_lists(official, feats, k1: int, k2: int):
    """The official function with its faiss search replaced by neighbour lists ranked in float64.

    Separates the two causes of a difference: fp32 near-ties that faiss ranks otherwise than the exact
    order, and the re-ranking itself. Swaps the module's ``index_init_cpu`` for the call only.

    Args:
        official (callable): :func:`load_official_jaccard`'s function.
        feats (Tensor): (N, d) features.
        k1 (int): k1.
        k2 (int): k2.

    Returns:
        tuple[ndarray, ndarray, ndarray]: The official (N, N) distance on the exact lists, the exact (N, k1)
        lists and faiss's (N, k1) lists.
    """
    import faiss

    from mmssod.models.reid.jaccard import knn_rank

    exact = knn_rank(exact_unit_features(feats), k1).numpy()
    flat = faiss.IndexFlatL2(feats.size(1))
    flat.add(feats.numpy())
    found = flat.search(feats.numpy(), k1)[1]

    class ExactLists:
        def __init__(self, dim):
            pass

        def add(self, x):
            pass

        def search(self, x, k):
            return None, exact[:, :k]

    module = sys.modules[official.__module__]
    saved = module.index_init_cpu
    module.index_init_cpu = ExactLists
    try:
        dist = official(feats, k1=k1, k2=k2, print_flag=False, search_option=3)
    finally:
        module.index_init_cpu = saved
    return dist, exact, found


def timed(fn, *args, **kwargs) -> tuple:
    """(seconds, result) of one call of ``fn``."""
    t = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - t, out


def run_jaccard_official(args) -> list:
    """The official SpCL ``compute_jaccard_distance`` (faiss CPU kNN + dense re-ranking) vs mmssod's.

    Per size: A (official, ``search_option=3``: faiss ``IndexFlatL2`` on the CPU), B (mmssod's
    ``jaccard_distance``, the full matrix, ``max_distance=None``), C (mmssod with ``--max-distance``, as the
    clustering hook calls it; timed only) and G (one fp32 ``torch.mm`` of the (N, d) features with
    themselves) alternated ``--repeats`` times (after one untimed call of A and B on 300 samples, which
    loads numba's cache and faiss), medians reported. The distances are compared on the full N x N matrix
    (mmssod's absent entries = 1.0, as the official dense matrix has them). The floor is the full kNN
    product at G's flop rate (and half of it, the symmetric product mmssod computes); ``max_ratio_*`` =
    official / floor bounds any speed-up of an implementation that still computes that product.
    """
    official = load_official_jaccard(args.official_root)  # first: loud when the code or faiss is missing
    import faiss
    import numpy as np
    import torch

    from mmssod.models.reid.jaccard import jaccard_distance
    from mmssod.models.reid.jaccard_cpu import numba_available

    torch.set_num_threads(args.threads)
    faiss.omp_set_num_threads(args.threads)
    k1, k2 = args.k1, args.k2
    small = synthetic_features(300, args.dim)
    official(small, k1=k1, k2=k2, print_flag=False, search_option=3)  # warm-up, untimed
    jaccard_distance(small, k1, k2)
    rows = []
    for n in args.sizes:
        feats = synthetic_features(n, args.dim).contiguous()
        load_before = os.getloadavg()

        times = dict(official=[], mmssod=[], cut=[], gemm=[])
        for _ in range(args.repeats):
            dt, off = timed(official, feats, k1=k1, k2=k2, print_flag=False, search_option=3)
            times['official'].append(dt)
            dt, ours = timed(jaccard_distance, feats, k1, k2)
            times['mmssod'].append(dt)
            times['cut'].append(timed(jaccard_distance, feats, k1, k2, max_distance=args.max_distance)[0])
            times['gemm'].append(timed(torch.mm, feats, feats.t())[0])
        mine = dense_from_sparse_distance(ours)
        diff = np.abs(off.astype(np.float64) - mine)
        off_exact, exact, found = official_with_exact_lists(official, feats, k1, k2)
        diff_exact = np.abs(off_exact.astype(np.float64) - mine)
        del off_exact
        off_t, our_t, cut_t, gemm_t = (
            statistics.median(times[k]) for k in ('official', 'mmssod', 'cut', 'gemm')
        )
        rate = 2.0 * n * n * args.dim / gemm_t
        floor = gemm_floor_seconds(n, args.dim, rate)
        half = gemm_floor_seconds(n, args.dim, rate, symmetric=True)
        row = dict(
            n=n,
            dim=args.dim,
            k1=k1,
            k2=k2,
            threads=args.threads,
            repeats=args.repeats,
            mmssod_backend='cpu' if numba_available() else 'torch',
            official_s=round(off_t, 3),
            mmssod_s=round(our_t, 3),
            speedup=round(off_t / our_t, 2),
            mmssod_cut_s=round(cut_t, 3),
            cut_max_distance=args.max_distance,
            gemm_gflops=round(rate / 1e9, 1),
            floor_full_product_s=round(floor, 3),
            floor_symmetric_product_s=round(half, 3),
            max_ratio_full_floor=round(off_t / floor, 2),
            max_ratio_symmetric_floor=round(off_t / half, 2),
            mmssod_over_full_floor=round(our_t / floor, 2),
            official_runs_s=[round(x, 2) for x in times['official']],
            mmssod_runs_s=[round(x, 2) for x in times['mmssod']],
            mmssod_cut_runs_s=[round(x, 2) for x in times['cut']],
            gemm_runs_s=[round(x, 3) for x in times['gemm']],
            compared='full N x N matrix (mmssod absent entries = 1.0)',
            max_abs_diff=float(diff.max()),
            entries_diff_above_1e5=int((diff > 1e-5).sum()),
            rows_diff_above_1e5=int((diff > 1e-5).any(1).sum()),
            faiss_lists_not_exact_order=int((found != exact).any(1).sum()),
            faiss_lists_other_members=int(sum(set(a) != set(b) for a, b in zip(found, exact))),
            max_abs_diff_official_on_exact_lists=float(diff_exact.max()),
            load_avg_before=[round(x, 2) for x in load_before],
            load_avg_after=[round(x, 2) for x in os.getloadavg()],
        )
        rows.append(row)
        print(json.dumps(row), flush=True)
        del off, mine, diff, diff_exact
    print(columns_table(rows, OFFICIAL_SPEED))
    print(columns_table(rows, OFFICIAL_DISTANCES))
    save_run(args.out, rows)
    return rows


def runs_text(runs: Sequence[float]) -> str:
    """A median and its runs, e.g. ``11.36 (9.75, 10.35, 15.78)``; the runs are left out when there is one."""
    median = f'{statistics.median(runs):.2f}'
    return median if len(runs) == 1 else f'{median} ({", ".join(f"{x:.2f}" for x in runs)})'


def saved_timing_rows(root: str, pattern: str) -> list:
    """The rows of the timing runs saved as ``spcl/<pattern>`` under ``root`` (``--out``), by N if any."""
    rows = []
    for path in glob.glob(osp.join(root, 'spcl', pattern)):
        with open(path) as f:
            rows += json.load(f)['rows']
    if not rows:
        raise FileNotFoundError(f'no saved run spcl/{pattern} under {root}')
    return sorted(rows, key=lambda r: r.get('n', 0))


def columns_table(rows: list, columns: Sequence[tuple]) -> str:
    """Markdown of saved timing rows: one row each, ``columns`` = ``(header, cell of a row)`` pairs."""
    return markdown_table([h for h, _ in columns], [[cell(r) for _, cell in columns] for r in rows])


N_COLUMN = ('N', lambda r: f'{r["n"]:,}')
LOAD_COLUMN = ('load average (1 min)', lambda r: f'{r["load_avg"]:.1f}')
#: ``jaccard-official``: both times, the speed-up and the kNN product's floor.
OFFICIAL_SPEED = (
    N_COLUMN,
    ('repeats', lambda r: r['repeats']),
    (
        'load average (1 min), before -> after',
        lambda r: f'{r["load_avg_before"][0]:.1f} -> {r["load_avg_after"][0]:.1f}',
    ),
    ('official (s), median (runs)', lambda r: runs_text(r['official_runs_s'])),
    ('mmssod, full matrix (s), median (runs)', lambda r: runs_text(r['mmssod_runs_s'])),
    ('speed-up', lambda r: f'{r["speedup"]:.2f}x'),
    ('mmssod, cut at 0.62 (s)', lambda r: f'{r["mmssod_cut_s"]:.2f}'),
    (
        'kNN product floor: full / symmetric (s)',
        lambda r: f'{r["floor_full_product_s"]:.2f} / {r["floor_symmetric_product_s"]:.2f}',
    ),
    (
        'official / floor: full / symmetric',
        lambda r: f'{r["max_ratio_full_floor"]:.1f}x / {r["max_ratio_symmetric_floor"]:.1f}x',
    ),
    ('mmssod / full floor', lambda r: f'{r["mmssod_over_full_floor"]:.2f}x'),
)
#: ``jaccard-official``: how far mmssod's distances are from the official ones.
OFFICIAL_DISTANCES = (
    N_COLUMN,
    ('max abs diff, official (faiss lists) vs mmssod', lambda r: f'{r["max_abs_diff"]:.1e}'),
    (
        'entries / rows above 1e-5',
        lambda r: f'{r["entries_diff_above_1e5"]:,} of N^2 / {r["rows_diff_above_1e5"]:,} of N',
    ),
    (
        'faiss lists whose order differs from exact arithmetic (other members)',
        lambda r: f'{r["faiss_lists_not_exact_order"]} ({r["faiss_lists_other_members"]})',
    ),
    (
        'max abs diff, official re-ranking on exact lists vs mmssod',
        lambda r: f'{r["max_abs_diff_official_on_exact_lists"]:.1e}',
    ),
)
#: ``clustering``: time, peak memory and stored pairs per N.
CLUSTERING = (
    N_COLUMN,
    ('Jaccard path', lambda r: 'compiled CPU' if r['backend'] == 'cpu' else r['backend']),
    ('Jaccard (s)', lambda r: f'{r["jaccard_s"]:.2f}'),
    ('DBSCAN x3 + reliability (s)', lambda r: f'{r["dbscan_reliability_s"]:.2f}'),
    ('peak RSS of the process (GB)', lambda r: f'{r["peak_rss_gb"]:.2f}'),
    ('stored pairs', lambda r: f'{r["nnz"]:,}'),
    LOAD_COLUMN,
)
#: ``jaccard-compare``: the torch path vs the compiled CPU path, paired in one process.
COMPARE = (
    N_COLUMN,
    ('threads', lambda r: r['threads']),
    LOAD_COLUMN,
    ('torch path (s), median (runs)', lambda r: runs_text(r['old_runs_s'])),
    ('compiled CPU path (s), median (runs)', lambda r: runs_text(r['new_runs_s'])),
    ('speed-up', lambda r: f'{r["speedup"]:.2f}x'),
    ('max abs diff, CPU vs torch (cut at 0.62)', lambda r: f'{r["max_abs_diff"]:.1e}'),
    (
        'torch / CPU vs float64 reference (uncut)',
        lambda r: ' / '.join(f'{r[f"max_abs_diff_{p}_vs_float64_reference"]:.1e}' for p in ('old', 'new')),
    ),
    ('same stored pairs / labels', lambda r: f'{r["same_stored_pairs"]} / {r["same_labels"]}'),
)
#: ``update``: the per-sample loop, ``momentum_update`` and the vectorised update, interleaved in one run.
UPDATE = (
    ('batch into memory', lambda r: f'{r["batch"]} into {r["memory_rows"]:,} x {r["dim"]}'),
    ('threads', lambda r: r['threads']),
    LOAD_COLUMN,
    ('per-sample loop (ms)', lambda r: f'{r["loop_ms"]:.2f}'),
    ('`momentum_update` (ms)', lambda r: f'{r["update_ms"]:.2f}'),
    ('speed-up', lambda r: f'{r["speedup"]:.1f}x'),
    ('`momentum_update_vectorised` (ms)', lambda r: f'{r["vectorised_ms"]:.2f}'),
    ('speed-up', lambda r: f'{r["speedup_vectorised"]:.1f}x'),
    ('max abs diff from the loop', lambda r: f'{max(r["max_abs_diff"], r["max_abs_diff_vectorised"]):.1e}'),
)


def run_clustering(args) -> list:
    device = resolve_device(args.device)
    rows = []
    for n in args.sizes:
        cmd = [
            sys.executable,
            __file__,
            'clustering-child',
            '--n',
            str(n),
            '--dim',
            str(args.dim),
            '--device',
            device,
        ]
        res = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, 'PYTHONPATH': REPO})
        if res.returncode != 0:
            rows.append(dict(n=n, device=device, error=res.stderr.strip().splitlines()[-1:]))
        else:
            rows.append(json.loads(res.stdout.strip().splitlines()[-1]))
        rows[-1]['load_avg'] = os.getloadavg()[0]
        print(json.dumps(rows[-1]), flush=True)
    save_run(args.out, rows)
    return rows


def run_update(args) -> dict:
    import torch
    import torch.nn.functional as F

    from mmssod.models.reid.hybrid_memory import momentum_update, momentum_update_vectorised

    device = resolve_device(args.device)
    g = torch.Generator().manual_seed(0)
    memory = F.normalize(torch.randn(args.memory, args.dim, generator=g), dim=1).to(device)
    n_src = args.batch // 4  # batch/16 source classes x 4 images (duplicate rows); the rest unique targets
    src_rows = torch.arange(n_src // 4).repeat_interleave(4).to(device)
    tgt_rows = (1000 + torch.randperm(args.memory - 1000, generator=g)[: args.batch - n_src]).to(device)
    rows = torch.cat([src_rows, tgt_rows])
    feats = F.normalize(torch.randn(args.batch, args.dim, generator=g), dim=1).to(device)

    def loop(mem):
        for x, y in zip(feats, rows.tolist()):
            mem[y] = 0.2 * mem[y] + 0.8 * x
            mem[y] /= mem[y].norm()

    def vec(mem):
        momentum_update(mem, rows, feats, 0.2)

    def vec_torch(mem):
        momentum_update_vectorised(mem, rows, feats, 0.2)

    def timed(fn):
        mem = memory.clone()
        if device == 'cuda':
            torch.cuda.synchronize()
        t = time.perf_counter()
        fn(mem)
        if device == 'cuda':
            torch.cuda.synchronize()
        return time.perf_counter() - t

    def timeit_all():
        """Interleave the variants (shared machines drift); median after one warm-up each."""
        times = {'loop': [], 'update': [], 'vectorised': []}
        for _ in range(args.repeats + 1):
            for name, fn in (('loop', loop), ('update', vec), ('vectorised', vec_torch)):
                times[name].append(timed(fn))
        return {k: statistics.median(v[1:]) for k, v in times.items()}

    a, b, c = memory.clone(), memory.clone(), memory.clone()
    loop(a)
    vec(b)
    vec_torch(c)
    t = timeit_all()
    out = dict(
        device=device,
        threads=torch.get_num_threads(),
        batch=args.batch,
        memory_rows=args.memory,
        dim=args.dim,
        loop_ms=round(1e3 * t['loop'], 3),
        update_ms=round(1e3 * t['update'], 3),  # momentum_update (CPU: compiled loop when numba is there)
        vectorised_ms=round(1e3 * t['vectorised'], 3),  # momentum_update_vectorised (the GPU path)
        speedup=round(t['loop'] / t['update'], 1),
        speedup_vectorised=round(t['loop'] / t['vectorised'], 1),
        max_abs_diff=float((a - b).abs().max()),
        max_abs_diff_vectorised=float((a - c).abs().max()),
        load_avg=os.getloadavg()[0],
    )
    print(json.dumps(out), flush=True)
    save_run(args.out, [out])
    return out


#: backbone -> arm -> (config, kind); kind: 'source' (labeled source only), 'uda', 'usl' (target only),
#: 'eval' (no training: the untrained start, evaluated as built), 'oracle' (the source-only config trained on
#: the target train set with its true identities: the same memory loss, labels SpCL has to discover).
ARMS = {
    'r18': {
        'random-init start': ('configs/spcl/spcl_r18_1xb64-20e_usl_composited-reid.py', 'eval'),
        'source-only': ('configs/spcl/spcl_r18_1xb64-20e_source-only_composited-reid.py', 'source'),
        'SpCL w/o reliability': (
            'configs/spcl/spcl_r18_1xb128-20e_uda-no-reliability_composited-reid.py',
            'uda',
        ),
        'SpCL (UDA)': ('configs/spcl/spcl_r18_1xb128-20e_uda_composited-reid.py', 'uda'),
        'SpCL USL': ('configs/spcl/spcl_r18_1xb64-20e_usl_composited-reid.py', 'usl'),
        'target oracle': ('configs/spcl/spcl_r18_1xb64-20e_source-only_composited-reid.py', 'oracle'),
    },
    'lite0': {
        'pretrained start': ('configs/spcl/spcl_efficientnet-lite0_1xb64-20e_usl_composited-reid.py', 'eval'),
        'source-only': (
            'configs/spcl/spcl_efficientnet-lite0_1xb64-20e_source-only_composited-reid.py',
            'source',
        ),
        'SpCL w/o reliability': (
            'configs/spcl/spcl_efficientnet-lite0_1xb128-20e_uda-no-reliability_composited-reid.py',
            'uda',
        ),
        'SpCL (UDA)': ('configs/spcl/spcl_efficientnet-lite0_1xb128-20e_uda_composited-reid.py', 'uda'),
        'SpCL USL': ('configs/spcl/spcl_efficientnet-lite0_1xb64-20e_usl_composited-reid.py', 'usl'),
        'target oracle': (
            'configs/spcl/spcl_efficientnet-lite0_1xb64-20e_source-only_composited-reid.py',
            'oracle',
        ),
    },
}
ARM_NAMES = sorted({a for arms in ARMS.values() for a in arms})
#: Arm kinds trained on true identities (no clustering): their train set per kind.
LABELED_KINDS = {'source': 'source', 'oracle': 'target'}
#: The untrained-start arm of each backbone.
START_ARMS = ('pretrained start', 'random-init start')


def arm_options(args, kind: str, seed: int) -> list:
    """--cfg-options of one arm: data roots, schedule, batch, workers, seed, eps, label-quality logging."""
    root = osp.abspath(args.data_root)
    uda = kind == 'uda'
    batch = args.batch * (2 if uda else 1)
    opts = [
        *(f'randomness.{key}={value}' for key, value in randomness(args, seed).items()),
        f'train_cfg.max_epochs={args.epochs}',
        f'train_cfg.val_interval={args.epochs}',
        f'param_scheduler.0.milestones=[{max(1, int(args.epochs * 0.7))}]',
        f'train_dataloader.sampler.iters_per_epoch={args.iters}',
        f'train_dataloader.batch_size={batch}',
        f'train_dataloader.sampler.batch_size={batch}',
        f'train_dataloader.num_workers={args.workers}',
        f'train_dataloader.persistent_workers={args.workers > 0}',
        f'val_dataloader.num_workers={args.workers}',
        f'val_dataloader.persistent_workers={args.workers > 0}',
        f'test_dataloader.num_workers={args.workers}',
        f'test_dataloader.persistent_workers={args.workers > 0}',
        f'custom_hooks.0.num_workers={args.workers}',
        'default_hooks.checkpoint.save_best=None',
        f'default_hooks.checkpoint.interval={args.epochs}',
    ]
    if args.backbone == 'r18':
        opts += [
            f'model.backbone.base_channels={args.width}',
            f'model.backbone.stem_channels={args.width}',
            f'model.head.in_channels={args.width * 8}',
        ]
    if kind not in LABELED_KINDS:
        opts += [f'custom_hooks.0.eps={args.eps}', 'custom_hooks.0.label_quality=True']
        if getattr(args, 'refresh_memory', False):
            opts.append('custom_hooks.0.refresh_memory=True')
        if getattr(args, 'cluster_fresh', False):
            opts.append('custom_hooks.0.cluster_fresh=True')
    if uda:
        opts += [
            f'train_dataloader.dataset.source.data_root={root}/source/',
            f'train_dataloader.dataset.target.data_root={root}/target/',
        ]
    else:
        opts += [f'train_dataloader.dataset.data_root={root}/{LABELED_KINDS.get(kind, "target")}/']
    for loader in ('val_dataloader', 'test_dataloader'):
        for i in range(2):
            opts.append(f'{loader}.dataset.datasets.{i}.data_root={root}/target/')
    return opts


def eval_untrained(config: str, work_dir: str, options: list) -> None:
    """Evaluate a config's model as built (no training, no checkpoint): the start every arm trains from."""
    from mmengine.config import Config, DictAction
    from mmengine.runner import Runner

    cfg = Config.fromfile(config)
    parser = argparse.ArgumentParser()
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    cfg.merge_from_dict(parser.parse_args(['--cfg-options', *options]).cfg_options)
    cfg.work_dir = work_dir
    cfg.load_from = None
    Runner.from_cfg(cfg).test()


def parse_log(log: str) -> dict:
    """Final target mAP / top-1 and the per-epoch clustering statistics from a training log."""
    out = {}
    m = re.findall(r'reid/mAP: ([0-9.]+)\s+reid/top1: ([0-9.]+)', log)
    if m:
        out.update(mAP=float(m[-1][0]), top1=float(m[-1][1]))
    clusters = re.findall(r'SpCL epoch (\d+): (\d+) clusters, (\d+) un-clustered', log)
    pattern = r'SpCL epoch (\d+) pseudo-label quality: ARI ([-0-9.]+) NMI ([-0-9.]+)'
    quality = {int(e): dict(ARI=float(a), NMI=float(n)) for e, a, n in re.findall(pattern, log)}
    pattern = (
        r'SpCL epoch (\d+) pseudo-label quality: .* \| clustered ([0-9.]+) of the images, on them: ARI '
        r'([-0-9.na]+), pairwise precision ([0-9.na]+)'
    )
    for e, c, a, p in re.findall(pattern, log):
        quality[int(e)].update(clustered=float(c), ARI_clustered=float(a), pairwise_precision=float(p))
    after = re.findall(
        r'SpCL after epoch (\d+): memory ARI ([-0-9.]+) NMI ([-0-9.]+) \((\d+) clusters\) \| fresh eval '
        r'features ARI ([-0-9.]+) NMI ([-0-9.]+) \((\d+) clusters\)',
        log,
    )
    if after:
        out['after_epoch'] = [
            dict(
                epoch=int(e),
                memory_ARI=float(ma),
                memory_NMI=float(mn),
                memory_clusters=int(mc),
                fresh_ARI=float(fa),
                fresh_NMI=float(fn),
                fresh_clusters=int(fc),
            )
            for e, ma, mn, mc, fa, fn, fc in after
        ]
    if clusters:
        out['epochs'] = [
            dict(
                epoch=int(e),
                clusters=int(c),
                outliers=int(o),
                **quality.get(int(e), {}),
            )
            for e, c, o in clusters
        ]
    return out


#: The memory-quality gate: the clustered memory's ARI after epoch 0 >= GATE_RATIO x that of fresh features.
GATE_RATIO = 0.8


def memory_gate(row: dict, ratio: float = GATE_RATIO) -> dict:
    """The gate of one run: memory ARI >= ``ratio`` x fresh eval-feature ARI, after epoch 0.

    With ``refresh_memory`` the clustering sees fresh eval-mode features, not the momentum rows, so the gate
    passes whatever the rows' own ARI (``memory_passed`` still records it).

    Args:
        row (dict): An accuracy row with ``after_epoch`` measurements (see :func:`parse_log`) and optionally
            ``refresh_memory``.
        ratio (float): Required fraction of the fresh features' ARI. Defaults to 0.8.

    Returns:
        dict: ``memory_ARI``, ``fresh_ARI``, ``ratio``, ``memory_passed``, ``refresh_memory`` and ``passed``
        (None when epoch 0 was not measured).
    """
    refresh = bool(row.get('refresh_memory', False) or row.get('cluster_fresh', False))
    first = [e for e in row.get('after_epoch', []) if e['epoch'] == 0]
    if not first:
        return dict(memory_ARI=None, fresh_ARI=None, ratio=ratio, refresh_memory=refresh, passed=None)
    m, f = first[0]['memory_ARI'], first[0]['fresh_ARI']
    memory_passed = bool(m >= ratio * f)
    return dict(
        memory_ARI=m,
        fresh_ARI=f,
        ratio=ratio,
        memory_passed=memory_passed,
        refresh_memory=refresh,
        passed=memory_passed or refresh,
    )


def print_memory_quality(rows: list, ratio: float = GATE_RATIO) -> None:
    """Per run: clustered memory vs clustered fresh eval features after every epoch, and the gate."""
    for row in rows:
        if not row.get('after_epoch'):
            continue
        print(f'\n{row["arm"]}, seed {row["seed"]}: clustered memory vs fresh eval features after each epoch')
        print(
            '| epoch | memory ARI | memory NMI | memory clusters | fresh ARI | fresh NMI | fresh clusters |'
        )
        print('| --- | --- | --- | --- | --- | --- | --- |')
        for e in row['after_epoch']:
            print(
                f'| {e["epoch"]} | {e["memory_ARI"]:.3f} | {e["memory_NMI"]:.3f} | {e["memory_clusters"]} | '
                f'{e["fresh_ARI"]:.3f} | {e["fresh_NMI"]:.3f} | {e["fresh_clusters"]} |'
            )
        g = row.get('gate') or memory_gate(row, ratio)
        if g['passed'] is not None:
            print(
                f'gate (memory ARI >= {g["ratio"]:g} x fresh ARI after epoch 0): {g["memory_ARI"]:.3f} vs '
                f'{g["ratio"]:g} x {g["fresh_ARI"]:.3f} = {g["ratio"] * g["fresh_ARI"]:.3f}: '
                f'{"PASSED" if g["memory_passed"] else "FAILED"}'
                + (
                    '; refresh_memory: the clustering sees fresh features, gate PASSED'
                    if g['refresh_memory']
                    else ''
                )
            )


def schedule_key(args) -> dict:
    """What a gate result must share with an accuracy run to stand for it."""
    return dict(
        data_root=osp.abspath(args.data_root),
        backbone=args.backbone,
        iters=args.iters,
        batch=args.batch,
        eps=args.eps,
        refresh_memory=bool(args.refresh_memory),
        **({'cluster_fresh': True} if getattr(args, 'cluster_fresh', False) else {}),
    )


def check_gate_json(args) -> None:
    """Refuse a multi-seed accuracy run without a passed gate of the same data and schedule."""
    if len(args.seeds) < 2 or args.skip_gate:
        return
    if not args.gate_json:
        raise SystemExit(
            'accuracy with several seeds needs a passed memory-quality gate: run `spcl_bench.py gate ... '
            '--out GATE.json` with the same --data-root / --backbone / --iters / --batch / --eps / '
            '--refresh-memory, '
            'then pass --gate-json GATE.json (or --skip-gate to run anyway)'
        )
    with open(args.gate_json) as f:
        gate = json.load(f)
    if gate.get('schedule') != schedule_key(args):
        raise SystemExit(
            f'--gate-json {args.gate_json} was measured with {gate.get("schedule")}, this run uses '
            f'{schedule_key(args)}: rerun the gate with these settings'
        )
    if not gate.get('gate', {}).get('passed'):
        raise SystemExit(
            f'the memory-quality gate in {args.gate_json} did not pass ({gate.get("gate")}): the clustered '
            'memory is much worse than fresh features; change the schedule (iterations, batch, target set) '
            'or use --refresh-memory, or pass --skip-gate to run anyway'
        )


def write_json(path: str, payload: dict) -> None:
    """Write a run's JSON (directories created)."""
    if path:
        os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
        with open(path, 'w') as f:
            json.dump(payload, f, indent=1)


def save_run(path: str, rows: list) -> None:
    """Write a timing run's rows with its command line and date to ``path`` (nothing when None)."""
    write_json(path, dict(command=' '.join(sys.argv), date=time.strftime('%Y-%m-%d'), rows=rows))


#: Per-domain sizes of the set the bench builds when its data root does not exist yet (``--data-seed``).
BENCH_DATA = dict(train_ids=150, test_ids=100, num_distractors=100, num_junk=50)


def build_target_domain(params: dict):
    """The ``--target-domain`` preset that a build's ``meta.json`` parameters match.

    Args:
        params (dict): ``meta['params']`` of a composited re-ID build.

    Returns:
        str | None: The preset name, or None for a build that matches none of them.
    """
    from tools.benchmarks.composited.reid import TARGET_DOMAINS

    keys = {k for fields in TARGET_DOMAINS.values() for k in fields}
    got = {k: params[k] for k in keys if k in params}
    for name, fields in TARGET_DOMAINS.items():
        if got == {k: list(v) if isinstance(v, tuple) else v for k, v in fields.items()}:
            return name
    return None


def prepare_data(args) -> str:
    """Resolve ``--data-root`` (default: the ``--target-domain`` folder) and make sure it holds that domain.

    A missing folder is built with :data:`BENCH_DATA` and ``--data-seed``; a composited build of another
    target domain, or an unfinished one, stops the run.

    Args:
        args (argparse.Namespace): With ``data_root`` (None = the domain's default folder), ``target_domain``
            and ``data_seed``.

    Returns:
        str: The data root (also set on ``args``).
    """
    from tools.benchmarks.composited.files import ensure_built
    from tools.benchmarks.composited.reid import (
        GENERATOR,
        GENERATOR_VERSION,
        TARGET_DOMAIN_ROOTS,
        ReIDConfig,
        build_reid,
    )

    domain = getattr(args, 'target_domain', 'default')
    args.data_root = args.data_root or TARGET_DOMAIN_ROOTS[domain]
    meta_path = osp.join(args.data_root, 'meta.json')
    if not osp.exists(meta_path):
        if osp.isdir(args.data_root) and os.listdir(args.data_root):
            print(
                f'note: {args.data_root} has no meta.json (not a composited build): its target domain is not '
                f'checked against --target-domain {domain}',
                flush=True,
            )
            return args.data_root
        cfg = ReIDConfig.for_target_domain(domain, **BENCH_DATA)
        print(
            f'building the {domain!r} target-domain set into {args.data_root} (seed {args.data_seed}, '
            f'{BENCH_DATA})',
            flush=True,
        )
        # several bench processes may start together: one builds, the others wait and reuse its set
        return ensure_built(args.data_root, GENERATOR, GENERATOR_VERSION, build_reid, args.data_seed, cfg)
    with open(meta_path) as f:
        meta = json.load(f)
    if not meta.get('complete'):
        raise SystemExit(
            f'{meta_path} marks an unfinished build: delete {args.data_root} (the bench rebuilds it) or '
            f'rebuild it with tools/dataset_converters/composited_reid.py --target-domain {domain}'
        )
    found = build_target_domain(meta.get('params', {}))
    if found != domain:
        raise SystemExit(
            f'--data-root {args.data_root} holds a {found or "custom"!r} target-domain build, not '
            f'--target-domain {domain}: pass its --target-domain or another --data-root'
        )
    return args.data_root


def arm_work_dir(args, name: str, seed: int):
    """The work dir of an arm and seed under ``--work-root`` (None without one: a temp dir is used)."""
    if not args.work_root:
        return None
    return osp.join(osp.abspath(args.work_root), f'{re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_")}_s{seed}')


def train_arm(args, name: str, config: str, kind: str, seed: int, extra: Sequence[str] = ()) -> dict:
    """Train (or evaluate) one arm for one seed; its parsed row (log kept under ``--work-root`` if set).

    ``extra`` --cfg-options go after the arm's own (e.g. a shorter run of the same schedule).
    """
    work = arm_work_dir(args, name, seed)
    if work:
        os.makedirs(work, exist_ok=True)
    else:
        work = tempfile.mkdtemp(prefix='spcl_acc_')
    opts = [*arm_options(args, kind, seed), *extra]
    env = {**run_env(args), 'PYTHONPATH': REPO, 'OMP_NUM_THREADS': str(args.threads)}
    if kind == 'eval':
        cmd = [sys.executable, __file__, 'eval-untrained', osp.join(REPO, config), work, *opts]
    else:
        cmd = [sys.executable, osp.join(REPO, 'tools/train.py'), osp.join(REPO, config)]
        cmd += ['--work-dir', work, '--cfg-options', *opts]
    t = time.time()
    res = subprocess.run(cmd, capture_output=True, text=True, env=env)
    log = res.stdout + res.stderr
    with open(osp.join(work, 'bench_output.log'), 'w') as f:
        f.write(log)
    row = dict(arm=name, backbone=args.backbone, seed=seed, config=config, work_dir=work)
    row['reproducibility'] = run_record(args)
    row['target_domain'] = getattr(args, 'target_domain', 'default')
    row['refresh_memory'] = bool(args.refresh_memory) and kind not in LABELED_KINDS
    row['cluster_fresh'] = bool(getattr(args, 'cluster_fresh', False)) and kind not in LABELED_KINDS
    row.update(parse_log(log))
    row['minutes'] = round((time.time() - t) / 60, 1)
    if row.get('after_epoch'):
        row['gate'] = memory_gate(row, args.gate_ratio)
    if res.returncode or 'mAP' not in row:
        row['error'] = log[-1500:]
    print(json.dumps(row), flush=True)
    return row


def run_gate(args) -> dict:
    """The memory-quality gate: the UDA arm, one seed; prints and writes the result; exit 1 when it fails."""
    config, kind = ARMS[args.backbone]['SpCL (UDA)']
    row = train_arm(args, 'SpCL (UDA)', config, kind, args.seeds[0])
    print_memory_quality([row], args.gate_ratio)
    gate = row.get('gate') or memory_gate(row, args.gate_ratio)
    out = dict(schedule=schedule_key(args), epochs=args.epochs, seed=args.seeds[0], gate=gate, rows=[row])
    write_json(args.out, out)
    if gate['passed'] is None:
        raise SystemExit('the gate run recorded no after-epoch measurement: see ' + row['work_dir'])
    if not gate['passed']:
        raise SystemExit(1)
    return out


def run_accuracy(args) -> list:
    """Train / evaluate the arms for each seed; per seed and mean +- sd of target mAP / top-1."""
    check_gate_json(args)
    arms = ARMS[args.backbone]
    rows = []
    for seed in args.seeds:
        for name, (config, kind) in arms.items():
            if args.arms and name not in args.arms:
                continue
            rows.append(train_arm(args, name, config, kind, seed))
            write_json(args.out, dict(schedule=schedule_key(args), epochs=args.epochs, rows=rows))
    summary = accuracy_report(rows, args.min_gap_sd, args.min_oracle_gap)
    print_memory_quality(rows, args.gate_ratio)
    write_json(args.out, dict(schedule=schedule_key(args), epochs=args.epochs, rows=rows, summary=summary))
    return rows


#: The ordering the accuracy target checks: each arm above the next, by more than ``--min-gap-sd`` seed sd.
ORDERING = (('SpCL (UDA)', 'SpCL w/o reliability'), ('SpCL w/o reliability', 'source-only'))


#: Goal: the target oracle at least this many mAP points above source-only (a gap adaptation can close).
ORACLE_GAP = 10.0


def paired_gaps(by: dict, hi: str, lo: str, seeds: list) -> list:
    """Target mAP of arm ``hi`` minus arm ``lo`` on each seed that has both.

    Args:
        by (dict): (arm, seed) -> row with ``mAP``.
        hi (str): Arm name.
        lo (str): Arm name.
        seeds (list[int]): Seeds, in order.

    Returns:
        list[tuple[int, float]]: (seed, gap) for the S seeds measured in both arms.
    """
    return [(s, by[hi, s]['mAP'] - by[lo, s]['mAP']) for s in seeds if (hi, s) in by and (lo, s) in by]


def accuracy_table(rows: list, arms: Sequence[str]) -> str:
    """Markdown: per arm (in the order of ``arms``), target mAP / top-1 per seed, then mean +- sd of each
    (left out with one seed)."""
    seeds = sorted({r['seed'] for r in rows})
    by = {(r['arm'], r['seed']): r for r in rows}
    cells = []
    for arm in arms:
        got = [by[arm, s] for s in seeds if (arm, s) in by]
        per_seed = [
            f'{by[arm, s]["mAP"]:.2f} / {by[arm, s]["top1"]:.2f}' if (arm, s) in by else '-' for s in seeds
        ]
        means = [mean_sd_text(r[k] for r in got) for k in ('mAP', 'top1')] if len(seeds) > 1 else []
        cells.append((arm, *per_seed, *means))
    header = ('arm', *(f'seed {s} mAP / top-1' for s in seeds))
    return markdown_table(header + (('mAP mean +- sd', 'top-1 mean +- sd') if len(seeds) > 1 else ()), cells)


def gaps_table(rows: list, pairs: Sequence[tuple]) -> str:
    """Markdown: per ``(arm, comparator)`` pair, the target-mAP difference per seed (mean +- sd) over the
    seeds that ran both, and what the 2-sd rule makes of it."""
    by = {(r['arm'], r['seed']): r for r in rows}
    seeds = sorted({r['seed'] for r in rows})
    cells = []
    for hi, lo in pairs:
        gaps = [g for _, g in paired_gaps(by, hi, lo, seeds)]
        cells.append(
            (
                f'{hi} - {lo}',
                seeds_mean_sd_text(gaps, '+.2f'),
                'effect' if is_effect(gaps) else 'not resolved',
            )
        )
    return markdown_table(('difference', 'target mAP, per seed (mean +- sd)', '2-sd rule'), cells)


def saved_rows(root: str, patterns: Sequence[str]) -> list:
    """The accuracy rows of the saved runs matching ``patterns`` under ``root``, one per (arm, seed); an arm
    and seed saved twice with another domain, memory mode or result raises."""
    rows = []
    for pattern in patterns:
        for path in sorted(glob.glob(osp.join(root, pattern))):
            with open(path) as f:
                rows += [r for r in json.load(f)['rows'] if 'mAP' in r]
    clashes = conflicting_rows(rows)
    if clashes:
        raise ValueError(f'{clashes} (arm, seed) are saved with different results under {root}: {patterns}')
    return list({(r['arm'], r['seed']): r for r in rows}.values())


def eps_table(rows: Sequence[dict]) -> str:
    """Markdown of the eps sweep (:func:`run_eps_sweep` rows): clusters, un-clustered images, ARI, NMI."""
    cells = [
        (f'{r["eps"]:g}', r['num_clusters'], r['num_outliers'], f'{r["ARI"]:.3f}', f'{r["NMI"]:.3f}')
        for r in rows
    ]
    return markdown_table(('eps', 'clusters', 'un-clustered', 'ARI', 'NMI'), cells)


def memory_table(gates: Sequence[tuple]) -> str:
    """Markdown of saved gate runs (``(name, gate JSON)`` each): per epoch the clustering of the clustered
    memory and of fresh eval features (ARI / NMI / clusters), their ARI ratio, and which one the next epoch
    trains on (fresh features with ``refresh_memory``, else the memory)."""
    cells = []
    for name, gate in gates:
        schedule, after = gate['schedule'], gate['rows'][0]['after_epoch']
        source = 'fresh' if schedule['refresh_memory'] else 'memory'
        label = f'{name} ({"refresh" if schedule["refresh_memory"] else "official"}, {schedule["iters"]} it)'
        for i, a in enumerate(after):
            cells.append(
                (
                    label if i == 0 else name,
                    a['epoch'],
                    f'{a["memory_ARI"]:.3f} / {a["memory_NMI"]:.3f} / {a["memory_clusters"]}',
                    f'{a["fresh_ARI"]:.3f} / {a["fresh_NMI"]:.3f} / {a["fresh_clusters"]}',
                    f'{a["memory_ARI"] / a["fresh_ARI"]:.2f}',
                    f'{source} ({a[source + "_ARI"]:.3f})' if i + 1 < len(after) else '-',
                )
            )
    header = (
        'regime',
        'after epoch',
        'clustered memory: ARI / NMI / clusters',
        'fresh eval features: ARI / NMI / clusters',
        'memory / fresh ARI',
        'next epoch trains on',
    )
    return markdown_table(header, cells)


def saved_json(root: str, name: str):
    """The saved JSON ``spcl/<name>`` under ``root`` (a ``.jsonl`` as its list of rows)."""
    with open(osp.join(root, 'spcl', name)) as f:
        return [json.loads(line) for line in f if line.strip()] if name.endswith('.jsonl') else json.load(f)


#: The saved runs of the hard target domain (``--refresh-memory``, 8 epochs of 30 iterations), 3 seeds.
HARD_RUNS = ('spcl/hard_refresh_8e_30it/acc_*.json', 'spcl/domain_check_hard_lite0_8e_30it_b32_seed0.json')
HARD_ARMS = (
    'pretrained start',
    'source-only',
    'SpCL (UDA)',
    'SpCL w/o reliability',
    'SpCL USL',
    'target oracle',
)
#: The memory-quality gate's regimes on the default target domain (seed 0): name, saved run.
GATE_REGIMES = (('A', '3e_30it_b32'), ('B', '3e_30it_b32_refresh-memory'), ('C', '2e_84it_b32'))
HARD_GAPS = (
    ('SpCL (UDA)', 'source-only'),
    ('SpCL w/o reliability', 'source-only'),
    ('SpCL (UDA)', 'SpCL w/o reliability'),
    ('SpCL USL', 'pretrained start'),
    ('target oracle', 'source-only'),
)


def summary_row(root: str) -> tuple:
    """README's row: UDA and USL against their starts on the hard target domain, 3 seeds."""
    rows = saved_rows(root, HARD_RUNS)
    by = {(r['arm'], r['seed']): r for r in rows}
    seeds = sorted({r['seed'] for r in rows})
    cells = []
    for hi, lo in HARD_GAPS[:3]:
        gaps = [g for _, g in paired_gaps(by, hi, lo, seeds)]
        cells.append(
            f'{hi} - {lo} {mean_sd_text(gaps, "+.2f")} ({"effect" if is_effect(gaps) else "not resolved"})'
        )
    official = saved_rows(root, (OFFICIAL_RUNS,))
    by = {(r['arm'], r['seed']): r for r in official}
    gaps = [g for _, g in paired_gaps(by, *OFFICIAL_ARMS, sorted({r['seed'] for r in official}))]
    if gaps:
        cells.append(
            f'official memory: {" - ".join(OFFICIAL_ARMS)} {mean_sd_text(gaps, "+.2f")} '
            f'({"effect" if is_effect(gaps) else "not resolved"})'
        )
    return (
        'SpCL',
        'domain-adaptive re-ID (EfficientNet-Lite0), composited garments -> footwear / bags, target mAP, '
        '8 epochs of 30 iterations, 3 seeds, with `refresh_memory` (not the official memory) unless named',
        'target mAP: ' + '; '.join(cells),
        '[spcl.md](docs/benchmarks/spcl.md)',
    )


#: The official memory on the hard domain (8 epochs of 30 iterations), 3 seeds: the criterion the paper's way.
OFFICIAL_RUNS = 'spcl/hard_official_8e_30it/accuracy.json'
OFFICIAL_ARMS = ('SpCL (UDA)', 'SpCL w/o reliability')
#: ``refresh_memory`` split into its two effects (same schedule): name in the report, saved run.
REFRESH_SPLIT = (
    ('official memory', OFFICIAL_RUNS),
    ('cluster fresh features, memory untouched', 'spcl/hard_refresh_split_8e_30it/cluster_fresh.json'),
    ('refresh memory (cluster + overwrite rows)', 'spcl/hard_refresh_split_8e_30it/refresh.json'),
)
REFRESH_GAPS = (
    (REFRESH_SPLIT[1][0], REFRESH_SPLIT[0][0]),
    (REFRESH_SPLIT[2][0], REFRESH_SPLIT[1][0]),
    (REFRESH_SPLIT[2][0], REFRESH_SPLIT[0][0]),
)


def uda_rows(root: str, runs: Sequence[tuple]) -> list:
    """The ``SpCL (UDA)`` rows of saved runs, each renamed to its run's name (``(name, saved run)`` pairs),
    so that one arm trained under several hook settings can be compared by seed."""
    return [
        {**r, 'arm': name}
        for name, pattern in runs
        for r in saved_rows(root, (pattern,))
        if r['arm'] == 'SpCL (UDA)'
    ]


def purity_table(rows: list, arms: Sequence[str]) -> str:
    """Markdown: per arm and epoch, mean over seeds of what each epoch's clustering kept: the fraction of
    target images in a cluster, and the ARI and pairwise precision over those images only (beside the ARI
    over every image, un-clustered ones counted as singletons)."""
    cells = []
    for arm in arms:
        runs = [r for r in rows if r['arm'] == arm]
        for e in label_quality_per_epoch(runs):
            cells.append(
                (
                    arm,
                    e['epoch'],
                    len(runs),
                    number(e['clustered'], '.3f'),
                    number(e['ARI_clustered'], '.3f'),
                    number(e['pairwise_precision'], '.3f'),
                    number(e['ARI'], '.3f'),
                )
            )
    header = (
        'arm',
        'epoch',
        'seeds',
        'clustered fraction',
        'ARI on the clustered',
        'pairwise precision on the clustered',
        'ARI on all (singletons)',
    )
    return markdown_table(header, cells)


#: The clustering quality compared between arms by seed: the numbers of :func:`purity_table`.
PURITY_KEYS = (
    ('clustered', 'clustered fraction'),
    ('ARI_clustered', 'ARI on the clustered'),
    ('pairwise_precision', 'pairwise precision on the clustered'),
)


def purity_gaps_table(rows: list, pairs: Sequence[tuple]) -> str:
    """Markdown: per ``(arm, comparator)`` pair and purity number, the paired per-seed difference at the last
    epoch both ran (mean +- sd over seeds) and what the 2-sd rule makes of it."""
    by = {(r['arm'], r['seed']): {e['epoch']: e for e in r.get('epochs', [])} for r in rows}
    cells = []
    for hi, lo in pairs:
        seeds = sorted(s for a, s in by if a == hi and (lo, s) in by)
        last = min(max(by[arm, s]) for s in seeds for arm in (hi, lo)) if seeds else None
        for key, name in PURITY_KEYS:
            gaps = [by[hi, s][last][key] - by[lo, s][last][key] for s in seeds]
            cells.append(
                (
                    f'{hi} - {lo}',
                    name,
                    last,
                    seeds_mean_sd_text(gaps, '+.3f'),
                    'effect' if is_effect(gaps) else 'not resolved',
                )
            )
    return markdown_table(('difference', 'number', 'epoch', 'per seed (mean +- sd)', '2-sd rule'), cells)


def gate_eps_table(root: str) -> str:
    """Markdown of the saved ``gate-eps`` runs: per seed each feature source's best eps and ARI (the same
    rule for both), their ratio and the gate."""
    cells = []
    for path in sorted(glob.glob(osp.join(root, 'spcl/gate_eps/gate_eps_*.json'))):
        with open(path) as f:
            g = json.load(f)
        mem, fresh = g['best']['memory'], g['best']['fresh']
        cells.append(
            (
                g['seed'],
                f'{mem["eps"]:g} / {mem["ARI"]:.3f} / {mem["clustered"]:.2f}',
                f'{fresh["eps"]:g} / {fresh["ARI"]:.3f} / {fresh["clustered"]:.2f}',
                f'{mem["ARI"] / fresh["ARI"]:.2f}',
                'passed' if g['passed'] else 'failed',
            )
        )
    header = (
        'seed',
        'memory: best eps / ARI / clustered',
        'fresh eval features: best eps / ARI / clustered',
        'memory / fresh ARI',
        f'gate (>= {GATE_RATIO:g})',
    )
    return markdown_table(header, cells)


#: The timing tables of the docs: region name, saved run (under ``spcl/``), columns.
TIMING_TABLES = (
    ('clustering-cost', 'clustering_cost.json', CLUSTERING),
    ('jaccard-compare', 'jaccard_compare_N*.json', COMPARE),
    ('jaccard-official', 'jaccard_official_N*.json', OFFICIAL_SPEED),
    ('jaccard-official-distances', 'jaccard_official_N*.json', OFFICIAL_DISTANCES),
    ('memory-update', 'memory_update*.json', UPDATE),
)
TABLES = {
    'spcl/hard-accuracy': lambda root: accuracy_table(saved_rows(root, HARD_RUNS), HARD_ARMS),
    'spcl/hard-gaps': lambda root: gaps_table(saved_rows(root, HARD_RUNS), HARD_GAPS),
    'spcl/hard-domain-check': lambda root: accuracy_table(
        saved_rows(root, (HARD_RUNS[1],)), ('source-only', 'target oracle')
    ),
    'spcl/official-accuracy': lambda root: accuracy_table(saved_rows(root, (OFFICIAL_RUNS,)), OFFICIAL_ARMS),
    'spcl/official-gaps': lambda root: gaps_table(saved_rows(root, (OFFICIAL_RUNS,)), (OFFICIAL_ARMS,)),
    'spcl/official-purity': lambda root: purity_table(saved_rows(root, (OFFICIAL_RUNS,)), OFFICIAL_ARMS),
    'spcl/official-purity-gaps': lambda root: purity_gaps_table(
        saved_rows(root, (OFFICIAL_RUNS,)), (OFFICIAL_ARMS,)
    ),
    'spcl/refresh-split-purity-gaps': lambda root: purity_gaps_table(
        uda_rows(root, REFRESH_SPLIT), REFRESH_GAPS
    ),
    'spcl/refresh-split': lambda root: accuracy_table(
        uda_rows(root, REFRESH_SPLIT), [name for name, _ in REFRESH_SPLIT]
    ),
    'spcl/refresh-split-gaps': lambda root: gaps_table(uda_rows(root, REFRESH_SPLIT), REFRESH_GAPS),
    'spcl/refresh-split-purity': lambda root: purity_table(
        uda_rows(root, REFRESH_SPLIT), [name for name, _ in REFRESH_SPLIT]
    ),
    'spcl/gate-eps': gate_eps_table,
    'spcl/hard-eps': lambda root: eps_table(saved_json(root, 'eps_sweep_hard_lite0_untrained.jsonl')),
    'spcl/hard-memory': lambda root: memory_table(
        [('hard', saved_json(root, 'gate_hard_lite0_8e_30it_b32_seed0.json'))]
    ),
    'spcl/gate-regimes': lambda root: memory_table(
        [(name, saved_json(root, f'gate_lite0_{run}_seed0.json')) for name, run in GATE_REGIMES]
    ),
    **{
        f'spcl/{name}': lambda root, pattern=pattern, columns=columns: columns_table(
            saved_timing_rows(root, pattern), columns
        )
        for name, pattern, columns in TIMING_TABLES
    },
}


def goal_checks(rows: list, min_gap_sd: float = 2.0, min_oracle_gap: float = ORACLE_GAP) -> dict:
    """The goals of a target domain, from the accuracy rows of several seeds (paired by seed).

    * ``target oracle - source-only``: mean gap >= ``min_oracle_gap`` mAP (enough domain gap to close);
    * ``SpCL (UDA) - source-only``: mean gap > ``min_gap_sd`` x the gaps' seed sd, every per-seed gap > 0,
      at least 3 seeds;
    * ``SpCL USL - start``: USL above the untrained start (``START_ARMS``) on every seed.

    Args:
        rows (list[dict]): Rows with ``arm``, ``seed`` and ``mAP``.
        min_gap_sd (float): Required UDA gap in seed sd. Defaults to 2.0.
        min_oracle_gap (float): Required oracle gap in mAP. Defaults to :data:`ORACLE_GAP`.

    Returns:
        dict: Check name -> ``seeds``, ``per_seed`` gaps, ``mean``, ``sd``, ``passed`` (None when an arm has
        no row), plus ``passed``: all three passed.
    """
    by = {(r['arm'], r['seed']): r for r in rows if 'mAP' in r}
    seeds = sorted({s for _, s in by})
    start = next((a for a in START_ARMS if any(arm == a for arm, _ in by)), START_ARMS[0])
    checks = {}
    for hi, lo in (('target oracle', 'source-only'), ('SpCL (UDA)', 'source-only'), ('SpCL USL', start)):
        pairs = paired_gaps(by, hi, lo, seeds)
        gaps = [g for _, g in pairs]
        d, sd = mean_sd(gaps)
        if not gaps:
            passed = None
        elif hi == 'target oracle':
            passed = bool(d >= min_oracle_gap)
        elif hi == 'SpCL (UDA)':
            passed = bool(len(gaps) >= 3 and d > min_gap_sd * sd and min(gaps) > 0)
        else:
            passed = bool(min(gaps) > 0)
        checks[f'{hi} - {lo}'] = dict(
            seeds=[s for s, _ in pairs], per_seed=gaps, mean=d, sd=sd, passed=passed
        )
    checks['passed'] = all(c['passed'] for c in checks.values())
    return checks


def accuracy_report(rows: list, min_gap_sd: float = 2.0, min_oracle_gap: float = ORACLE_GAP) -> dict:
    """Markdown tables of accuracy rows (from one run or several merged): per seed, mean +- sd, the gaps of
    ``ORDERING`` per seed with the target check (each gap > ``min_gap_sd`` seed sd), the target-domain goals
    of :func:`goal_checks`, and the pseudo-label quality per epoch (mean over seeds: ARI / NMI of the
    clustering labels, and of the clustered memory and fresh features after each epoch). Returns the summary
    (also printed as one JSON line)."""
    rows = [r for r in rows if 'mAP' in r]
    arms = list(dict.fromkeys(r['arm'] for r in rows))
    seeds = sorted({r['seed'] for r in rows})
    by = {(r['arm'], r['seed']): r for r in rows}
    print('\n' + accuracy_table(rows, arms))
    summary = {}
    for arm in arms:
        got = [by[arm, s] for s in seeds if (arm, s) in by]
        m, t = mean_sd([r['mAP'] for r in got]), mean_sd([r['top1'] for r in got])
        summary[arm] = dict(seeds=[r['seed'] for r in got], mAP=m, top1=t)
    goal = True
    for hi, lo in ORDERING:
        common = [s for s in seeds if (hi, s) in by and (lo, s) in by]
        if not common:
            goal = False
            continue
        gaps = [by[hi, s]['mAP'] - by[lo, s]['mAP'] for s in common]
        d, sd = mean_sd(gaps)
        ok = len(gaps) >= 3 and d > min_gap_sd * sd
        goal &= ok
        summary[f'{hi} - {lo}'] = dict(per_seed=gaps, mean=d, sd=sd, gap_above_2sd=ok)
        per_seed = [round(g, 2) for g in gaps]
        print(
            f'{hi} - {lo}, target mAP per seed {per_seed}: {d:+.2f} +- {sd:.2f} (> {min_gap_sd:g} sd: {ok})'
        )
    summary['goal'] = goal
    print(
        f'target: UDA > w/o reliability > source-only, each gap > {min_gap_sd:g} seed sd, >= 3 seeds: '
        f'{"met" if goal else "NOT met"}'
    )
    checks = goal_checks(rows, min_gap_sd, min_oracle_gap)
    print(
        f'\ngoals: target oracle - source-only >= {min_oracle_gap:g} mAP (mean); UDA - source-only > '
        f'{min_gap_sd:g} seed sd and > 0 on each seed (>= 3 seeds); USL > untrained start on each seed'
    )
    for name, c in checks.items():
        if name != 'passed':
            verdict = 'not measured' if c['passed'] is None else ('passed' if c['passed'] else 'FAILED')
            per_seed = [round(g, 2) for g in c['per_seed']]
            print(f'{name}, target mAP per seed {per_seed}: {c["mean"]:+.2f} +- {c["sd"]:.2f}: {verdict}')
    print(f'goals: {"met" if checks["passed"] else "NOT met"}')
    summary['checks'] = checks
    for arm in arms:
        arm_seeds = [s for s in seeds if (arm, s) in by]
        table = label_quality_per_epoch([by[arm, s] for s in arm_seeds])
        if not table:
            continue  # labeled arms: their 'clusters' are the true identities
        summary[arm]['epochs'] = table
        print(f'\n{arm}: pseudo labels of the target train images per epoch (mean over seeds {arm_seeds})')
        cells = [
            (
                e['epoch'],
                number(e['clusters'], '.1f'),
                number(e['outliers'], '.1f'),
                number(e['ARI'], '.3f'),
                number(e['NMI'], '.3f'),
                f'{number(e["memory_ARI"], ".3f")} / {number(e["memory_NMI"], ".3f")}',
                f'{number(e["fresh_ARI"], ".3f")} / {number(e["fresh_NMI"], ".3f")}',
            )
            for e in table
        ]
        header = (
            'epoch',
            'clusters',
            'un-clustered',
            'ARI',
            'NMI',
            'memory ARI / NMI',
            'fresh features ARI / NMI',
        )
        print(markdown_table(header, cells))
    print(json.dumps(dict(summary=summary)), flush=True)
    return summary


def label_quality_per_epoch(rows: list) -> list:
    """Pseudo-label quality per epoch, mean over the seeds of one arm.

    The clustering of each epoch (``epochs``: clusters, un-clustered, ARI, NMI against the true target
    identities) joined with the after-epoch measurements of the same epoch (``after_epoch``: clustered
    memory and clustered fresh eval features, ARI / NMI), as :func:`parse_log` reads them.

    Args:
        rows (list[dict]): The arm's rows, one per seed.

    Returns:
        list[dict]: Per epoch (sorted): ``epoch``, ``clusters``, ``outliers``, ``ARI``, ``NMI``,
        ``clustered``, ``ARI_clustered``, ``pairwise_precision``, ``memory_ARI``, ``memory_NMI``,
        ``fresh_ARI``, ``fresh_NMI`` (NaN where some seed lacks it); empty
        when no epoch has an ARI (arms trained on true identities).
    """
    per_epoch = {}
    for row in rows:
        after = {a['epoch']: a for a in row.get('after_epoch', [])}
        for e in row.get('epochs', []):
            per_epoch.setdefault(e['epoch'], []).append({**after.get(e['epoch'], {}), **e})
    if not any('ARI' in e for es in per_epoch.values() for e in es):
        return []
    keys = (
        'clusters',
        'outliers',
        'ARI',
        'NMI',
        'clustered',
        'ARI_clustered',
        'pairwise_precision',
        'memory_ARI',
        'memory_NMI',
        'fresh_ARI',
        'fresh_NMI',
    )
    return [
        dict(
            epoch=epoch,
            **{
                k: statistics.mean(e[k] for e in es) if all(k in e for e in es) else float('nan')
                for k in keys
            },
        )
        for epoch, es in sorted(per_epoch.items())
    ]


def conflicting_rows(rows: list) -> list:
    """(arm, seed) pairs that several rows give with different target domains, memory modes or results.

    Merged logs must hold one run per arm and seed; a pair measured twice (e.g. a gate log with the official
    memory beside an accuracy log with ``--refresh-memory``) would be reported as whichever came last.
    """
    seen, clashes = {}, []
    for r in rows:
        key = (r['arm'], r['seed'])
        what = (
            r.get('target_domain', 'default'),
            bool(r.get('refresh_memory')),
            bool(r.get('cluster_fresh')),
            r.get('mAP'),
            r.get('top1'),
        )
        if key in seen and seen[key] != what and key not in clashes:
            clashes.append(key)
        seen.setdefault(key, what)
    return clashes


def run_report(args) -> dict:
    """The accuracy report of the JSON rows in the given logs (runs split over processes, merged)."""
    rows = []
    for path in args.logs:
        with open(path) as f:
            rows += [json.loads(line) for line in f if line.startswith('{"arm"')]
    clashes = conflicting_rows(rows)
    if clashes:
        raise SystemExit(
            f'report: {clashes} (arm, seed) appear in {args.logs} with different target domains, '
            '--refresh-memory or results: pass the logs of one regime only'
        )
    return accuracy_report(
        rows, getattr(args, 'min_gap_sd', 2.0), getattr(args, 'min_oracle_gap', ORACLE_GAP)
    )


def run_domain_check(args) -> dict:
    """Source-only and target oracle on one seed, briefly: is the target domain's gap large enough?

    Prints both arms' target mAP / top-1 and the oracle gap, writes the JSON (``--out``) and exits with
    status 1 when the gap is below ``--min-oracle-gap``.
    """
    arms = ARMS[args.backbone]
    rows = [train_arm(args, name, *arms[name], args.seeds[0]) for name in ('source-only', 'target oracle')]
    failed = [r['arm'] for r in rows if 'mAP' not in r]
    if failed:
        raise SystemExit(
            f'domain check: {failed} recorded no target mAP; see {[r["work_dir"] for r in rows]}'
        )
    check = goal_checks(rows, min_oracle_gap=args.min_oracle_gap)['target oracle - source-only']
    for r in rows:
        print(f'{r["arm"]}: target mAP {r["mAP"]:.2f} / top-1 {r["top1"]:.2f}')
    print(
        f'domain check ({args.target_domain} target, seed {args.seeds[0]}, {args.epochs} epochs x '
        f'{args.iters} iterations): target oracle - source-only = {check["mean"]:+.2f} mAP '
        f'(>= {args.min_oracle_gap:g}: {"passed" if check["passed"] else "FAILED"})'
    )
    out = dict(schedule=schedule_key(args), epochs=args.epochs, check=check, rows=rows)
    write_json(args.out, out)
    if not check['passed']:
        raise SystemExit(1)
    return out


def target_features(model, data_root: str, pipeline) -> tuple:
    """L2-normalised eval-mode embeddings of the target training images, and their true identities.

    Args:
        model: An SpCL re-ID model (``data_preprocessor``, ``extract_feat``, ``head``).
        data_root (str): The composited build (its ``target/`` folder is read).
        pipeline (list[dict]): The un-augmented test pipeline (the hook's initialisation pipeline).

    Returns:
        tuple: (N, D) float features and the (N,) true identities (``pid``), in index order.
    """
    import numpy as np
    import torch
    import torch.nn.functional as F
    from mmdet.registry import DATASETS
    from mmengine.dataset import pseudo_collate

    dataset = DATASETS.build(
        dict(
            type='MarketReIDDataset',
            data_root=osp.join(osp.abspath(data_root), 'target'),
            subset='train',
            pipeline=pipeline,
            test_mode=True,
        )
    )
    loader = torch.utils.data.DataLoader(dataset, batch_size=64, collate_fn=pseudo_collate)
    feats = []
    model.eval()
    with torch.no_grad():
        for batch in loader:
            inputs = model.data_preprocessor(batch, False)['inputs']
            inputs = inputs.flatten(0, 1) if inputs.dim() == 5 else inputs
            feats.append(model.head(model.extract_feat(inputs)).float())
    truth = np.array([dataset.get_data_info(i)['pid'] for i in range(len(dataset))])
    return F.normalize(torch.cat(feats), dim=1), truth


def eps_rows(feats, truth, eps_values: Sequence[float]) -> list:
    """Self-paced clustering of ``feats`` at each eps (Jaccard k1 30 / k2 6, reliability on, the threshold
    computed at that clustering), scored against the true identities.

    Args:
        feats (Tensor): (N, D) features.
        truth (np.ndarray): (N,) true identities.
        eps_values (Sequence[float]): DBSCAN eps values.

    Returns:
        list[dict]: Per eps: ``eps``, ``images``, ``identities``, ``ARI``, ``NMI``, the clustered-only
        purity (:func:`~mmssod.models.reid.clustering.clustered_purity`) and the clustering statistics.
    """
    import numpy as np
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    from mmssod.models.reid.clustering import clustered_purity, self_paced_clustering
    from mmssod.models.reid.jaccard import jaccard_distance, sparse_to_scipy

    dist = sparse_to_scipy(jaccard_distance(feats, 30, 6, max_distance=max(eps_values) + 0.02))
    rows = []
    for eps in eps_values:
        labels, _, stats = self_paced_clustering(dist, eps, 0.02, 4)
        purity = clustered_purity(truth, labels)
        rows.append(
            dict(
                eps=eps,
                images=int(len(truth)),
                identities=int(np.unique(truth).size),
                ARI=round(float(adjusted_rand_score(truth, labels)), 4),
                NMI=round(float(normalized_mutual_info_score(truth, labels)), 4),
                **{k: round(v, 4) for k, v in purity.items()},
                **stats,
            )
        )
    return rows


#: The eps rule, the same for every feature source: the eps of the grid whose clustering has the highest
#: ARI against the true target identities (the smaller eps on a tie); the rule that set the hard domain's 0.4.
GATE_EPS = (0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6)


def best_eps(rows: Sequence[dict]) -> dict:
    """The row of :func:`eps_rows` the eps rule picks: highest ARI, the smaller eps on a tie."""
    return max(rows, key=lambda r: (r['ARI'], -r['eps']))


def run_eps_sweep(args) -> list:
    """Clustering of the target training images with the untrained (e.g. ImageNet) model, per eps.

    No training: the model of ``--config`` as built, eval mode, the hook's initialisation pipeline; then
    the Jaccard distance and self-paced clustering at each eps, and the ARI / NMI of the pseudo labels
    against the true identities. A guide for the target domain's eps (the paper sets it per domain).
    """
    import torch
    from mmdet.registry import MODELS
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    torch.set_num_threads(args.threads)
    init_default_scope('mmdet')
    cfg = Config.fromfile(osp.join(REPO, args.config))
    feats, truth = target_features(MODELS.build(cfg.model), args.data_root, cfg.test_pipeline)
    rows = eps_rows(feats, truth, args.eps)
    for row in rows:
        print(json.dumps(row), flush=True)
    return rows


def run_gate_eps(args) -> dict:
    """The memory-quality gate with eps chosen for each feature source by the same rule (:data:`GATE_EPS`).

    Trains the UDA arm for one epoch of the accuracy schedule (seed ``--seeds[0]``; a finished one-epoch
    checkpoint under ``--work-root`` is reused), then clusters the memory's target rows and the fresh
    eval-mode features of the same weights at every eps of the grid; each source is scored at its own best eps
    (:func:`best_eps`). Passes when the memory's best ARI is at least ``--gate-ratio`` x the fresh features'
    best ARI. Writes the JSON (``--out``); exit 1 when it fails.
    """
    import torch
    from mmdet.registry import MODELS
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    from mmssod.utils.safe_load import load_checkpoint_file

    torch.set_num_threads(args.threads)
    config, kind = ARMS[args.backbone]['SpCL (UDA)']
    seed = args.seeds[0]
    work = arm_work_dir(args, 'SpCL (UDA)', seed)
    if work and osp.exists(osp.join(work, 'epoch_1.pth')):
        row = dict(arm='SpCL (UDA)', seed=seed, work_dir=work)
        if args.out and osp.exists(args.out):  # the training's row, saved by the run that trained it
            with open(args.out) as f:
                row = json.load(f).get('run', row)
    else:
        row = train_arm(args, 'SpCL (UDA)', config, kind, seed, extra=['train_cfg.max_epochs=1'])
    ckpt = osp.join(row['work_dir'], 'epoch_1.pth')
    if not osp.exists(ckpt):
        log = osp.join(row['work_dir'], 'bench_output.log')
        raise SystemExit(f'gate-eps: the one-epoch run left no {ckpt}; see {log}')
    init_default_scope('mmdet')
    cfg = Config.fromfile(osp.join(row['work_dir'], osp.basename(config)))
    state = load_checkpoint_file(ckpt, map_location='cpu')['state_dict']
    model = MODELS.build(cfg.model)
    weights = {k: v for k, v in state.items() if '.memory.' not in k}  # the memory: read as saved
    missing, unexpected = model.load_state_dict(weights, strict=False)
    if unexpected or any('.memory.' not in k for k in missing):
        raise SystemExit(f'gate-eps: {ckpt} does not fit {config}: missing {missing}, extra {unexpected}')
    fresh, truth = target_features(model, args.data_root, cfg.test_pipeline)
    memory = state['head.memory.features'][int(state['head.memory.num_source']) :].float()
    sources = dict(memory=eps_rows(memory, truth, GATE_EPS), fresh=eps_rows(fresh, truth, GATE_EPS))
    best = {name: best_eps(rows) for name, rows in sources.items()}
    passed = bool(best['memory']['ARI'] >= args.gate_ratio * best['fresh']['ARI'])
    out = dict(
        schedule=schedule_key(args),
        epochs_trained=1,
        seed=seed,
        rule='eps of the grid with the highest ARI for each feature source (smaller eps on a tie)',
        grid=list(GATE_EPS),
        ratio=args.gate_ratio,
        sweeps=sources,
        best=best,
        passed=passed,
        run=row,
    )
    mem, fr = best['memory'], best['fresh']
    print(
        f'gate-eps (seed {seed}): memory best ARI {mem["ARI"]:.4f} at eps {mem["eps"]}, fresh best ARI '
        f'{fr["ARI"]:.4f} at eps {fr["eps"]}: {"passed" if passed else "FAILED"} (ratio {args.gate_ratio})'
    )
    write_json(args.out, out)
    if not passed:
        raise SystemExit(1)
    return out


def data_options(q, target_domain: str = 'default') -> None:
    """Data options: ``--target-domain``, ``--data-root`` (default: that domain's folder), ``--data-seed``."""
    from tools.benchmarks.composited.reid import TARGET_DOMAIN_ROOTS

    q.add_argument(
        '--target-domain',
        choices=sorted(TARGET_DOMAIN_ROOTS),
        default=target_domain,
        help='hard: source / target identities from disjoint Fashion-MNIST classes, colours from a small '
        'shared palette (composited_reid.py --target-domain)',
    )
    q.add_argument(
        '--data-root',
        help=f'composited re-ID build (default: {TARGET_DOMAIN_ROOTS}[--target-domain]; built with '
        f'{BENCH_DATA} when missing)',
    )
    q.add_argument('--data-seed', type=int, default=0, help='generation seed when the data root is built')


def training_options(q, epochs: int, target_domain: str = 'default') -> None:
    """Options of ``accuracy``, ``gate`` and ``domain-check``: data, model, schedule, clustering, output."""
    data_options(q, target_domain)
    q.add_argument('--backbone', choices=sorted(ARMS), default='lite0', help='pretrained Lite0 or random R18')
    q.add_argument('--epochs', type=int, default=epochs)
    q.add_argument('--iters', type=int, default=100)
    q.add_argument('--batch', type=int, default=64, help='images per domain per batch')
    q.add_argument('--width', type=int, default=64, help='ResNet-18 base channels (64 = standard; r18 only)')
    q.add_argument('--eps', type=float, default=0.6, help='DBSCAN eps of the target domain (paper: 0.6)')
    q.add_argument('--workers', type=int, default=2)
    q.add_argument('--threads', type=int, default=2, help='OMP_NUM_THREADS of each run')
    add_determinism_args(q, threads=False)  # --threads above is the runs' thread count
    q.add_argument('--seeds', type=int, nargs='+', default=[0])
    q.add_argument(
        '--refresh-memory',
        action='store_true',
        help='SpCLClusterHook(refresh_memory=True): cluster fresh eval-mode features (not the official code)',
    )
    q.add_argument(
        '--cluster-fresh',
        action='store_true',
        help='SpCLClusterHook(cluster_fresh=True): pseudo labels from fresh eval-mode features, memory rows '
        'untouched (one of the two effects of --refresh-memory)',
    )
    q.add_argument(
        '--gate-ratio', type=float, default=GATE_RATIO, help='gate: memory ARI >= this x fresh ARI'
    )
    q.add_argument('--out', help='write the rows (per-epoch memory / fresh ARI, gate) to this JSON file')
    q.add_argument(
        '--work-root', help="keep each run's work dir and log under this folder (default: a temp dir)"
    )


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest='cmd', required=True)
    c = sub.add_parser('clustering')
    c.add_argument('--sizes', type=int, nargs='+', default=[12936, 50000])
    c.add_argument('--dim', type=int, default=2048)
    c.add_argument('--device', default='auto')
    c.add_argument('--out', help='write the rows to this JSON file')
    cc = sub.add_parser('clustering-child')
    cc.add_argument('--n', type=int, required=True)
    cc.add_argument('--dim', type=int, default=2048)
    cc.add_argument('--device', default='cpu')
    j = sub.add_parser('jaccard-compare')
    j.add_argument('--sizes', type=int, nargs='+', default=[5000, 12936])
    j.add_argument('--dim', type=int, default=2048)
    j.add_argument('--threads', type=int, default=1)
    j.add_argument('--repeats', type=int, default=5)
    j.add_argument('--out', help='write the rows to this JSON file')
    jo = sub.add_parser('jaccard-official', help='mmssod vs the official SpCL Jaccard, with the kNN floor')
    jo.add_argument('--official-root', help='folder holding the official spcl/utils/faiss_rerank.py')
    jo.add_argument('--sizes', type=int, nargs='+', default=[5000])
    jo.add_argument('--dim', type=int, default=2048)
    jo.add_argument('--k1', type=int, default=30, help='SpCL training scripts: 30')
    jo.add_argument('--k2', type=int, default=6, help='SpCL training scripts: 6')
    jo.add_argument(
        '--max-distance',
        type=float,
        default=0.62,
        help='also time mmssod with this cut, as SpCLClusterHook calls it (eps + gap of the configs: 0.62)',
    )
    jo.add_argument('--threads', type=int, default=1)
    jo.add_argument('--repeats', type=int, default=3)
    jo.add_argument('--out', help='write the rows to this JSON file')
    u = sub.add_parser('update')
    u.add_argument('--batch', type=int, default=256)
    u.add_argument('--memory', type=int, default=12936 + 751)
    u.add_argument('--dim', type=int, default=2048)
    u.add_argument('--repeats', type=int, default=51)
    u.add_argument('--device', default='auto')
    u.add_argument('--out', help='write the result to this JSON file')
    a = sub.add_parser('accuracy')
    g = sub.add_parser('gate', help='the memory-quality gate (run before a multi-seed accuracy run)')
    ge = sub.add_parser('gate-eps', help='the gate with eps chosen per feature source by one rule')
    dc = sub.add_parser(
        'domain-check',
        help='source-only and target oracle, one seed, briefly: the gap before a multi-seed run',
    )
    for q in (a, g, ge):
        training_options(q, epochs=1 if q is g else 20)
    training_options(dc, epochs=2, target_domain='hard')
    for q in (a, dc):
        q.add_argument(
            '--min-oracle-gap', type=float, default=ORACLE_GAP, help='goal: target oracle - source-only mAP'
        )
    a.add_argument('--arms', nargs='+', choices=ARM_NAMES, help='run only these (default: all)')
    a.add_argument('--gate-json', help='JSON of a passed `gate` run (required with several seeds)')
    a.add_argument('--skip-gate', action='store_true', help='run several seeds without a passed gate')
    a.add_argument(
        '--min-gap-sd', type=float, default=2.0, help='target: each ordering gap > this x its seed sd'
    )
    w = sub.add_parser('eps-sweep')
    w.add_argument(
        '--config', default='configs/spcl/spcl_efficientnet-lite0_1xb64-20e_usl_composited-reid.py'
    )
    data_options(w)
    w.add_argument('--eps', type=float, nargs='+', default=[0.3, 0.4, 0.5, 0.55, 0.6])
    w.add_argument('--threads', type=int, default=1)
    r = sub.add_parser('report', help='merge the JSON rows of accuracy logs into one report')
    r.add_argument('logs', nargs='+')
    r.add_argument(
        '--min-gap-sd', type=float, default=2.0, help='target: each ordering gap > this x its seed sd'
    )
    r.add_argument(
        '--min-oracle-gap', type=float, default=ORACLE_GAP, help='goal: target oracle - source-only mAP'
    )
    e = sub.add_parser('eval-untrained')
    e.add_argument('config')
    e.add_argument('work_dir')
    e.add_argument('options', nargs='*')
    args = p.parse_args(argv)
    if args.cmd == 'eval-untrained':
        return eval_untrained(args.config, args.work_dir, args.options)
    if args.cmd in ('accuracy', 'gate', 'gate-eps', 'domain-check', 'eps-sweep'):
        prepare_data(args)
    if args.cmd == 'clustering-child':
        print(json.dumps(clustering_child(args.n, args.dim, args.device)))
    elif args.cmd == 'clustering':
        run_clustering(args)
    elif args.cmd == 'eps-sweep':
        run_eps_sweep(args)
    elif args.cmd == 'gate-eps':
        run_gate_eps(args)
    elif args.cmd == 'jaccard-compare':
        run_jaccard_compare(args)
    elif args.cmd == 'jaccard-official':
        run_jaccard_official(args)
    elif args.cmd == 'update':
        run_update(args)
    elif args.cmd == 'report':
        run_report(args)
    elif args.cmd == 'gate':
        run_gate(args)
    elif args.cmd == 'domain-check':
        run_domain_check(args)
    else:
        run_accuracy(args)


if __name__ == '__main__':
    main()
