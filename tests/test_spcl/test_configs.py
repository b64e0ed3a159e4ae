"""Every configs/spcl config loads with Config.fromfile and builds its model; the README's settings hold.

The benchmark datasets are not present offline, so only the model (and the clustering hook) are built; a
forward pass on a small input checks that the head's width matches the backbone's output.
"""

import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from torch.nn.modules.batchnorm import _BatchNorm

import mmssod  # noqa: F401  (registers the SpCL modules)
from mmssod.models.reid.spcl import DomainSpecificBN

from ..conftest import REPO_ROOT

CONFIGS = sorted(glob.glob(osp.join(REPO_ROOT, 'configs/spcl/*.py')))
PAPER_TARGETS = {  # config -> (train dataset types (source, target) or (target,), paper image size (w, h))
    'spcl_r50_1xb64-50e_usl_market1501.py': (('MarketReIDDataset',), (128, 256)),
    'spcl_r50_1xb64-50e_usl_msmt17.py': (('MSMT17ReIDDataset',), (128, 256)),
    'spcl_r50_1xb128-50e_uda_market1501-to-msmt17.py': (
        ('MarketReIDDataset', 'MSMT17ReIDDataset'),
        (128, 256),
    ),
    'spcl_r50_1xb128-50e_uda_msmt17-to-market1501.py': (
        ('MSMT17ReIDDataset', 'MarketReIDDataset'),
        (128, 256),
    ),
    'spcl_r50_1xb128-50e_uda_personx-to-market1501.py': (
        ('MarketReIDDataset', 'MarketReIDDataset'),
        (128, 256),
    ),
    'spcl_r50_1xb128-50e_uda_vehicleid-to-veri776.py': (
        ('VehicleIDReIDDataset', 'MarketReIDDataset'),
        (224, 224),
    ),
}


def test_config_set_is_complete():
    names = {osp.basename(c) for c in CONFIGS}
    assert len(CONFIGS) == 15
    assert set(PAPER_TARGETS) <= names
    for part in ('usl', 'uda', 'uda-no-reliability', 'source-only'):
        for backbone in ('r18', 'efficientnet-lite0'):  # random-init ResNet-18 and pretrained Lite0 arms
            assert any(
                n.startswith(f'spcl_{backbone}_') and f'_{part}_composited-reid.py' in n for n in names
            )
    assert 'spcl_r18-tiny_cpu-smoke_composited-reid.py' in names


def _val_roots(cfg):
    datasets = cfg.val_dataloader.dataset.datasets
    assert [d['subset'] for d in datasets] == ['query', 'gallery']
    assert all(d['test_mode'] for d in datasets)
    return {d['data_root'] for d in datasets}, {d['type'] for d in datasets}


def assert_erasing_fills_imagenet_mean_after_normalisation(cfg):
    """Erase the centre with the config's RandomErasing and normalise it: (0.485, 0.456, 0.406) (RGB)."""
    import numpy as np
    from mmdet.registry import MODELS, TRANSFORMS

    init_default_scope('mmdet')
    (erase,) = [dict(t) for t in cfg.train_pipeline if t['type'].endswith('RandomErasing')]
    # a square patch of 45-50 px always covers the centre; it fits strictly inside, as the official draw needs
    erase.update(erase_prob=1.0, min_area_ratio=0.5, max_area_ratio=0.6, aspect_range=(1.0, 1.0))
    img = TRANSFORMS.build(erase)(dict(img=np.zeros((64, 64, 3), np.uint8)))['img']
    preprocessor = MODELS.build(cfg.model.data_preprocessor)
    x = torch.from_numpy(img).permute(2, 0, 1)[None].float()
    x = x[:, [2, 1, 0]] if preprocessor.to_rgb else x  # BGR -> RGB as the preprocessor does
    x = (x - preprocessor.mean) / preprocessor.std
    centre = x[0, :, 32, 32]
    torch.testing.assert_close(centre, torch.tensor([0.485, 0.456, 0.406]), atol=0.01, rtol=0)


def _resize_scale(pipeline):
    return next(t['scale'] for t in pipeline if t['type'] == 'Resize')


@pytest.mark.parametrize('path', CONFIGS, ids=osp.basename)
def test_config_loads_and_builds(path):
    from mmdet.registry import HOOKS, MODELS

    name = osp.basename(path)
    cfg = Config.fromfile(path)
    assert cfg.custom_imports == dict(imports=['mmssod'], allow_failed_imports=False)
    assert cfg.default_scope == 'mmdet'
    uda = '_uda' in name or 'cpu-smoke' in name  # the smoke config is the UDA recipe, shrunk

    # model: last stride 1, BN neck + memory with the paper's tau / momentum, DSBN exactly for UDA
    model_cfg = cfg.model
    assert model_cfg.type == 'SpCLReID' and model_cfg.domain_specific_bn is uda
    lite0 = 'efficientnet-lite0' in name
    if not lite0:
        assert tuple(model_cfg.backbone.strides) == (1, 2, 2, 1)
    assert model_cfg.head.type == 'SpCLHead'
    assert model_cfg.head.temperature == 0.05 and model_cfg.head.momentum == 0.2

    # data: UDA = labeled source + unlabeled target, PK sampler whose batch matches the loader's
    loader = cfg.train_dataloader
    sampler = loader.sampler
    assert sampler.type == 'PseudoIdentitySampler' and sampler.num_instances == 4
    assert sampler.batch_size == loader.batch_size
    dataset = loader.dataset
    if uda:
        assert dataset.type == 'TwoDomainReIDDataset'
        assert dataset.source.get('subset', 'train') == 'train'  # VehicleID: training list only
        assert dataset.target.subset == 'train'
        assert dataset.source.data_root != dataset.target.data_root
        assert loader.batch_size % 2 == 0
        train_types = (dataset.source.type, dataset.target.type)
        target_root = dataset.target.data_root
    else:
        assert dataset.type != 'TwoDomainReIDDataset' and 'source' not in dataset and 'target' not in dataset
        train_types = (dataset.type,)
        target_root = dataset.data_root
    val_roots, val_types = _val_roots(cfg)
    if 'source-only' in name:  # trained on the labeled source, evaluated on the target domain
        assert dataset.data_root == cfg.source_root and val_roots == {cfg.target_root}
    else:  # evaluated on the domain it adapts to
        assert val_roots == {target_root} and val_types == {train_types[-1]}
    assert cfg.val_evaluator.type == 'MarketReIDMetric' and cfg.test_evaluator.type == 'MarketReIDMetric'

    # clustering hook: paper defaults; reliability off only in the ablation, dataset labels only in the
    # source-only baseline
    (hook_cfg,) = [h for h in cfg.custom_hooks if h['type'] == 'SpCLClusterHook']
    hook = HOOKS.build(hook_cfg)
    assert (hook.eps, hook.eps_gap, hook.min_samples) == (0.6, 0.02, 4)
    assert (hook.k1, hook.k2, hook.quantile) == (30, 6, 0.9)
    assert hook.use_reliability is ('no-reliability' not in name)
    assert hook.use_dataset_labels is ('source-only' in name)
    assert [t['type'] for t in hook.pipeline] == [t['type'] for t in cfg.test_pipeline]
    assert 'RandomFlip' not in [t['type'] for t in hook.pipeline]  # init pass without augmentation

    if name in PAPER_TARGETS:  # the paper's recipe
        types, img_size = PAPER_TARGETS[name]
        assert train_types == types
        assert model_cfg.backbone.depth == 50 and model_cfg.head.in_channels == 2048
        assert model_cfg.backbone.init_cfg == dict(type='Pretrained', checkpoint='torchvision://resnet50')
        assert model_cfg.neck.type == 'mmpretrain.GlobalAveragePooling'
        assert loader.batch_size == (128 if uda else 64)
        # the official recipe: 800 iterations per epoch with MSMT17, VeRi-776 or VehicleID, else 400
        long_epoch = any(t in ('MSMT17ReIDDataset', 'VehicleIDReIDDataset') for t in types) or 'veri' in name
        assert sampler.iters_per_epoch == (800 if long_epoch else 400)
        # official augmentation: bicubic resize; random erasing sets (0.485, 0.456, 0.406) after normalisation
        for pipeline in (cfg.train_pipeline, cfg.test_pipeline, hook.pipeline):
            assert next(t for t in pipeline if t['type'] == 'Resize')['interpolation'] == 'bicubic'
        assert_erasing_fills_imagenet_mean_after_normalisation(cfg)
        assert cfg.optim_wrapper.optimizer == dict(type='Adam', lr=3.5e-4, weight_decay=5e-4)
        assert cfg.train_cfg.max_epochs == 50
        (sched,) = cfg.param_scheduler
        assert sched.type == 'MultiStepLR' and sched.milestones == [20, 40] and sched.gamma == 0.1
        for pipeline in (cfg.train_pipeline, cfg.test_pipeline, hook.pipeline):
            assert tuple(_resize_scale(pipeline)) == img_size
        train_dataset = dataset.source if uda else dataset
        assert tuple(_resize_scale(train_dataset.pipeline)) == img_size
    elif lite0:  # composited benchmark on the offline ImageNet EfficientNet-Lite0, global pooling, 320-d
        assert model_cfg.backbone == dict(
            type='EfficientNetLite',
            arch='lite0',
            out_indices=(4,),
            frozen_stages=-1,
            norm_eval=False,
            pretrained=True,
        )
        assert model_cfg.neck.type == 'mmpretrain.GlobalAveragePooling' and model_cfg.head.in_channels == 320
        r18 = Config.fromfile(path.replace('efficientnet-lite0', 'r18'))  # the same arm otherwise
        for key in ('train_dataloader', 'val_dataloader', 'custom_hooks', 'train_cfg', 'optim_wrapper'):
            assert cfg[key] == r18[key], key
        assert cfg.model.domain_specific_bn == r18.model.domain_specific_bn
    else:  # composited benchmark: ResNet-18 from scratch
        assert model_cfg.backbone.depth == 18 and model_cfg.backbone.init_cfg is None
        assert 'composited_reid' in target_root

    init_default_scope('mmdet')
    model_cfg.backbone.init_cfg = None  # no download; building never loads weights anyway
    torch.manual_seed(0)
    model = MODELS.build(model_cfg)
    assert type(model).__name__ == 'SpCLReID' and model.memory.num_features == model_cfg.head.in_channels
    dsbn = [m for m in model.modules() if isinstance(m, DomainSpecificBN)]
    bns = [n for n, m in model.named_modules() if isinstance(m, _BatchNorm)]
    if uda:  # every BatchNorm (backbone and BN neck) is one half of a domain-specific pair
        assert dsbn and isinstance(model.head.bn_neck, DomainSpecificBN)
        assert all(n.endswith(('.bn_source', '.bn_target')) for n in bns)
    else:
        assert not dsbn and isinstance(model.head.bn_neck, torch.nn.BatchNorm1d)
    model.eval()
    with torch.no_grad():
        emb = model(torch.rand(2, 3, 64, 32) * 255, mode='tensor')  # backbone, neck, head
    assert emb.shape == (2, model_cfg.head.in_channels)
    torch.testing.assert_close(emb.norm(dim=1), torch.ones(2))
