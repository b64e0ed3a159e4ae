"""Every configs/ddep config parses; the paper-sized models build and run on a small input."""

import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

from ..conftest import REPO_ROOT

CONFIGS = sorted(glob.glob(osp.join(REPO_ROOT, 'configs/ddep/*.py')))


def test_config_set_is_complete():
    names = {osp.basename(c) for c in CONFIGS}
    for p in (1, 2, 5, 10, 20):
        assert f'ddep_r50-unet1x_8xb2-40k_cityscapes-1024x1024_{p}pct.py' in names
        assert f'ddep_r50-unet1x_8xb2-80k_ade20k-512x512_{p}pct.py' in names
        assert f'ddep_r50-unet1x_8xb2-40k_pascal-context-59-512x512_{p}pct.py' in names
    for p in (1, 5, 10):
        assert f'ddep_r18-unet1x_1xb8-10k_composited-seg-{p}pct.py' in names


@pytest.mark.parametrize('path', CONFIGS, ids=osp.basename)
def test_config_parses(path):
    cfg = Config.fromfile(path)
    assert cfg.custom_imports == dict(imports=['mmssod'], allow_failed_imports=False)
    if cfg.model.type == 'DDeP':
        assert cfg.default_scope == 'mmpretrain'
        whole = 'whole-network' in osp.basename(path)
        assert cfg.model.sigma == 0.22 and cfg.model.freeze_encoder is not whole
        if whole:
            assert cfg.model.backbone.init_cfg is None  # encoder + decoder from random init
        assert cfg.model.data_preprocessor.mean == [127.5] * 3  # images on the [-1, 1] scale
        assert cfg.model.head.in_channels == cfg.model.neck.decoder_channels[-1] * cfg.model.neck.widen_factor
    else:
        assert cfg.model.type == 'DDePEncoderDecoder' and cfg.default_scope == 'mmseg'
        name = osp.basename(path)
        if name.endswith('pct.py'):
            pct = name.rsplit('_', 1)[-1].split('-')[-1][: -len('pct.py')]
            assert cfg.train_dataloader.dataset.ann_file.endswith(f'@{pct}.txt')


@pytest.mark.parametrize(
    'name,shape',
    [
        ('ddep_r50-unet3x_8xb32-100k_in1k-224.py', None),
        ('ddep_r50-unet1x_8xb2-40k_cityscapes-1024x1024.py', 19),
    ],
)
def test_paper_models_build_and_run(name, shape):
    cfg = Config.fromfile(osp.join(REPO_ROOT, 'configs/ddep', name))
    if cfg.model.type == 'DDeP':
        from mmpretrain.registry import MODELS

        init_default_scope('mmpretrain')
        cfg.model.neck.norm_cfg = dict(type='BN')
        model = MODELS.build(cfg.model)
        assert model.neck.out_channels == 48  # 16 * 3
        with torch.no_grad():
            loss = model.loss(torch.rand(1, 3, 64, 64) * 2 - 1, None)['loss']
        assert torch.isfinite(loss)
    else:
        from mmseg.registry import MODELS

        init_default_scope('mmseg')
        cfg.model.backbone.norm_cfg = cfg.model.decode_head.norm_cfg = dict(type='BN')
        cfg.model.decode_head.decoder.norm_cfg = dict(type='BN')
        model = MODELS.build(cfg.model)
        model.eval()
        with torch.no_grad():
            out = model(torch.rand(1, 3, 64, 96), mode='tensor')
        assert out.shape == (1, shape, 64, 96)


def cfg_of(name):
    return Config.fromfile(osp.join(REPO_ROOT, 'configs/ddep', name))


def decoder_layout_of(cfg):
    from mmssod.models.ddep import UNetDecoder

    dec = dict(cfg.model.neck if cfg.model.type == 'DDeP' else cfg.model.decode_head.decoder)
    dec.pop('type', None)
    return UNetDecoder(**dec).layout()


@pytest.mark.parametrize(
    'pretrain,finetune',
    [
        ('ddep_r50-unet1x_8xb32-100k_in1k-224.py', 'ddep_r50-unet1x_8xb2-40k_cityscapes-1024x1024.py'),
        ('ddep_r50-unet2x_8xb32-100k_in1k-224.py', 'ddep_r50-unet2x_8xb2-40k_cityscapes-1024x1024.py'),
        ('ddep_r50-unet3x_8xb32-100k_in1k-224.py', 'ddep_r50-unet3x_8xb2-40k_cityscapes-1024x1024.py'),
        (
            'ddep_r50-unet1x-whole-network_8xb32-100k_in1k-224.py',
            'ddep_r50-unet1x-whole-network_8xb2-40k_cityscapes-1024x1024.py',
        ),
        ('ddep_r50-unet1x_8xb32-100k_in1k-224.py', 'ddep_r50-unet1x_8xb2-80k_ade20k-512x512.py'),
        ('ddep_r50-unet1x_8xb32-100k_in1k-224.py', 'ddep_r50-unet1x_8xb2-40k_pascal-context-59-512x512.py'),
        (
            'ddep_r18-unet1x_1xb16-20k_composited-seg-unlabeled.py',
            'ddep_r18-unet1x_1xb8-10k_composited-seg-10pct.py',
        ),
        (
            'ddep_r18-tiny_cpu-smoke_pretrain_composited-seg.py',
            'ddep_r18-tiny_cpu-smoke_finetune_composited-seg.py',
        ),
    ],
)
def test_finetune_config_matches_its_pretraining_config(pretrain, finetune):
    """Same decoder layout (so the converted checkpoint loads), load_from = that run's converted file."""
    pre, ft = cfg_of(pretrain), cfg_of(finetune)
    assert decoder_layout_of(pre) == decoder_layout_of(ft)
    assert decoder_layout_of(pre)['in_strides'] == [2, 4, 8, 16, 32]  # the stem (stride 2) is a skip
    assert pre.model.backbone.type == 'ResNetWithStem' and pre.model.backbone.out_indices == (0, 1, 2, 3, 4)
    if ft.load_from:
        assert ft.load_from == f'work_dirs/{pretrain[:-3]}/ddep_seg.pth'


@pytest.mark.parametrize(
    'name,lr',
    [
        ('ddep_r50-unet1x_8xb32-100k_in1k-224.py', 6e-5),
        ('ddep_r50-unet2x_8xb32-100k_in1k-224.py', 1e-4),
        ('ddep_r50-unet3x_8xb32-100k_in1k-224.py', 6e-5),
    ],
)
def test_pretraining_adam_lr_per_width(name, lr):
    cfg = cfg_of(name)
    assert cfg.optim_wrapper.optimizer.type == 'Adam'
    assert cfg.optim_wrapper.optimizer.lr == pytest.approx(lr)


def test_cityscapes_tta_is_flip_only():
    cfg = cfg_of('ddep_r50-unet1x_8xb2-40k_cityscapes-1024x1024_1pct.py')
    transforms = cfg.tta_pipeline[1].transforms
    resizes = list(transforms[0])
    assert len(resizes) == 1 and 'scale_factor' not in resizes[0]  # one scale: the test scale
    assert sorted(t.prob for t in transforms[1]) == [0.0, 1.0]  # original + horizontal flip
    # ADE20K / Pascal Context keep multi-scale (0.5-1.75) + flip
    assert len(cfg_of('ddep_r50-unet1x_8xb2-80k_ade20k-512x512.py').tta_pipeline[1].transforms[0]) == 6


def test_pascal_context_512_crops():
    for p in ('', '_1pct', '_20pct'):
        cfg = cfg_of(f'ddep_r50-unet1x_8xb2-40k_pascal-context-59-512x512{p}.py')
        crop = [t for t in cfg.train_dataloader.dataset.pipeline if t.type == 'RandomCrop']
        assert [tuple(t.crop_size) for t in crop] == [(512, 512)]
        assert tuple(cfg.model.data_preprocessor.size) == (512, 512)
        assert tuple(cfg.model.test_cfg.crop_size) == (512, 512)


def test_unlabeled_cityscapes_reads_train_and_train_extra():
    ds = cfg_of('ddep_r50-unet1x_8xb8-40k_cityscapes-unlabeled.py').train_dataloader.dataset
    assert ds.type == 'ConcatDataset'
    assert [d.data_prefix for d in ds.datasets] == ['leftImg8bit/train', 'leftImg8bit/train_extra']
    assert all(d.with_label is False for d in ds.datasets)


@pytest.mark.parametrize(
    'base,full',
    [
        ('ddep_r50-unet1x_8xb2-40k_cityscapes-1024x1024', 40000),
        ('ddep_r50-unet1x_8xb2-80k_ade20k-512x512', 80000),
        ('ddep_r50-unet1x_8xb2-40k_pascal-context-59-512x512', 40000),
    ],
)
def test_few_label_schedules_scale_with_the_fraction(base, full):
    """max_iters = full x sqrt(fraction) (rounded to 1k); the cosine schedule ends at max_iters."""
    import math

    iters = []
    for p in (1, 2, 5, 10, 20):
        cfg = cfg_of(f'{base}_{p}pct.py')
        n = cfg.train_cfg.max_iters
        assert n == round(full * math.sqrt(p / 100) / 1000) * 1000
        assert cfg.param_scheduler[-1].end == n and cfg.param_scheduler[-1].T_max == n - 1000
        iters.append(n)
    assert iters == sorted(iters) and iters[-1] < full
