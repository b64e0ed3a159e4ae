"""Summary statistics of per-seed benchmark numbers and the Markdown they are reported in: ``mean +- sd over
seeds``, paired differences between arms with the 2-sd rule, and the cells of the results tables."""

import math
import statistics
from typing import Iterable, List, Optional, Sequence, Tuple


def mean_sd(values: Iterable[Optional[float]]) -> Tuple[float, float]:
    """Mean and sample standard deviation of per-seed numbers.

    Args:
        values (Iterable[float | None]): one number per seed (length S). Undefined entries (None or NaN, e.g.
            a D-ECE with no detection above the threshold) are left out.

    Returns:
        tuple[float, float]: (mean, sample sd). The sd is NaN with fewer than two defined values (one seed has
        no spread); both are NaN with none.
    """
    vals = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    if not vals:
        return math.nan, math.nan
    return statistics.mean(vals), (statistics.stdev(vals) if len(vals) > 1 else math.nan)


def paired_differences(base: Sequence[float], other: Sequence[float]) -> List[float]:
    """Per-seed differences ``other - base`` of two arms run on the same seeds.

    Args:
        base (Sequence[float]): (S,) the comparator's number per seed.
        other (Sequence[float]): (S,) the arm's number on the same seeds, in the same order.

    Returns:
        list[float]: (S,) ``other[s] - base[s]``.
    """
    if len(base) != len(other):
        raise ValueError(f'paired differences need the same seeds in both arms: {len(base)} and {len(other)}')
    return [float(o) - float(b) for b, o in zip(base, other)]


def is_effect(differences: Iterable[Optional[float]], min_seeds: int = 3) -> bool:
    """The reports' rule: a paired difference is an effect only when its mean is more than twice its sample sd
    over at least ``min_seeds`` seeds (otherwise it is "not resolved").

    Args:
        differences (Iterable[float | None]): (S,) per-seed paired differences.
        min_seeds (int): the fewest defined seeds that can show an effect. Defaults to 3.
    """
    vals = [v for v in differences if v is not None and not math.isnan(float(v))]
    mean, sd = mean_sd(vals)
    return len(vals) >= min_seeds and abs(mean) > 2 * sd


def number(value: Optional[float], spec: str = '.2f') -> str:
    """``value`` formatted with ``spec`` (a value shown as zero is never ``-0.00``); ``-`` for an undefined
    (None or NaN) number."""
    if value is None or math.isnan(float(value)):
        return '-'
    text = format(value, spec)
    return format(abs(value), spec) if text.startswith('-') and float(text) == 0 else text


def mean_sd_text(values: Iterable[Optional[float]], spec: str = '.2f') -> str:
    """``mean +- sd`` over seeds: the mean formatted with ``spec`` (e.g. ``+.2f`` for a difference), the sd
    unsigned with the same precision."""
    mean, sd = mean_sd(values)
    return f'{number(mean, spec)} +- {number(sd, spec.lstrip("+"))}'


def seeds_text(values: Iterable[Optional[float]], spec: str = '.2f') -> str:
    """The per-seed numbers joined by `` / `` (seeds in the order given)."""
    return ' / '.join(number(v, spec) for v in values)


def seeds_mean_sd_text(values: Sequence[Optional[float]], spec: str = '.2f') -> str:
    """Per-seed numbers then ``(mean +- sd)``, e.g. ``8.06 / 8.66 / 8.02 (8.25 +- 0.36)``."""
    return f'{seeds_text(values, spec)} ({mean_sd_text(values, spec)})'


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A GitHub-Markdown table (no trailing newline) of ``header`` and the ``rows`` (cells made ``str``)."""
    lines = ['| ' + ' | '.join(header) + ' |', '|' + ' --- |' * len(header)]
    for row in rows:
        if len(row) != len(header):
            raise ValueError(f'a row has {len(row)} cells, the header {len(header)}: {row}')
        lines.append('| ' + ' | '.join(str(c) for c in row) + ' |')
    return '\n'.join(lines)
