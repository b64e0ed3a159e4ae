"""Tiny composited two-domain re-ID set (composited from real images) shared by the SpCL tests."""

import os
import os.path as osp

import pytest

from tools.benchmarks.composited import CompositedDataError, load_fashion_mnist
from tools.benchmarks.composited.reid import ReIDConfig, build_reid

SMOKE_CONFIG = 'configs/spcl/spcl_r18-tiny_cpu-smoke_composited-reid.py'
TINY_REID = ReIDConfig(
    train_ids=12, test_ids=10, num_cameras=4, num_distractors=6, num_junk=4, height=64, width=32
)


@pytest.fixture(scope='session')
def spcl_reid_root(tmp_path_factory):
    """The tiny set at ``<tmp>/data/composited_reid_tiny`` (the smoke config's data_root relative to cwd)."""
    try:
        load_fashion_mnist(None, 'test')
    except CompositedDataError as err:
        pytest.skip(f'Fashion-MNIST is not installed: {err}')
    run_dir = tmp_path_factory.mktemp('spcl_run')
    root = osp.join(str(run_dir), 'data', 'composited_reid_tiny')
    os.makedirs(osp.dirname(root))
    build_reid(root, seed=0, cfg=TINY_REID)
    return str(run_dir), root
