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
        assert f'ddep_r50-unet1x_8xb2-40k_pascal-context-59-480x480_{p}pct.py' in names
    for p in (1, 5, 10):
        assert f'ddep_r18-unet1x_1xb8-10k_composited-seg-{p}pct.py' in names


@pytest.mark.parametrize('path', CONFIGS, ids=osp.basename)
def test_config_parses(path):
    cfg = Config.fromfile(path)
    assert cfg.custom_imports == dict(imports=['mmssod'], allow_failed_imports=False)
    if cfg.model.type == 'DDeP':
        assert cfg.default_scope == 'mmpretrain'
        assert cfg.model.sigma == 0.22 and cfg.model.freeze_encoder
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
