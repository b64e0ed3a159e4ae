"""Few-label subsets (tools/dataset_converters/ddep_label_fractions.py): exact sizes, nested, seeded."""

import importlib.util
import os.path as osp

import pytest

from ..conftest import REPO_ROOT


@pytest.fixture(scope='module')
def tool():
    spec = importlib.util.spec_from_file_location(
        'ddep_label_fractions', osp.join(REPO_ROOT, 'tools/dataset_converters/ddep_label_fractions.py')
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    'percent,total,size',
    [(29, 100, 29), (57, 100, 57), (14, 50, 7), (1, 2975, 29), (10, 2975, 297), (0.5, 200, 1), (100, 7, 7)],
)
def test_fraction_size_is_exact(tool, percent, total, size):
    """floor(percent / 100 * N) without float error (the float product gave 28 for 29% of 100)."""
    assert tool.fraction_size(percent, total) == size


def test_subsets_are_nested_and_sized(tool):
    names = [f'img{i:03d}' for i in range(100)]
    subsets = {p: tool.label_fraction(names, p, seed=1) for p in (1, 2, 5, 10, 20, 29)}
    assert {p: len(s) for p, s in subsets.items()} == {1: 1, 2: 2, 5: 5, 10: 10, 20: 20, 29: 29}
    assert set(subsets[1]) <= set(subsets[5]) <= set(subsets[29])
    with pytest.raises(ValueError, match='not in \\(0, 100\\]'):
        tool.label_fraction(names, 0, seed=1)
