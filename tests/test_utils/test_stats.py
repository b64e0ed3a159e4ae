"""The per-seed summary every benchmark table reports (mean +- sample sd), paired differences with the 2-sd
rule, and the cells and tables they are written in."""

import math

import pytest

from tools.benchmarks.stats import (
    is_effect,
    markdown_table,
    mean_sd,
    mean_sd_text,
    number,
    paired_differences,
    seeds_mean_sd_text,
)


def test_mean_sd_over_seeds():
    mean, sd = mean_sd([1.0, 2.0, 3.0])
    assert mean == 2.0 and sd == pytest.approx(1.0)
    mean, sd = mean_sd([1.0])
    assert mean == 1.0 and math.isnan(sd)  # one seed has no spread
    mean, sd = mean_sd([1.0, None, float('nan'), 3.0])  # undefined seeds are left out
    assert mean == 2.0 and sd == pytest.approx(2**0.5)
    assert all(math.isnan(v) for v in mean_sd([None]))


def test_paired_differences_are_per_seed_and_need_the_same_seeds():
    assert paired_differences([1.0, 2.0, 4.0], [2.0, 2.5, 3.0]) == [1.0, 0.5, -1.0]
    with pytest.raises(ValueError, match='same seeds'):
        paired_differences([1.0, 2.0], [1.0])


def test_an_effect_needs_the_mean_beyond_two_sd_over_three_seeds():
    assert is_effect([3.0, 3.5, 2.5])  # mean 3, sd 0.5
    assert is_effect([-3.0, -3.5, -2.5])  # a loss is an effect too
    assert not is_effect([0.33, 0.84, 0.07, 1.71, 0.43])  # above on every seed, mean 0.68 < 2 x 0.64
    assert not is_effect([3.0, 3.5])  # two seeds cannot show one
    assert is_effect([3.0, None, 3.5, 2.5]) and not is_effect([3.0, None, 3.5])  # undefined: left out


def test_cells_and_tables():
    assert seeds_mean_sd_text([8.06, 8.66, 8.02]) == '8.06 / 8.66 / 8.02 (8.25 +- 0.36)'
    assert mean_sd_text([-0.01, 0.17, -0.01], '+.2f') == '+0.05 +- 0.10'
    assert mean_sd_text([1.0, None], '.1f') == '1.0 +- -'  # one defined seed has no sd
    assert number(-0.001) == '0.00' and number(-0.001, '+.2f') == '+0.00' and number(float('nan')) == '-'
    assert markdown_table(('a', 'b'), [(1, 'x')]) == '| a | b |\n| --- | --- |\n| 1 | x |'
    with pytest.raises(ValueError, match='2 cells, the header 3'):
        markdown_table(('a', 'b', 'c'), [(1, 2)])
