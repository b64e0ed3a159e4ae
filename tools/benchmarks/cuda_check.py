"""One command for the CUDA checks: each method's tiny config trains, saves, resumes and tests on a GPU.

For every method of :data:`tools.benchmarks.tiny_runs.RUNS` (and its stock mmdet baseline), with and without
``--amp``: ``tools/train.py`` for ``--iters`` iterations, then ``--resume`` from that checkpoint for as many
more, then ``tools/test.py`` on the resumed checkpoint. SpCL's UDA config runs as one process (world size 1).
With 2 or more GPUs, ``tools/dist_train.sh`` (NCCL) trains ACRST and SpCL on 2 GPUs and every rank's CropBank
digest / hybrid memory must be equal. Seconds per iteration are the median of MMEngine's logged ``time``
after the first iteration; each method's stock baseline (SoftTeacher for ACRST, DINO for Cal-DETR) runs in
the same call, so the ratio compares like with like. Data: composited from real images, CPU scale.

    python tools/benchmarks/cuda_check.py [--methods ACRST SpCL ...] [--iters 4] [--out results.json]

Exits 1 when a check fails; prints a table (pass / fail, s / iteration, ratio to the baseline) last.
``pytest tests/test_cuda`` runs the same checks one by one (skipped without CUDA).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import os.path as osp
import re
import socket
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from mmengine.config import Config  # noqa: E402

from tools.benchmarks.tiny_runs import (  # noqa: E402
    REPO_ROOT,
    RUNS,
    cfg_options_args,
    config_file,
    prepare,
    schedule_options,
)

DIST_METHODS = ('ACRST', 'SpCL')


def _python(args, run_dir, timeout=900, env=None):
    path = os.pathsep.join(p for p in (REPO_ROOT, os.environ.get('PYTHONPATH')) if p)
    full_env = {**os.environ, 'PYTHONPATH': path, **(env or {})}
    return subprocess.run(
        [sys.executable, *args], cwd=run_dir, env=full_env, capture_output=True, text=True, timeout=timeout
    )


def _check(res, what):
    if res.returncode != 0:
        raise RuntimeError(f'{what} exited {res.returncode}:\n{res.stdout[-1500:]}\n{res.stderr[-4000:]}')
    return res.stdout + res.stderr


def seconds_per_iter(log: str) -> float | None:
    """Median of MMEngine's per-iteration ``time`` in a training log, the first logged iteration left out."""
    times = [float(t) for t in re.findall(r'(?:Iter|Epoch)\(train\).*?\btime: ([0-9.]+)', log)]
    times = times[1:] or times
    return statistics.median(times) if times else None


def latest_checkpoint(work_dir: str) -> str:
    ckpts = [p for p in glob.glob(osp.join(work_dir, '*.pth')) if 'best' not in osp.basename(p)]
    if not ckpts:
        raise FileNotFoundError(f'no checkpoint written in {work_dir}')
    return max(ckpts, key=osp.getmtime)


def train_resume_test(run, amp: bool, run_dir: str, iters: int = 4) -> dict:
    """Train ``iters`` iterations, resume for ``iters`` more, test; returns s / iteration and facts."""
    tag = f'{run.name}{"_amp" if amp else ""}'
    work = osp.join(run_dir, 'work', tag)
    config = config_file(run, run_dir)
    amp_args = ['--amp'] if amp else []
    first = schedule_options(run, iters, run_dir)
    log = _check(
        _python(
            [
                osp.join(REPO_ROOT, 'tools/train.py'),
                config,
                '--work-dir',
                work,
                *amp_args,
                *cfg_options_args(first),
            ],
            run_dir,
        ),
        f'{tag}: train',
    )
    ckpt = latest_checkpoint(work)
    longer = schedule_options(run, 2 * iters, run_dir)
    if 'train_cfg.max_epochs' in longer:  # epoch-based (SpCL): one more epoch of `iters` iterations
        longer.update({'train_cfg.max_epochs': 2, 'train_dataloader.sampler.iters_per_epoch': iters})
    resumed_log = _check(
        _python(
            [
                osp.join(REPO_ROOT, 'tools/train.py'),
                config,
                '--work-dir',
                work,
                *amp_args,
                '--resume',
                ckpt,
                *cfg_options_args(longer),
            ],
            run_dir,
        ),
        f'{tag}: resume',
    )
    if not re.search(r'[Rr]esumed? ', resumed_log):
        raise RuntimeError(f'{tag}: the resumed run does not log a resume:\n{resumed_log[-2000:]}')
    final = latest_checkpoint(work)
    if final == ckpt:
        raise RuntimeError(f'{tag}: resuming wrote no new checkpoint')
    out = dict(s_per_iter=seconds_per_iter(log), resumed_from=osp.basename(ckpt))
    if not has_test_loop(run, run_dir):  # a pretraining config (DDeP): its checkpoint is what it makes
        return dict(out, tested=False)
    test_opts = {k: v for k, v in first.items() if 'dataloader' in k or k.startswith('model.')}
    test_log = _check(
        _python(
            [
                osp.join(REPO_ROOT, 'tools/test.py'),
                config,
                final,
                '--work-dir',
                work,
                *cfg_options_args(test_opts),
            ],
            run_dir,
        ),
        f'{tag}: test',
    )
    return dict(out, tested=True, test_tail=test_log[-300:])


def has_test_loop(run, run_dir: str) -> bool:
    """Whether the config of ``run`` defines a test loop (DDeP's pretraining config does not)."""
    cfg = Config.fromfile(config_file(run, run_dir))
    return all(cfg.get(k) for k in ('test_dataloader', 'test_cfg', 'test_evaluator'))


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def dist_ranks_agree(run, run_dir: str, iters: int = 4) -> dict:
    """2-GPU NCCL run of tools/dist_train.sh; the ranks' banks (ACRST) / memories (SpCL) must be equal."""
    import torch

    work = osp.join(run_dir, 'work', f'{run.name}_dist')
    os.makedirs(work, exist_ok=True)
    if run.name == 'SpCL':
        hook, module = "dict(type='SpCLMemoryDumpHook')", 'tests.test_spcl.memory_dump_hook'
    else:
        hook, module = "dict(type='ACRSTTestBankDigestHook')", 'tests.test_acrst.bank_digest_hook'
    cfg_file = osp.join(work, 'dist_cfg.py')
    with open(cfg_file, 'w') as f:
        f.write(
            f"_base_ = ['{config_file(run, run_dir)}']\n"
            f"custom_imports = dict(imports=['mmssod', '{module}'], allow_failed_imports=False)\n"
            f'custom_hooks = _base_.custom_hooks + [{hook}]\n'
        )
    path = os.pathsep.join(p for p in (REPO_ROOT, os.environ.get('PYTHONPATH')) if p)
    env = {**os.environ, 'PORT': str(_free_port()), 'PYTHON': sys.executable, 'PYTHONPATH': path}
    res = subprocess.run(
        [
            'bash',
            osp.join(REPO_ROOT, 'tools/dist_train.sh'),
            cfg_file,
            '2',
            '--work-dir',
            work,
            *cfg_options_args(schedule_options(run, iters, run_dir)),
        ],
        cwd=run_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    log = _check(res, f'{run.name}: dist_train.sh on 2 GPUs')
    if run.name == 'SpCL':
        m0, m1 = (
            torch.load(osp.join(work, f'memory_rank{r}.pt'), map_location='cpu', weights_only=True)
            for r in (0, 1)
        )
        equal = torch.equal(m0['features'], m1['features']) and torch.equal(m0['labels'], m1['labels'])
    else:
        d0, d1 = (json.load(open(osp.join(work, f'bank_rank{r}.json'))) for r in (0, 1))
        equal = d0 == d1
    if not equal:
        raise RuntimeError(
            f'{run.name}: the ranks hold different {"memories" if run.name == "SpCL" else "banks"}'
        )
    return dict(s_per_iter=seconds_per_iter(log))


def run_all(methods, iters: int, run_dir: str, dist: bool) -> list:
    runs = [r for r in RUNS if r.name in methods]
    prepare(run_dir, runs)
    results = []
    for run in runs:
        stages = 'train, resume, test' if has_test_loop(run, run_dir) else 'train, resume'
        for amp in (False, True):
            row = dict(
                check=f'{run.name}{" --amp" if amp else ""}: {stages}',
                method=run.name,
                amp=amp,
                baseline_of=run.baseline_of,
            )
            try:
                row.update(train_resume_test(run, amp, run_dir, iters), passed=True)
            except Exception as err:
                row.update(passed=False, error=str(err))
            results.append(row)
    if dist:
        for run in (r for r in runs if r.name in DIST_METHODS):
            row = dict(
                check=f'{run.name}: dist_train.sh 2 GPUs (NCCL), ranks equal',
                method=run.name,
                amp=False,
                baseline_of=None,
                dist=True,
            )
            try:
                row.update(dist_ranks_agree(run, run_dir, iters), passed=True)
            except Exception as err:
                row.update(passed=False, error=str(err))
            results.append(row)
    return results


def table(results, device: str) -> str:
    base = {
        (r['baseline_of'], r['amp']): r.get('s_per_iter')
        for r in results
        if r['baseline_of'] and not r.get('dist')
    }
    lines = [
        f'CUDA check on {device}',
        '| check | result | s / iter | vs stock baseline |',
        '|---|---|---:|---:|',
    ]
    for r in results:
        s = r.get('s_per_iter')
        b = base.get((r['method'], r['amp']))
        ratio = f'{s / b:.2f}x' if s and b else ''
        lines.append(
            f'| {r["check"]} | {"pass" if r["passed"] else "FAIL"} | {f"{s:.3f}" if s else ""} | {ratio} |'
        )
    return '\n'.join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument(
        '--methods', nargs='+', default=[r.name for r in RUNS], help='names from tiny_runs.RUNS'
    )
    parser.add_argument('--iters', type=int, default=4, help='iterations before and after the resume')
    parser.add_argument('--run-dir', default=None, help='data and work dirs (default: a temporary folder)')
    parser.add_argument('--out', default=None, help='write the results as JSON here')
    args = parser.parse_args(argv)
    import torch

    if not torch.cuda.is_available():
        print('no CUDA device: nothing to check (tests/test_cuda skips the same way)')
        return 0
    run_dir = args.run_dir or tempfile.mkdtemp(prefix='cuda_check_')
    results = run_all(args.methods, args.iters, run_dir, dist=torch.cuda.device_count() >= 2)
    for r in results:
        if not r['passed']:
            print(f'--- {r["check"]}\n{r["error"]}\n')
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(results, f, indent=1)
    print(table(results, torch.cuda.get_device_name(0)))
    return 0 if all(r['passed'] for r in results) else 1


if __name__ == '__main__':
    sys.exit(main())
