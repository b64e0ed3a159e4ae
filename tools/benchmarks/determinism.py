"""Same seed, same numbers: the environment a benchmark trains in, and what a saved run records of it.

Under ``--deterministic`` (every bench's default) the processes that train and test a run get:

* a fixed thread count (``--threads``; ``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS``): a CPU reduction split over
  another number of threads adds in another order, so two thread counts give two (equally valid) runs and the
  count is part of what a run is;
* ``PYTHONHASHSEED=0``: every process iterates sets and dicts of strings in one order;
* ``randomness=dict(seed=S, deterministic=True)`` in the run's config: MMEngine's ``set_random_seed`` seeds
  Python, NumPy and torch (and the dataloader workers from the seed) and turns on
  ``torch.use_deterministic_algorithms`` (a torch op without a deterministic kernel raises instead of varying)
  and cuDNN's deterministic mode; ``CUBLAS_WORKSPACE_CONFIG`` is what deterministic cuBLAS needs on CUDA.

What this cannot fix: the CUDA kernels of mmcv ops (RoIAlign, multi-scale deformable attention) accumulate
their backward pass with atomic adds, and torch's switch does not reach custom ops, so CUDA runs of those
detectors stay non-deterministic; a different thread count, library version or CPU instruction set gives
other numbers (recorded, not fixed).
"""

from __future__ import annotations

import argparse
import os
import platform
from importlib import metadata
from typing import Optional

#: The libraries whose versions a saved run records (and ``mmsegmentation`` where installed).
LIBRARIES = ('torch', 'mmcv', 'mmengine', 'mmdet', 'mmpretrain', 'mmsegmentation', 'numpy')
#: What deterministic cuBLAS needs (a workspace per stream of this size; see the CUDA reproducibility notes).
CUBLAS_WORKSPACE = ':4096:8'


def add_determinism_args(parser: argparse.ArgumentParser) -> None:
    """Add ``--deterministic/--no-deterministic`` (default on) and, unless it has one, ``--threads``."""
    parser.add_argument(
        '--deterministic',
        action=argparse.BooleanOptionalAction,
        default=True,
        help='same seed and --threads, same losses and metrics on CPU (deterministic torch ops, a fixed '
        'thread count, PYTHONHASHSEED=0); --no-deterministic trains as before (faster where a '
        'non-deterministic kernel is faster, not reproducible)',
    )
    if '--threads' in parser._option_string_actions:  # the bench's own thread count is the run's
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


def run_record(args: argparse.Namespace) -> dict:
    """What a saved run records of how it was made: the flag, thread count, Python and library versions."""
    return {
        'deterministic': bool(getattr(args, 'deterministic', False)),
        'threads': thread_count(args),
        'python_hash_seed': run_env(args).get('PYTHONHASHSEED'),
        'python': platform.python_version(),
        'machine': platform.machine(),
        'versions': library_versions(),
    }
