"""Summary statistics of per-seed benchmark numbers (the ``mean +- sd over seeds`` of every results table)."""

import math
import statistics
from typing import Iterable, Optional, Tuple


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
