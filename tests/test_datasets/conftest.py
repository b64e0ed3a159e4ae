"""Tiny composited benchmarks shared by the dataset tests (built once per session in a temp folder)."""

import pytest

from tools.benchmarks.composited import CompositedDataError, load_fashion_mnist
from tools.benchmarks.composited.detection import DetectionConfig, build_detection
from tools.benchmarks.composited.reid import ReIDConfig, build_reid
from tools.benchmarks.composited.segmentation import SegmentationConfig, build_segmentation

# small but with enough instances for the long-tail checks (about 900 train instances)
TINY_DET = DetectionConfig(
    num_train=200,
    num_val=60,
    height=128,
    width=128,
    objects_per_image=(3, 6),
    size_range=(16, 56),
    percents=(5, 10, 50),
    folds=(1, 2),
)
TINY_SEG = SegmentationConfig(
    num_train=40,
    num_val=10,
    num_unlabeled=12,
    height=96,
    width=96,
    size_range=(16, 48),
    percents=(10, 50),
    folds=(1,),
)
TINY_REID = ReIDConfig(
    train_ids=12, test_ids=10, num_cameras=4, num_distractors=6, num_junk=4, height=64, width=32
)


def _require_fmnist():
    try:
        load_fashion_mnist(None, 'test')
    except CompositedDataError as err:
        pytest.skip(f'Fashion-MNIST is not installed: {err}')


@pytest.fixture(scope='session')
def det_root(tmp_path_factory):
    _require_fmnist()
    root = str(tmp_path_factory.mktemp('composited') / 'det')
    build_detection(root, seed=0, cfg=TINY_DET)
    return root


@pytest.fixture(scope='session')
def seg_root(tmp_path_factory):
    _require_fmnist()
    root = str(tmp_path_factory.mktemp('composited') / 'seg')
    build_segmentation(root, seed=0, cfg=TINY_SEG)
    return root


@pytest.fixture(scope='session')
def reid_root(tmp_path_factory):
    _require_fmnist()
    root = str(tmp_path_factory.mktemp('composited') / 'reid')
    build_reid(root, seed=0, cfg=TINY_REID)
    return root


@pytest.fixture
def fmnist_available():
    _require_fmnist()


@pytest.fixture(scope='session')
def tiny_det_cfg():
    return TINY_DET


@pytest.fixture(scope='session')
def tiny_reid_cfg():
    return TINY_REID
