"""Every SpCL paper config, resolved with its bases, holds the paper's settings.

Sources: Ge et al., "Self-paced Contrastive Learning with Hybrid Memory for Domain Adaptive Object Re-ID",
NeurIPS 2020, and its official code yxgeee/SpCL (commit 01a486e: examples/spcl_train_{uda,usl}.py argument
defaults and transforms, README "Training" notes for --iters / --height / --width). Config parsing only.
"""

import glob
import os.path as osp

import pytest

from tests.conftest import REPO_ROOT
from tests.paper_settings import NOT_PAPER, load, mismatches

SPCL_DIR = 'configs/spcl'

# Shared by every paper config (official argument defaults).
SPCL = {
    'model.type': 'SpCLReID',
    'model.backbone.depth': 50,  # -a resnet50, ImageNet init
    'model.backbone.strides': (1, 2, 2, 1),  # last stride 1
    'model.head.temperature': 0.05,  # --temp
    'model.head.momentum': 0.2,  # --momentum (hybrid memory update)
    'optim_wrapper.optimizer.type': 'Adam',
    'optim_wrapper.optimizer.lr': 3.5e-4,  # --lr
    'optim_wrapper.optimizer.weight_decay': 5e-4,  # --weight-decay
    'param_scheduler.0.milestones': [20, 40],  # StepLR(step_size=20, gamma=0.1)
    'param_scheduler.0.gamma': 0.1,
    'train_cfg.max_epochs': 50,  # --epochs
    'train_cfg.val_interval': 10,  # --eval-step
    'train_dataloader.sampler.num_instances': 4,  # --num-instances: 16 identities x 4 images
    'hook:SpCLClusterHook.eps': 0.6,  # DBSCAN eps, tight / loose at -/+ eps_gap
    'hook:SpCLClusterHook.eps_gap': 0.02,
    'hook:SpCLClusterHook.min_samples': 4,
    'hook:SpCLClusterHook.k1': 30,  # Jaccard distance (k-reciprocal re-ranking)
    'hook:SpCLClusterHook.k2': 6,
    'train_pipeline.2.prob': 0.5,  # RandomHorizontalFlip(p=0.5)
    'train_pipeline.3.padding': 10,  # Pad(10) + RandomCrop
    'train_pipeline.4.erase_prob': 0.5,  # RandomErasing(probability=0.5)
    'train_pipeline.4.type': 'ReIDRandomErasing',  # aspect ratio uniform in [0.3, 3.33], up to 100 draws
}
PERSON = {'train_pipeline.1.scale': (128, 256)}  # (w, h): --height 256 --width 128 (persons)
USL = {'model.domain_specific_bn': False, 'train_dataloader.batch_size': 64}  # -b 64
UDA = {'model.domain_specific_bn': True, 'train_dataloader.batch_size': 128}  # 64 source + 64 target, DSBN


def _iters(n: int) -> dict:
    """--iters: 400 for Market-1501 / PersonX, 800 with MSMT17, VeRi-776, VehicleID (README)."""
    return {'train_dataloader.sampler.iters_per_epoch': n}


# One dict per paper config: the expected value of each config key.
PAPER_SETTINGS = {
    'spcl_r50_1xb64-50e_usl_market1501.py': {
        **SPCL,
        **PERSON,
        **USL,
        **_iters(400),
        'train_dataloader.dataset.type': 'MarketReIDDataset',
    },
    'spcl_r50_1xb64-50e_usl_msmt17.py': {
        **SPCL,
        **PERSON,
        **USL,
        **_iters(800),
        'train_dataloader.dataset.type': 'MSMT17ReIDDataset',
    },
    'spcl_r50_1xb128-50e_uda_market1501-to-msmt17.py': {
        **SPCL,
        **PERSON,
        **UDA,
        **_iters(800),
        'train_dataloader.dataset.source.type': 'MarketReIDDataset',
        'train_dataloader.dataset.target.type': 'MSMT17ReIDDataset',
    },
    # open: the README's rule names datasets, not a direction; MSMT17 is in the pair, so 800
    'spcl_r50_1xb128-50e_uda_msmt17-to-market1501.py': {
        **SPCL,
        **PERSON,
        **UDA,
        **_iters(800),
        'train_dataloader.dataset.source.type': 'MSMT17ReIDDataset',
        'train_dataloader.dataset.target.type': 'MarketReIDDataset',
    },
    'spcl_r50_1xb128-50e_uda_personx-to-market1501.py': {
        **SPCL,
        **PERSON,
        **UDA,
        **_iters(400),
        'train_dataloader.dataset.source.data_root': 'data/personx/',
        'train_dataloader.dataset.target.type': 'MarketReIDDataset',
    },
    'spcl_r50_1xb128-50e_uda_vehicleid-to-veri776.py': {
        **SPCL,
        **UDA,
        **_iters(800),
        'train_pipeline.1.scale': (224, 224),  # --height 224 --width 224 (vehicles)
        'train_dataloader.dataset.source.type': 'VehicleIDReIDDataset',
        'train_dataloader.dataset.target.data_root': 'data/veri776/',
    },
}


def test_every_paper_config_is_in_the_table():
    found = {
        osp.basename(p)
        for p in glob.glob(osp.join(REPO_ROOT, SPCL_DIR, '*.py'))
        if not any(tag in osp.basename(p) for tag in NOT_PAPER)
    }
    assert found == set(PAPER_SETTINGS)


@pytest.mark.parametrize('name', sorted(PAPER_SETTINGS))
def test_paper_settings(name):
    wrong = mismatches(load(f'{SPCL_DIR}/{name}'), PAPER_SETTINGS[name])
    assert not wrong, f'{name}: (config value, paper value) {wrong}'


@pytest.mark.parametrize('name', sorted(PAPER_SETTINGS))
def test_trained_and_clustered_pipelines_match_the_table(name):
    """The datasets train on ``train_pipeline``; clustering and testing resize to the same size."""
    cfg = load(f'{SPCL_DIR}/{name}')
    dataset = cfg.train_dataloader.dataset
    pipelines = (
        [dataset.source.pipeline, dataset.target.pipeline] if 'source' in dataset else [dataset.pipeline]
    )
    for pipeline in pipelines:
        assert pipeline == cfg.train_pipeline
    size = cfg.train_pipeline[1]['scale']
    (hook,) = [h for h in cfg.custom_hooks if h['type'] == 'SpCLClusterHook']
    assert hook['pipeline'][1]['scale'] == size
    for subset in cfg.test_dataloader.dataset.datasets:
        assert subset.pipeline[1]['scale'] == size
