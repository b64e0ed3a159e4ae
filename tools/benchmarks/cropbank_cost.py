"""Per-iteration cost of ACRST's CropBank as its window of pseudo-label candidates grows.

What ``CropBankHook`` does on every training iteration is ``CropBank.add_teacher_records`` on the teacher's
detections of that iteration's unlabeled images. This script feeds a bank ``--images`` images x ``--boxes``
kept detections per iteration (``--classes`` classes, every image a new file) until the window holds
``--candidates`` candidates, and prints the mean time per iteration at several window sizes, then the time of
one pruning to ``pseudo_cap`` per class (what the bank does once the window exceeds twice that) and of a
refresh. ``--compare-rev REV`` also measures the CropBank module of git revision ``REV`` (loaded from a
temporary file) on the same detections, so both rows come from one run on one machine.

    python tools/benchmarks/cropbank_cost.py                      # this checkout
    python tools/benchmarks/cropbank_cost.py --compare-rev HEAD~3   # and another revision, same run
    python tools/benchmarks/cropbank_cost.py --compare-rev HEAD~3 --out cost.json   # also save the rows

:func:`table` renders a saved run as the docs' Markdown table.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import os.path as osp
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)
MODULE = 'mmssod/datasets/cropbank.py'


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='CropBank cost per iteration as the window grows')
    parser.add_argument('--images', type=int, default=32, help='unlabeled images per iteration')
    parser.add_argument('--boxes', type=int, default=8, help='kept detections per image')
    parser.add_argument('--classes', type=int, default=80)
    parser.add_argument('--pseudo-cap', type=int, default=1000, help='CropBank pseudo_cap')
    parser.add_argument('--candidates', type=int, default=150_000, help='grow the window to this size')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--compare-rev', help='also measure the CropBank module of this git revision')
    parser.add_argument('--compare-path', default=MODULE, help='path of the module in --compare-rev')
    parser.add_argument('--out', help='write the rows (ms per iteration by window size) to this JSON file')
    return parser.parse_args(argv)


def load_module_at(rev: str, path: str):
    """Import ``path`` as it is in git revision ``rev`` from a temporary file."""
    try:
        source = subprocess.run(
            ['git', 'show', f'{rev}:{path}'], cwd=ROOT, check=True, capture_output=True, text=True
        ).stdout
    except subprocess.CalledProcessError as err:
        raise SystemExit(f'--compare-rev {rev} / --compare-path {path}: {err.stderr.strip()}') from err
    tmp = tempfile.NamedTemporaryFile('w', suffix='_cropbank.py', delete=False)
    with tmp:
        tmp.write(source)
    spec = importlib.util.spec_from_file_location(f'cropbank_{rev}', tmp.name)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def iteration_records(rng: np.random.Generator, it: int, args) -> list[dict]:
    """The teacher's detections of one iteration: ``images`` new files, ``boxes`` kept detections each."""
    out = []
    for i in range(args.images):
        xy = rng.uniform(0, 400, (args.boxes, 2)).astype(np.float32)
        wh = rng.uniform(8, 200, (args.boxes, 2)).astype(np.float32)
        out.append(
            {
                'img_path': f'/data/unlabeled/{it * args.images + i:08d}.jpg',
                'bboxes': np.concatenate([xy, xy + wh], 1),
                'labels': rng.integers(0, args.classes, args.boxes),
                'scores': rng.uniform(0.7, 1.0, args.boxes),
                'kept': np.ones(args.boxes, bool),
            }
        )
    return out


def measure(module, batches: list[list[dict]], args) -> dict:
    """Seconds per iteration by window size, one pruning and one refresh at the end."""
    bank = module.CropBank(args.classes, pseudo_cap=args.pseudo_cap)
    # where this process's candidates wait for the next refresh (``pending_candidates`` where the bank has
    # them: gathered across ranks at refresh time only)
    table = getattr(bank, 'pending_candidates', bank.candidates)
    sizes, times = [], []
    for records in batches:
        start = time.perf_counter()
        bank.add_teacher_records(records)
        times.append(time.perf_counter() - start)
        sizes.append(len(table))
    start = time.perf_counter()
    table.top_per_class(args.classes, args.pseudo_cap)
    prune = time.perf_counter() - start
    start = time.perf_counter()
    bank.refresh()
    refresh = time.perf_counter() - start
    return {'sizes': np.array(sizes), 'times': np.array(times), 'prune': prune, 'refresh': refresh}


def summary(name: str, result: dict, marks: list[int]) -> dict:
    """The saved row of one module: mean ms per iteration over the iterations whose window size falls in
    ``(previous mark, mark]`` (None where none does), ms of the pruning and of the refresh."""
    sizes, times = result['sizes'], result['times']
    means, previous = [], 0
    for mark in marks:
        sel = (sizes > previous) & (sizes <= mark)
        means.append(round(1e3 * float(times[sel].mean()), 2) if sel.any() else None)
        previous = mark
    return {
        'module': name,
        'ms_per_iteration': means,
        'prune_ms': round(1e3 * result['prune'], 1),
        'refresh_ms': round(1e3 * result['refresh'], 1),
    }


def table(path: str) -> str:
    """Markdown of a run saved with ``--out``: one row per module, mean ms per iteration by window size."""
    from tools.benchmarks.stats import markdown_table, number

    with open(path) as f:
        run = json.load(f)
    header = ['module'] + [f'<= {m:,}' for m in run['marks']] + ['one pruning (ms)', 'one refresh (ms)']
    rows = [
        [r['module']]
        + [number(v) for v in r['ms_per_iteration']]
        + [number(r['prune_ms'], '.1f'), number(r['refresh_ms'], '.1f')]
        for r in run['rows']
    ]
    return markdown_table(header, rows)


def main(argv=None) -> None:
    args = parse_args(argv)
    per_iter = args.images * args.boxes
    iters = -(-args.candidates // per_iter)
    rng = np.random.default_rng(args.seed)
    batches = [iteration_records(rng, it, args) for it in range(iters)]
    modules = []
    if args.compare_rev:
        modules.append((args.compare_rev[:12], load_module_at(args.compare_rev, args.compare_path)))
    from mmssod.datasets import cropbank

    head = subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], cwd=ROOT, capture_output=True, text=True)
    modules.append(
        (f'this tree (HEAD {head.stdout.strip()})' if head.returncode == 0 else 'this tree', cropbank)
    )
    marks = [m for m in (8_000, 16_000, 32_000, 64_000, 96_000, 128_000) if m < args.candidates]
    marks.append(args.candidates)
    print(
        f'CropBank.add_teacher_records per iteration ({args.images} images x {args.boxes} boxes, '
        f'{args.classes} classes, {iters} iterations), mean ms by window size (candidates, up to):'
    )
    print(f'{"module":<24}' + ''.join(f'{m // 1000:>7}k' for m in marks) + f'{"prune ms":>10}{"refresh":>10}')
    rows = []
    for name, module in modules:
        rows.append(summary(name, measure(module, batches, args), marks))
        cells = ''.join(f'{"-" if v is None else format(v, ".2f"):>8}' for v in rows[-1]['ms_per_iteration'])
        print(f'{name:<24}{cells}{rows[-1]["prune_ms"]:10.1f}{rows[-1]["refresh_ms"]:10.1f}')
    if args.out:
        settings = {
            k: getattr(args, k) for k in ('images', 'boxes', 'classes', 'pseudo_cap', 'candidates', 'seed')
        }
        run = dict(
            command=' '.join(sys.argv),
            date=time.strftime('%Y-%m-%d'),
            load_avg=os.getloadavg()[0],
            settings=settings,
            marks=marks,
            rows=rows,
        )
        os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
        with open(args.out, 'w') as f:
            json.dump(run, f, indent=1)


if __name__ == '__main__':
    main()
