"""The recipe of tools/benchmarks/ddep_bench.py (composited set, "composited from real images"): the frozen
ImageNet EfficientNet-Lite encoder at strides 2-32 in both stages, the same decoder layout in pretraining and
fine-tuning (so the converted checkpoint loads strictly), and the fine-tuning data pipeline."""

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
    assert cfg.train_cfg.max_iters == args.finetune_iters
    assert cfg.train_dataloader.dataset.ann_file == 'splits/train.1@5.txt'
    assert cfg.load_from == 'ckpt.pth'
    # labels: background is class 0 of 11, 255 ignored, zero label kept
    assert cfg.model.decode_head.num_classes == 11
    assert cfg.val_evaluator.ignore_index == 255
    assert cfg.train_dataloader.dataset.reduce_zero_label is False
    # the frozen ImageNet encoder at strides 2-32 (its stride-2 level is the decoder's finest skip)
    enc = cfg.model.backbone
    assert enc.type == 'EfficientNetLite' and enc.pretrained and tuple(enc.out_indices) == (0, 1, 2, 3, 4)
    assert enc.frozen_stages == 5 and enc.norm_eval


def test_pretraining_and_finetuning_decoders_match(bench, tmp_path):
    from mmssod.models.ddep import UNetDecoder

    args = bench.parse_args(['--work-dir', str(tmp_path)])
    pre = bench.ddep_cfg(args)
    ft = bench.finetune_config(args, 'data/x/', None, 1, 0, 'random', 'cpu').model.decode_head.decoder
    neck = dict(pre['neck'])
    neck.pop('type')
    assert UNetDecoder(**neck).layout() == UNetDecoder(**ft).layout()
    assert pre['freeze_encoder'] and pre['backbone']['pretrained']
    # the whole-network timing arm: encoder + decoder from random init, encoder trained
    whole = bench.ddep_cfg(args, freeze=False)
    assert not whole['freeze_encoder'] and not whole['backbone']['pretrained']
