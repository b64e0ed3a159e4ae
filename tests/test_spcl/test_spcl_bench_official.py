"""The ``jaccard-official`` benchmark's pieces that need neither faiss nor the official code: the loud error
for a missing ``--official-root``, the floor of the kNN product and the dense view of a sparse distance."""

import importlib.util
import os.path as osp

import pytest
import torch

from tests.conftest import REPO_ROOT

spec = importlib.util.spec_from_file_location(
    'spcl_bench', osp.join(REPO_ROOT, 'tools/benchmarks/spcl_bench.py')
)
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)


@pytest.mark.parametrize('root', [None, 'does/not/exist'])
def test_missing_official_root_is_loud(root, tmp_path):
    with pytest.raises(SystemExit, match='--official-root') as err:
        bench.load_official_jaccard(root)
    assert 'faiss_rerank.py' in str(err.value) and 'pip install' in str(err.value)


def test_official_root_without_the_file_is_loud(tmp_path):
    (tmp_path / 'spcl' / 'utils').mkdir(parents=True)
    with pytest.raises(SystemExit, match=str(tmp_path)):
        bench.load_official_jaccard(str(tmp_path))


def test_subcommand_reports_the_missing_root():
    with pytest.raises(SystemExit, match='--official-root'):
        bench.main(['jaccard-official', '--official-root', 'does/not/exist', '--sizes', '8'])


def test_floor_is_the_product_flops_over_the_rate():
    # N = 1000, d = 100: 2 * 1e6 * 100 = 2e8 flops; at 1e9 flop/s -> 0.2 s, the triangle half of it
    assert bench.gemm_floor_seconds(1000, 100, 1e9) == pytest.approx(0.2)
    assert bench.gemm_floor_seconds(1000, 100, 1e9, symmetric=True) == pytest.approx(0.1)
    # quadratic in N, linear in d, inverse in the rate
    assert bench.gemm_floor_seconds(2000, 100, 1e9) == pytest.approx(
        4 * bench.gemm_floor_seconds(1000, 100, 1e9)
    )
    assert bench.gemm_floor_seconds(1000, 300, 3e9) == pytest.approx(bench.gemm_floor_seconds(1000, 100, 1e9))
    with pytest.raises(ValueError, match='flop rate'):
        bench.gemm_floor_seconds(10, 10, 0.0)


def test_dense_view_fills_absent_entries_with_one():
    idx = torch.tensor([[0, 1, 2], [0, 2, 1]])
    dist = torch.sparse_coo_tensor(idx, torch.tensor([0.0, 0.25, 0.5]), (3, 3))
    dense = bench.dense_from_sparse_distance(dist)
    assert dense.tolist() == [[0.0, 1.0, 1.0], [1.0, 1.0, 0.25], [1.0, 0.5, 1.0]]
