"""Clear, actionable errors of the composited builders and their command-line tools."""

import dataclasses
import importlib.util
import os
import os.path as osp

import pytest

from tools.benchmarks.composited import CompositedDataError
from tools.benchmarks.composited.cli import run_cli
from tools.benchmarks.composited.detection import DetectionConfig, build_detection
from tools.benchmarks.composited.reid import ReIDConfig
from tools.benchmarks.composited.segmentation import SegmentationConfig
from tools.benchmarks.composited.sources import load_fashion_mnist

TOOLS = osp.join(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'tools', 'dataset_converters')
TINY = DetectionConfig(
    num_train=20, num_val=5, height=64, width=64, size_range=(16, 32), percents=(10,), folds=(1,)
)


def _tool(name):
    spec = importlib.util.spec_from_file_location(f'_tool_{name}', osp.join(TOOLS, f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run_tool(name, argv, capsys):
    with pytest.raises(SystemExit) as exc:
        run_cli(_tool(name).main, argv)
    err = capsys.readouterr().err
    assert exc.value.code == 2
    assert 'Traceback' not in err
    return err


def test_missing_fashion_mnist_says_how_to_install(tmp_path):
    load_fashion_mnist.cache_clear()
    with pytest.raises(CompositedDataError) as exc:
        build_detection(str(tmp_path / 'out'), cfg=TINY, fmnist_root=str(tmp_path / 'nowhere'))
    msg = str(exc.value)
    assert 'apt-get install dataset-fashion-mnist' in msg and '--fmnist-root' in msg
    assert not (tmp_path / 'out').exists(), 'nothing is written before the inputs are checked'


def test_missing_fashion_mnist_cli_message(tmp_path, capsys):
    empty = tmp_path / 'empty'
    empty.mkdir()
    err = _run_tool('composited_det', ['--out', str(tmp_path / 'o'), '--fmnist-root', str(empty)], capsys)
    assert 'apt-get install dataset-fashion-mnist' in err and str(empty) in err


def test_env_var_points_at_fashion_mnist(tmp_path, monkeypatch):
    monkeypatch.setenv('MMSSOD_FMNIST_ROOT', str(tmp_path))
    load_fashion_mnist.cache_clear()
    with pytest.raises(CompositedDataError, match='train-images-idx3-ubyte'):
        load_fashion_mnist(None, 'train')
    load_fashion_mnist.cache_clear()


def test_corrupt_idx_file_is_reported(tmp_path):
    for name in ('train-images-idx3-ubyte', 'train-labels-idx1-ubyte'):
        (tmp_path / name).write_bytes(b'\x00\x00\x08\x01garbage')
    with pytest.raises(CompositedDataError, match='not an IDX file'):
        load_fashion_mnist(str(tmp_path), 'train')


def test_unwritable_output_folder(tmp_path, capsys, fmnist_available):
    blocker = tmp_path / 'a_file'
    blocker.write_text('x')
    with pytest.raises(CompositedDataError, match='not writable'):
        build_detection(str(blocker / 'out'), cfg=TINY)
    err = _run_tool('composited_seg', ['--out', str(blocker / 'seg')], capsys)
    assert 'not writable' in err
    if os.geteuid() != 0:  # permission bits do not stop root
        locked = tmp_path / 'locked'
        locked.mkdir()
        locked.chmod(0o500)
        try:
            with pytest.raises(CompositedDataError, match='not writable'):
                build_detection(str(locked), cfg=TINY)
        finally:
            locked.chmod(0o700)


def test_foreign_non_empty_folder_is_not_overwritten(tmp_path, fmnist_available):
    (tmp_path / 'precious.txt').write_text('keep me')
    with pytest.raises(CompositedDataError, match='not empty and was not built by'):
        build_detection(str(tmp_path), cfg=TINY)
    assert (tmp_path / 'precious.txt').read_text() == 'keep me'


@pytest.mark.parametrize(
    'kwargs, message',
    [
        (dict(size_range=(16, 80)), 'does not fit'),
        (dict(height=16), 'at least 32x32'),
        (dict(objects_per_image=(3, 2)), '1 <= min <= max'),
        (dict(percents=(0,)), r'\(0, 100\]'),
        (dict(percents=(150,)), r'\(0, 100\]'),
        (dict(percents=(1,)), 'would be empty'),
        (dict(imbalance_ratio=0.5), 'imbalance ratio'),
        (dict(num_val=0), 'at least one'),
    ],
)
def test_impossible_detection_sizes(kwargs, message):
    with pytest.raises(CompositedDataError, match=message):
        dataclasses.replace(TINY, **kwargs).validate()


def test_impossible_sizes_cli(tmp_path, capsys, fmnist_available):
    err = _run_tool(
        'composited_det',
        ['--out', str(tmp_path / 'o'), '--height', '64', '--width', '64', '--object-size', '20', '100'],
        capsys,
    )
    assert 'does not fit' in err
    err = _run_tool('composited_det', ['--out', str(tmp_path / 'o'), '--percents', '0'], capsys)
    assert '(0, 100]' in err


@pytest.mark.parametrize(
    'kwargs, message',
    [
        (dict(test_ids=6000), 'Fashion-MNIST test items'),
        (dict(train_ids=9000, test_ids=1000), '9999'),
        (dict(images_per_camera=(1, 3)), 'images per camera'),
        (dict(num_cameras=1, cameras_per_id=(1, 1)), 'cameras'),
        (dict(cameras_per_id=(2, 9)), 'cameras per identity'),
        (dict(domains=('source', 'moon')), 'domains'),
    ],
)
def test_impossible_reid_sizes(kwargs, message):
    with pytest.raises(CompositedDataError, match=message):
        ReIDConfig(**kwargs).validate()


def test_more_identities_than_items():
    with pytest.raises(CompositedDataError, match='more Fashion-MNIST train items than the 100 available'):
        ReIDConfig(train_ids=60).validate(num_train_items=100)


def test_impossible_seg_sizes():
    with pytest.raises(CompositedDataError, match='would be empty'):
        SegmentationConfig(num_train=50, percents=(1,)).validate()
    with pytest.raises(CompositedDataError, match='does not fit'):
        SegmentationConfig(height=64, width=64).validate()


def test_corrupt_tool_needs_a_detection_build(tmp_path, capsys):
    err = _run_tool('composited_corrupt', ['--out', str(tmp_path)], capsys)
    assert 'composited_det.py' in err
