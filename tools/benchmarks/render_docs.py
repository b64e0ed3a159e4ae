"""Render the results tables of the docs from the saved runs in ``docs/benchmarks/results/``.

A results table sits between markers in README.md, ``docs/benchmarks/*.md`` and ``configs/*/README.md``::

    <!-- results:ddep/gated-5pct -->
    | steps | random-init decoder ... |
    <!-- /results -->

The name before the slash picks the bench (``acrst``, ``cal_detr``, ``spcl``, ``ddep``), whose ``TABLES``
maps the whole name to a function of the results folder returning the Markdown; ``methods/summary`` is
README's table of one row per method (each bench's ``summary_row``). Usage::

    python tools/benchmarks/render_docs.py           # rewrite every region in place
    python tools/benchmarks/render_docs.py --check   # exit 1 naming each region that differs from its runs
"""

from __future__ import annotations

import argparse
import glob
import importlib
import os.path as osp
import re
import sys
from typing import Callable, Dict, List, Optional, Tuple

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, REPO)  # the benches, from this checkout
from tools.benchmarks.stats import markdown_table  # noqa: E402

RESULTS = osp.join(REPO, 'docs', 'benchmarks', 'results')
DOCS = ('README.md', 'docs/benchmarks/*.md', 'configs/*/README.md')
BENCHES = {'acrst': 'acrst_bench', 'cal_detr': 'caldetr_bench', 'spcl': 'spcl_bench', 'ddep': 'ddep_bench'}
REGION = re.compile(r'(<!-- results:(?P<name>\S+) -->\n)(?P<body>.*?)(<!-- /results -->)', re.S)
SUMMARY_HEADER = ('method', 'what was measured', 'result', 'report')


def bench(method: str):
    """The bench module of ``method`` (a key of ``BENCHES``), imported from this checkout."""
    if method not in BENCHES:
        raise KeyError(f'no bench for results of {method!r}; the benches are {sorted(BENCHES)}')
    return importlib.import_module(f'tools.benchmarks.{BENCHES[method]}')


def methods_summary(results: str) -> str:
    """README's results table: one row per method from its bench's ``summary_row(results)`` (method,
    what was measured, result, report link), the method linked to its README."""
    rows = []
    for method in BENCHES:
        name, *cells = bench(method).summary_row(results)
        rows.append((f'[{name}](configs/{method}/README.md)', *cells))
    return markdown_table(SUMMARY_HEADER, rows)


def table(name: str, results: str) -> str:
    """The Markdown of the region ``name`` rendered from the saved runs under ``results``."""
    if name == 'methods/summary':
        return methods_summary(results)
    tables: Dict[str, Callable[[str], str]] = bench(name.split('/')[0]).TABLES
    if name not in tables:
        raise KeyError(f'no results table {name!r}; {name.split("/")[0]} renders {sorted(tables)}')
    return tables[name](results)


def render(
    text: str, results: str = RESULTS, cache: Optional[Dict[str, str]] = None
) -> Tuple[str, List[str]]:
    """``text`` with every marked region re-rendered, and the names of the regions whose text changed.

    Args:
        text (str): a Markdown document.
        results (str): the folder of saved runs.
        cache (dict, optional): rendered tables by name, shared between documents.
    """
    cache = {} if cache is None else cache
    changed: List[str] = []

    def fill(m: re.Match) -> str:
        name = m['name']
        if name not in cache:
            cache[name] = table(name, results).rstrip('\n') + '\n'
        if cache[name] != m['body']:
            changed.append(name)
        return m[1] + cache[name] + m[4]

    return REGION.sub(fill, text), changed


def documents(root: str = REPO) -> List[str]:
    """The Markdown files that may hold results regions."""
    return sorted(p for pattern in DOCS for p in glob.glob(osp.join(root, pattern)))


def main(argv=None) -> int:
    """Rewrite (or with ``--check`` compare) every results region; returns 1 when a checked region differs."""
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--check', action='store_true', help='compare only; exit 1 naming each stale region')
    p.add_argument('--results', default=RESULTS, help='folder of the saved runs')
    args = p.parse_args(argv)
    cache: Dict[str, str] = {}
    stale = []
    for path in documents():
        with open(path) as f:
            text = f.read()
        new, changed = render(text, args.results, cache)
        stale += [f'{osp.relpath(path, REPO)}: {name}' for name in changed]
        if changed and not args.check:
            with open(path, 'w') as f:
                f.write(new)
    verb = (
        'differs from its saved runs (run tools/benchmarks/render_docs.py)' if args.check else 're-rendered'
    )
    for line in stale:
        print(f'{line} {verb}')
    print(f'{len(cache)} results tables, {len(stale)} regions {"stale" if args.check else "rewritten"}')
    return int(bool(stale) and args.check)


if __name__ == '__main__':
    sys.exit(main())
