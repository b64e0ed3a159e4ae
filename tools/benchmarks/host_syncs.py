"""Host syncs per training iteration of each method's tiny config, with the stock baseline where there is one.

A host sync is a call that makes a CUDA device wait for the host (``.item()``, ``bool()`` of a tensor, mask
indexing, ``nonzero``, ``unique``, ``.cpu()``, a blocking host-to-device copy, ...), counted on the CPU by
:class:`mmssod.utils.host_syncs.HostSyncCounter` by calling line. Each run trains ``--iters`` iterations of
its tiny config through MMEngine's Runner; the first is a warm-up, the others are counted from
``before_train_iter`` to the end of ``after_train_iter`` (model step, optimizer, memory / bank hooks,
logging). SpCL's memory update runs its device code path (on a CPU the compiled per-sample loop would
run instead). Data: composited from real images, CPU scale.

    python tools/benchmarks/host_syncs.py [--methods SpCL DINO ...] [--iters 4] [--out syncs.json]
"""

from __future__ import annotations

import argparse
import json
import os
import os.path as osp
import sys
import tempfile

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from mmengine.hooks import Hook  # noqa: E402

from mmssod.utils.host_syncs import HostSyncCounter  # noqa: E402
from tools.benchmarks.tiny_runs import RUNS, load_config, prepare  # noqa: E402


class SyncCountHook(Hook):
    """Counts the host syncs of every training iteration after the first (runs last in each stage)."""

    priority = 'LOWEST'

    def __init__(self):
        self.counter = HostSyncCounter()
        self.per_iter = []  # (total, in mmssod) per counted iteration
        self.lines = HostSyncCounter().calls  # summed over counted iterations
        self._on = False

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if runner.iter >= 1:
            self.counter.reset()
            self.counter.__enter__()
            self._on = True

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if self._on:
            self.counter.__exit__(None, None, None)
            self._on = False
            self.per_iter.append((self.counter.count(), self.counter.count('mmssod')))
            self.lines.update(self.counter.calls)


def count_run(run, iters: int, run_dir: str) -> dict:
    """Host syncs per counted iteration of one tiny config (trained in ``run_dir``)."""
    from mmengine.runner import Runner

    from mmssod.models.reid import hybrid_memory

    cfg = load_config(run, iters, run_dir, osp.join(run_dir, 'work', run.name))
    cfg.train_cfg.val_interval = iters + 1  # training iterations only
    hook = SyncCountHook()
    old_kernel, hybrid_memory._update_kernel = hybrid_memory._update_kernel, lambda: None
    cwd = os.getcwd()
    os.chdir(run_dir)
    try:
        runner = Runner.from_cfg(cfg)
        runner.register_hook(hook)
        runner.train()
    finally:
        os.chdir(cwd)
        hybrid_memory._update_kernel = old_kernel
    n = max(len(hook.per_iter), 1)
    ranked = sorted(((c, k, loc) for (k, loc), c in hook.lines.items()), reverse=True)
    top = [t for t in ranked if 'mmssod' in t[2]][:8]
    return dict(
        method=run.name,
        baseline_of=run.baseline_of,
        iterations=len(hook.per_iter),
        total=sum(t for t, _ in hook.per_iter) / n,
        mmssod=sum(m for _, m in hook.per_iter) / n,
        mmssod_lines=[dict(per_iter=c / n, kind=k, line=osp.relpath(loc, os.getcwd())) for c, k, loc in top],
        top_lines=[dict(per_iter=c / n, kind=k, line=loc) for c, k, loc in ranked[:10]],
    )


def table(results) -> str:
    rows = [
        '| method | baseline of | counted iterations | syncs / iteration (all) | in mmssod |',
        '|---|---|---:|---:|---:|',
    ]
    for r in results:
        if 'error' in r:
            rows.append(f'| {r["method"]} | {r["baseline_of"] or ""} | failed: {r["error"][:80]} | | |')
            continue
        counts = f'{r["iterations"]} | {r["total"]:.1f} | {r["mmssod"]:.1f}'
        rows.append(f'| {r["method"]} | {r["baseline_of"] or ""} | {counts} |')
    return '\n'.join(rows)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument(
        '--methods', nargs='+', default=[r.name for r in RUNS], help='names from tiny_runs.RUNS'
    )
    parser.add_argument('--iters', type=int, default=4, help='training iterations per run (first = warm-up)')
    parser.add_argument('--run-dir', default=None, help='data and work dirs (default: a temporary folder)')
    parser.add_argument('--out', default=None, help='write the results as JSON here')
    args = parser.parse_args(argv)
    unknown = set(args.methods) - {r.name for r in RUNS}
    if unknown:
        parser.error(f'unknown methods {sorted(unknown)}; choose from {[r.name for r in RUNS]}')
    runs = [r for r in RUNS if r.name in args.methods]
    run_dir = args.run_dir or tempfile.mkdtemp(prefix='host_syncs_')
    prepare(run_dir, runs)
    results = []
    for run in runs:
        try:
            results.append(count_run(run, args.iters, run_dir))
        except Exception as err:  # report the others; the failure is in the table
            results.append(
                dict(method=run.name, baseline_of=run.baseline_of, error=f'{type(err).__name__}: {err}')
            )
    print(table(results))
    for r in results:
        for line in r.get('mmssod_lines', []):
            print(f'{r["method"]:10s} {line["per_iter"]:5.1f}  {line["kind"]:17s} {line["line"]}')
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(results, f, indent=1)


if __name__ == '__main__':
    main()
