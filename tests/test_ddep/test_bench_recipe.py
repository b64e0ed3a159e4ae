"""The recipe of tools/benchmarks/ddep_bench.py (composited set, "composited from real images"): the ImageNet
EfficientNet-Lite encoder at strides 2-32 in both stages, the same decoder layout in pretraining and
fine-tuning (so the converted checkpoint loads strictly), whole-network fine-tuning by default, the
fine-tuning data pipeline, the box-blur reference, the linear probe of the decoder output and the reuse of
saved runs."""

import importlib.util
import json
import os.path as osp

import numpy as np
import pytest
import torch

from ..conftest import REPO_ROOT


@pytest.fixture(scope='module')
def bench():
    spec = importlib.util.spec_from_file_location(
        'ddep_bench', osp.join(REPO_ROOT, 'tools/benchmarks/ddep_bench.py')
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_defaults(bench):
    args = bench.parse_args([])
    assert args.decoder_channels == [256, 128, 64, 32, 16]  # the 1x decoder
    assert args.pretrain_schedule == 'constant' and args.pretrain_iters >= 3000
    assert args.finetune_encoder == 'train' and bench.finetune_lr(args) == pytest.approx(1e-4)
    assert sorted(args.budgets) == [100, 250, 500, 1000] and max(args.budgets) == args.finetune_iters
    # 1% of the train canvases is at least 10 labeled images; at least 200 val canvases
    assert args.num_train * min(args.percents) / 100 >= 10 and args.num_val >= 200
    assert args.seeds == [0, 1, 2, 3, 4] and args.percents == [1, 5]
    frozen = bench.parse_args(['--finetune-encoder', 'frozen'])
    assert bench.finetune_lr(frozen) > bench.finetune_lr(args)
    with pytest.raises(SystemExit):
        bench.parse_args(['--finetune-iters', '100', '--budgets', '50', '200'])
    with pytest.raises(SystemExit):  # a fraction the composited set has no split for
        bench.parse_args(['--percents', '10'])
    # the set is built with the same splits whichever fractions a process fine-tunes
    one = bench.parse_args(['--percents', '1'])
    assert bench.data_config(one).to_dict() == bench.data_config(args).to_dict()


def test_finetune_config(bench, tmp_path):
    args = bench.parse_args(
        [
            '--work-dir',
            str(tmp_path),
            '--canvas',
            '96',
            '--crop',
            '64',
            '--finetune-lr',
            '0.02',
            '--folds',
            '3',
        ]
    )
    cfg = bench.finetune_config(args, 'data/x/', 'ckpt.pth', 5, 4, 'ddep', 'cpu')
    pipeline = {t.type: t for t in cfg.train_dataloader.dataset.pipeline}
    # train images are resized around the canvas size (the scale validation uses), then cropped
    assert tuple(pipeline['RandomResize'].scale) == (96, 96)
    assert tuple(pipeline['RandomCrop'].crop_size) == (64, 64)
    assert [t.scale for t in cfg.val_dataloader.dataset.pipeline if t.type == 'Resize'] == [(96, 96)]
    assert cfg.optim_wrapper.optimizer.lr == pytest.approx(0.02)
    assert cfg.train_cfg.max_iters == args.finetune_iters
    # seed 4 with 3 folds uses fold 2
    assert cfg.train_dataloader.dataset.ann_file == 'splits/train.2@5.txt'
    assert cfg.load_from == 'ckpt.pth'
    # labels: background is class 0 of 11, 255 ignored, zero label kept
    assert cfg.model.decode_head.num_classes == 11
    assert cfg.val_evaluator.ignore_index == 255
    assert cfg.train_dataloader.dataset.reduce_zero_label is False
    # the ImageNet encoder at strides 2-32 (its stride-2 level is the decoder's finest skip), trained
    enc = cfg.model.backbone
    assert enc.type == 'EfficientNetLite' and enc.pretrained and tuple(enc.out_indices) == (0, 1, 2, 3, 4)
    assert 'frozen_stages' not in enc
    frozen = bench.parse_args(['--work-dir', str(tmp_path), '--finetune-encoder', 'frozen'])
    enc = bench.finetune_config(frozen, 'data/x/', None, 1, 0, 'random', 'cpu').model.backbone
    assert enc.frozen_stages == 5 and enc.norm_eval


def test_pretraining_and_finetuning_decoders_match(bench, tmp_path):
    from mmssod.models.ddep import UNetDecoder

    args = bench.parse_args(['--work-dir', str(tmp_path), '--decoder-channels', '32', '16', '16', '8', '8'])
    pre = bench.ddep_cfg(args)
    ft = bench.finetune_config(args, 'data/x/', None, 1, 0, 'random', 'cpu').model.decode_head.decoder
    neck = dict(pre['neck'])
    neck.pop('type')
    assert UNetDecoder(**neck).layout() == UNetDecoder(**ft).layout()
    assert pre['freeze_encoder'] and pre['backbone']['pretrained'] and pre['sigma'] == 0.22
    # the whole-network timing arm: encoder + decoder from random init, encoder trained
    whole = bench.ddep_cfg(args, freeze=False)
    assert not whole['freeze_encoder'] and not whole['backbone']['pretrained']


def test_box_blur_gain_closed_form(bench):
    g = torch.Generator().manual_seed(0)
    h = torch.randn(2, 3, 8, 8, generator=g)
    other = torch.randn(2, 3, 8, 8, generator=g)
    noise = 1.7 * h + 0.3 * other
    gain, mse = bench.fit_box_blur_gain(h, noise)
    # least squares: the residual is orthogonal to h, and no other gain does better
    assert float(((noise - gain * h) * h).sum()) == pytest.approx(0.0, abs=1e-4)
    for other_gain in (gain - 0.1, gain + 0.1):
        assert float(((noise - other_gain * h) ** 2).mean()) > mse
    assert gain == pytest.approx(1.7, abs=0.15)
    # a constant image has no high-pass; a noise image has one that predicts the noise partly
    assert float(bench.box_blur_highpass(torch.full((1, 3, 5, 5), 0.4)).abs().max()) < 1e-6
    eps = torch.randn(1, 3, 32, 32, generator=g)
    gain, mse = bench.fit_box_blur_gain(bench.box_blur_highpass(eps), eps)
    assert gain > 0 and mse < 0.5
    with pytest.raises(ValueError, match='constant'):
        bench.fit_box_blur_gain(torch.zeros(1, 3, 4, 4), eps[..., :4, :4])


def test_miou_matches_mmseg(bench):
    from mmseg.evaluation import IoUMetric

    rng = np.random.default_rng(0)
    gt = rng.integers(0, 5, 2000)
    gt[:100] = 255  # ignored
    pred = np.where(rng.random(2000) < 0.6, gt, rng.integers(0, 4, 2000))  # class 4 never predicted
    pred[gt == 255] = 0
    # mmseg's areas; IoU = intersect / union, mIoU = nanmean over the classes (IoUMetric.compute_metrics)
    inter, union, _, _ = IoUMetric.intersect_and_union(torch.from_numpy(pred), torch.from_numpy(gt), 5, 255)
    ref = 100 * np.nanmean((inter / union).numpy())
    assert bench.miou_percent(pred, gt, 5) == pytest.approx(ref)
    assert bench.miou_percent(gt, gt, 5) == pytest.approx(100.0)


def test_linear_probe_learns_from_features_not_labels(bench):
    # per-pixel features that carry the class (a noisy class embedding): the probe must segment them; the
    # same features with shuffled training labels must not
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(4, 8))
    y, yv = rng.integers(0, 4, 3000), rng.integers(0, 4, 3000)
    x, xv = centres[y] + 0.3 * rng.normal(size=(3000, 8)), centres[yv] + 0.3 * rng.normal(size=(3000, 8))
    assert bench.linear_probe_miou(x, y, xv, yv, 4, max_pixels=1000, seed=0) > 90
    assert bench.linear_probe_miou(x, rng.permutation(y), xv, yv, 4, max_pixels=1000, seed=0) < 40


def test_saved_run_reused_only_with_same_settings(bench, tmp_path):
    args = bench.parse_args(['--work-dir', str(tmp_path)])
    settings = bench.finetune_settings(args, 1, 0, 'ddep')
    assert settings['pretrain']['decoder_channels'] == args.decoder_channels
    assert 'pretrain' not in bench.finetune_settings(args, 1, 0, 'random')
    path = tmp_path / 'run.json'
    assert bench.load_run(str(path), settings) is None
    json.dump(dict(settings=settings, miou={'100': 12.5}), open(path, 'w'))
    assert bench.load_run(str(path), settings)['miou'] == {'100': 12.5}
    other = bench.finetune_settings(bench.parse_args(['--finetune-lr', '0.01']), 1, 0, 'ddep')
    with pytest.raises(ValueError, match='run.json'):
        bench.load_run(str(path), other)


@pytest.mark.slow
def test_tiny_run_saves_and_reuses(bench, tmp_path, capsys):
    argv = [
        '--work-dir', str(tmp_path), '--num-train', '40', '--num-val', '4', '--num-unlabeled', '8',
        '--canvas', '64', '--crop', '32', '--batch', '2', '--decoder-channels', '16', '8', '8', '8', '8',
        '--percents', '10', '--data-percents', '10', '--seeds', '0', '--folds', '1', '--pretrain-iters', '3',
        '--finetune-iters', '2', '--budgets', '1', '2', '--box-blur-batches', '1', '--skip-timing',
    ]  # fmt: skip
    assert bench.main(argv) == 0
    pre = json.load(open(tmp_path / 'pretrain_s0.json'))
    assert len(pre['losses']) == 3 and 0 < pre['box_blur']['loss'] < 1
    runs = {arm: json.load(open(tmp_path / f'ft_{arm}_10pct_s0.json')) for arm in ('random', 'ddep')}
    for arm, run in runs.items():
        assert run['settings']['arm'] == arm and sorted(run['miou']) == ['1', '2']
    # the budgets before the last are also kept in a partial file while the run goes on
    partial = json.load(open(tmp_path / 'ft_ddep_10pct_s0.partial.json'))
    assert partial['partial'] and partial['miou'] == {'1': runs['ddep']['miou']['1']}
    # the linear probe of both decoders (no fine-tuning), saved with its settings
    probe = json.load(open(tmp_path / 'probe_10pct_s0.json'))
    assert probe['settings']['fold'] == 1 and all(
        0 <= probe['miou'][arm] <= 100 for arm in ('random', 'ddep')
    )
    for name in ('pretrain_loss.png', 'label_efficiency.png', 'ddep_bench.json'):
        assert (tmp_path / name).is_file()
    summary = json.load(open(tmp_path / 'ddep_bench.json'))['summary']
    assert summary['10pct_2steps']['ddep'] == [runs['ddep']['miou']['2']]
    assert json.load(open(tmp_path / 'ddep_bench.json'))['probe']['10pct']['ddep'] == [probe['miou']['ddep']]
    # a rerun trains nothing: it reads the saved runs
    assert bench.main(argv + ['--stage', 'report']) == 0
    assert bench.main(argv + ['--stage', 'finetune']) == 0
    assert bench.main(argv + ['--stage', 'probe']) == 0
    again = json.load(open(tmp_path / 'ft_ddep_10pct_s0.json'))
    assert again['seconds'] == runs['ddep']['seconds']
    rerun = capsys.readouterr().out.split('stage finetune')[-1]
    assert '[finetune' not in rerun and '[probe' not in rerun
