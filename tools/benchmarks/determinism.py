"""Same seed, same numbers: the environment a benchmark trains in, and what a saved run records of it.

Under ``--deterministic`` (every bench's default) the processes that train and test a run get:

* a fixed thread count (``--threads``; ``OMP_NUM_THREADS``, ``MKL_NUM_THREADS``, ``NUMBA_NUM_THREADS``): a CPU
  reduction split over another number of threads adds in another order, so two thread counts give two
  (equally valid) runs and the count is part of what a run is;
* ``PYTHONHASHSEED=0``: every process iterates a set of strings in one order;
* ``randomness=dict(seed=S, deterministic=True)`` in the run's config: MMEngine's ``set_random_seed`` seeds
  Python, NumPy and torch (and the dataloader workers from the seed) and turns on
  ``torch.use_deterministic_algorithms`` (a torch op without a deterministic kernel raises instead of varying)
  and cuDNN's deterministic mode; ``CUBLAS_WORKSPACE_CONFIG`` is what deterministic cuBLAS needs on CUDA.

What this cannot fix: the CUDA kernels of mmcv ops (RoIAlign, multi-scale deformable attention) accumulate
their backward pass with atomic adds, and torch's switch does not reach custom ops, so CUDA runs of those
detectors stay non-deterministic; a different thread count, library version or CPU instruction set gives
other numbers (recorded, not fixed).

Where do two runs part? ``python tools/benchmarks/determinism.py WORK_DIR_A WORK_DIR_B`` compares the numbers
the two trainings logged (``vis_data/scalars.json``: losses, grad norm, lr, metrics; not the wall-clock
fields), prints the first step at which they differ and exits 1, or 0 when every logged number is equal
(``--out FILE``: the comparison as JSON).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import os.path as osp
import platform
import sys
from importlib import metadata
from typing import Optional, Sequence

#: The libraries whose versions a saved run records (and ``mmsegmentation`` where installed).
LIBRARIES = ('torch', 'mmcv', 'mmengine', 'mmdet', 'mmpretrain', 'mmsegmentation', 'numpy')
#: What deterministic cuBLAS needs (a workspace per stream of this size; see the CUDA reproducibility notes).
CUBLAS_WORKSPACE = ':4096:8'


def add_determinism_args(parser: argparse.ArgumentParser, threads: bool = True) -> None:
    """Add ``--deterministic/--no-deterministic`` (default on) and, with ``threads``, ``--threads`` (a bench
    with a ``--threads`` of its own passes False: that thread count is the run's)."""
    parser.add_argument(
        '--deterministic',
        action=argparse.BooleanOptionalAction,
        default=True,
        help='same seed and --threads, same losses and metrics on CPU (deterministic torch ops, a fixed '
        'thread count, PYTHONHASHSEED=0); --no-deterministic trains as before (inherited thread count, '
        'nothing fixed)',
    )
    if not threads:
        return
    parser.add_argument(
        '--threads',
        type=int,
        default=None,
        help='CPU threads of every training process under --deterministic '
        '(default: $OMP_NUM_THREADS, else 1)',
    )


def thread_count(args: argparse.Namespace) -> Optional[int]:
    """The thread count a run trains with: fixed under ``--deterministic``, else the inherited one (or None).

    Args:
        args (Namespace): A bench's flags (``deterministic``, ``threads``).

    Returns:
        int | None: Threads per training process; None when neither the flag nor ``OMP_NUM_THREADS`` sets it
        (torch then picks one per core).
    """
    env = os.environ.get('OMP_NUM_THREADS')
    if getattr(args, 'deterministic', False):
        threads = args.threads if args.threads is not None else int(env or 1)
        if threads < 1:
            raise ValueError(f'--threads must be >= 1, got {threads}')
        return threads
    return int(env) if env else None


def run_env(args: argparse.Namespace, base: Optional[dict] = None) -> dict:
    """The environment of a bench's training / testing subprocess.

    Args:
        args (Namespace): A bench's flags.
        base (dict, optional): Environment to start from. Defaults to None (``os.environ``).

    Returns:
        dict: ``base`` plus, under ``--deterministic``, the fixed thread count, ``PYTHONHASHSEED=0`` and
        ``CUBLAS_WORKSPACE_CONFIG``; ``base`` unchanged without it.
    """
    env = dict(os.environ if base is None else base)
    if getattr(args, 'deterministic', False):
        threads = str(thread_count(args))
        env.update(
            OMP_NUM_THREADS=threads,
            MKL_NUM_THREADS=threads,
            NUMBA_NUM_THREADS=threads,  # SpCL's compiled Jaccard distance
            PYTHONHASHSEED='0',
            CUBLAS_WORKSPACE_CONFIG=CUBLAS_WORKSPACE,
        )
    return env


def randomness(args: argparse.Namespace, seed: int) -> dict:
    """The ``randomness`` setting of a run's config: the seed, deterministic ops under the flag."""
    return dict(seed=seed, deterministic=bool(getattr(args, 'deterministic', False)))


def run_identity(args: argparse.Namespace) -> dict:
    """What a run's reuse key adds under ``--deterministic``: the flag and the thread count.

    Empty without the flag, so runs saved before the flag existed keep the settings they were saved with
    (and are reused by ``--no-deterministic``).
    """
    if not getattr(args, 'deterministic', False):
        return {}
    return {'deterministic': True, 'threads': thread_count(args)}


def library_versions() -> dict:
    """Installed versions of :data:`LIBRARIES` (None for one that is not installed)."""
    out = {}
    for name in LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux), else the platform's processor and machine names."""
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def run_record(args: argparse.Namespace, in_process: bool = False) -> dict:
    """What a saved run records of how it was made: the flag, thread count, hash seed, CPU, Python and library
    versions. ``in_process``: the bench trains in its own process (its hash seed is the one it started with),
    not in subprocesses given :func:`run_env`."""
    env = os.environ if in_process else run_env(args)
    return {
        'deterministic': bool(getattr(args, 'deterministic', False)),
        'threads': thread_count(args),
        'python_hash_seed': env.get('PYTHONHASHSEED'),
        'python': platform.python_version(),
        'cpu': cpu_model(),
        'versions': library_versions(),
    }


def logged_numbers(work_dir: str) -> list:
    """The records of a training's last MMEngine log (``<work_dir>/<timestamp>/vis_data/scalars.json``), one
    dict a logged step or evaluation, without the wall-clock fields (``time``, ``data_time``, ``eta``)."""
    found = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')))
    if not found:
        raise FileNotFoundError(
            f'no <timestamp>/vis_data/scalars.json under {work_dir}: not a training work dir'
        )
    with open(found[-1]) as f:
        records = [json.loads(line) for line in f if line.strip()]
    return [{k: v for k, v in r.items() if 'time' not in k and k != 'eta'} for r in records]


def first_difference(a: Sequence[dict], b: Sequence[dict]) -> Optional[dict]:
    """The first record at which two runs' logged numbers differ (bit for bit), or None when all are equal.

    Args:
        a (Sequence[dict]): Records of one run (:func:`logged_numbers`).
        b (Sequence[dict]): Records of the other.

    Returns:
        dict | None: ``index`` (0-based record), ``step`` (the record's ``step``), ``keys`` (the numbers that
        differ) and ``a`` / ``b`` (their values); a run that logged fewer records differs at its end.
    """
    for i, (ra, rb) in enumerate(zip(a, b)):
        keys = sorted(k for k in set(ra) | set(rb) if ra.get(k) != rb.get(k))
        if keys:
            return {
                'index': i,
                'step': ra.get('step'),
                'keys': keys,
                'a': {k: ra.get(k) for k in keys},
                'b': {k: rb.get(k) for k in keys},
            }
    if len(a) != len(b):
        return {'index': min(len(a), len(b)), 'step': None, 'keys': ['records'], 'a': len(a), 'b': len(b)}
    return None


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description='First step at which two trainings logged other numbers.')
    parser.add_argument(
        'work_dirs', nargs=2, metavar='WORK_DIR', help='the two runs (tools/train.py --work-dir)'
    )
    parser.add_argument('--out', help='also write the comparison to this JSON file')
    args = parser.parse_args(argv)
    a, b = (logged_numbers(d) for d in args.work_dirs)
    diff = first_difference(a, b)
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(dict(runs=args.work_dirs, records=[len(a), len(b)], first_difference=diff), f, indent=1)
    if diff is None:
        print(f'identical: {len(a)} logged records, every number equal')
        return 0
    print(f'first difference at record {diff["index"]} (step {diff["step"]}): {json.dumps(diff["keys"])}')
    print(f'  a: {json.dumps(diff["a"])}\n  b: {json.dumps(diff["b"])}')
    return 1


if __name__ == '__main__':
    sys.exit(main())
