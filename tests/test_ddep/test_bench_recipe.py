"""The fine-tuning recipe of tools/benchmarks/ddep_bench.py (composited set, "composited from real images").

With Adam at 1e-3 for ~1000 steps the tiny benchmark segmentor never got past predicting background (7-8
mIoU, even on its own training images), and train canvases were resized around the crop size, i.e. shrunk
by a third relative to the full-canvas validation. This test checks the fine-tuning config that fixed both.
"""

import importlib.util
import os.path as osp

import pytest

from ..conftest import REPO_ROOT


@pytest.fixture(scope='module')
def bench():
    spec = importlib.util.spec_from_file_location(
        'ddep_bench', osp.join(REPO_ROOT, 'tools/benchmarks/ddep_bench.py')
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_finetune_config(bench, tmp_path):
    args = bench.parse_args(
        ['--work-dir', str(tmp_path), '--canvas', '96', '--crop', '64', '--finetune-lr', '0.02']
    )
    cfg = bench.finetune_config(args, 'data/x/', 'ckpt.pth', 5, 0, 'ddep', 'cpu')
    pipeline = {t.type: t for t in cfg.train_dataloader.dataset.pipeline}
    # train images are resized around the canvas size (the scale validation uses), then cropped
    assert tuple(pipeline['RandomResize'].scale) == (96, 96)
    assert tuple(pipeline['RandomCrop'].crop_size) == (64, 64)
    assert [t.scale for t in cfg.val_dataloader.dataset.pipeline if t.type == 'Resize'] == [(96, 96)]
    assert cfg.optim_wrapper.optimizer.lr == pytest.approx(0.02)
    assert cfg.train_cfg.max_iters == 1000
    assert cfg.train_dataloader.dataset.ann_file == 'splits/train.1@5.txt'
    assert cfg.load_from == 'ckpt.pth'
    # labels: background is class 0 of 11, 255 ignored, zero label kept
    assert cfg.model.decode_head.num_classes == 11
    assert cfg.val_evaluator.ignore_index == 255
    assert cfg.train_dataloader.dataset.reduce_zero_label is False
