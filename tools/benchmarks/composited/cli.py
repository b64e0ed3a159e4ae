"""Shared command-line plumbing of ``tools/dataset_converters/composited_*.py``."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Callable, Optional, Sequence

from .errors import CompositedDataError
from .files import PROVENANCE
from .sources import DEFAULT_FMNIST_ROOT, FMNIST_ENV_VAR


def base_parser(description: str, default_out: str) -> argparse.ArgumentParser:
    """Parser with the flags every composited builder shares.

    Args:
        description (str): Tool description.
        default_out (str): Default ``--out``.

    Returns:
        argparse.ArgumentParser: Parser with ``--out``, ``--seed``, ``--fmnist-root``, ``--preview``,
        ``--no-progress``.
    """
    parser = argparse.ArgumentParser(
        description=f'{description} Output is {PROVENANCE} (Fashion-MNIST items on scikit-image images).',
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument('--out', default=default_out, help='output folder')
    parser.add_argument('--seed', type=int, default=0, help='generation seed (same seed -> identical files)')
    parser.add_argument(
        '--fmnist-root',
        default=None,
        help=f'folder with the Fashion-MNIST IDX files (default: ${FMNIST_ENV_VAR} or {DEFAULT_FMNIST_ROOT})',
    )
    parser.add_argument('--preview', action='store_true', help='also write <out>/preview.png')
    parser.add_argument('--no-progress', action='store_true', help='hide the progress bars')
    return parser


def int_range(values: Sequence[int], name: str) -> tuple:
    """Turn a two-value ``nargs=2`` flag into a tuple, checking ``min <= max``.

    Args:
        values (Sequence[int]): ``[min, max]``.
        name (str): Flag name for the error message.

    Returns:
        tuple[int, int]: ``(min, max)``.
    """
    lo, hi = int(values[0]), int(values[1])
    if lo > hi:
        raise CompositedDataError(f'{name}: min {lo} is larger than max {hi}')
    return lo, hi


def run_cli(main: Callable[[Optional[Sequence[str]]], dict], argv: Optional[Sequence[str]] = None) -> int:
    """Run a builder's ``main``; user errors become a one-line message and exit status 2.

    Args:
        main (Callable): Function parsing ``argv`` and building; returns the ``meta.json`` content.
        argv (Sequence[str], optional): Arguments; ``sys.argv[1:]`` when None. Defaults to None.

    Returns:
        int: 0 on success (errors exit through ``SystemExit(2)``).
    """
    prog = sys.argv[0].rsplit('/', 1)[-1] or 'composited'
    start = time.perf_counter()
    try:
        main(argv)
    except CompositedDataError as err:
        print(f'{prog}: error: {err}', file=sys.stderr)
        raise SystemExit(2) from None
    print(f'{prog}: done in {time.perf_counter() - start:.1f} s ({PROVENANCE})', file=sys.stderr)
    return 0
