"""The per-seed summary every benchmark table reports (mean +- sample sd)."""

import math

import pytest

from tools.benchmarks.stats import mean_sd


def test_mean_sd_over_seeds():
    mean, sd = mean_sd([1.0, 2.0, 3.0])
    assert mean == 2.0 and sd == pytest.approx(1.0)
    mean, sd = mean_sd([1.0])
    assert mean == 1.0 and math.isnan(sd)  # one seed has no spread
    mean, sd = mean_sd([1.0, None, float('nan'), 3.0])  # undefined seeds are left out
    assert mean == 2.0 and sd == pytest.approx(2**0.5)
    assert all(math.isnan(v) for v in mean_sd([None]))
